"""Requests and bytes for a fresh device to sync 1,000 pending visits (login, push, pull to
quiet), and seconds to sync over a simulated 2G link.

    python bench/bench_wire.py [--short] [--visits N] [--kbit-s K] [--rtt-ms R] [--no-save]

The real offline client (its store, `offline_client.server_api.ServerAPI` and
`offline_client.sync_loop.run_sync`) against `zhuxun serve`, through bench/slow_link.py (a relay
on loopback at 50 kbit/s and 300 ms RTT each way, as 2G). Every HTTP exchange is counted
as the client's `requests` sees it: bodies as they went over the wire (gzip where sent so)
and header bytes. Compared in the same run with the gzip size of the bare records.

Two syncs: (1) a fresh device of the busiest doctor of the seeded demo county with its
first N visits pending: login, then the sync; (2) a device of another doctor that synced
its history before (over loopback) and now holds one week of new visits: the sync alone,
on an existing session. The server judges the rules as of the day of the last visit
(ZHUXUN_RULES_AS_OF), as on the day the visits were logged.

Goals (issue 7): at most 3 HTTP requests (login included) for (1); bytes a visit at most
1.25x the bare gzip. The pull of (1) is measured again in the full form (without
`compact=1`, issue 14), so the old and the new bytes stand side by side.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import common
import requests
from slow_link import SlowLink

from offline_client.local import LocalStore, open_store
from offline_client.server_api import ServerAPI
from offline_client.sync_loop import SyncSummary, run_sync
from sync.protocol import H_DEVICE_ID, MAX_PULL_LIMIT


class CountingHTTP(requests.Session):
    """A requests session that counts what goes over the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, int, int, int]] = []  # path, body up, down, headers
        self.pulled: Counter[str] = Counter()  # collections of the pulled changes

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[no-untyped-def]
        response = super().send(request, **kwargs)
        up = len(request.body or b"")
        # Content-Length is the size on the wire, before requests undoes any gzip.
        down = int(response.headers.get("Content-Length") or len(response.content))
        head = sum(len(k) + len(v) + 4 for k, v in request.headers.items()) + len(
            f"{request.method} {request.path_url} HTTP/1.1\r\n"
        )
        head += sum(len(k) + len(v) + 4 for k, v in response.headers.items()) + 17
        path = (request.path_url or "").split("?")[0]
        self.exchanges.append((path, up, down, head))
        if path.endswith("/sync/pull") and response.ok:
            self.pulled.update(c["collection"] for c in response.json().get("changes") or [])
        return response


def device(path: Path, doctor: str, visits: list[common.JSON]) -> LocalStore:
    """A device store holding `visits` as pending changes (saved as the client saves them)."""
    store = open_store(path)
    add(store, doctor, visits)
    return store


def add(store: LocalStore, doctor: str, visits: list[common.JSON]) -> None:
    own = {"doctor": doctor, "device_id": store.device_id, "form_version": 1}
    for visit in visits:
        store.save("visits", visit["id"], {k: v for k, v in visit.items() if k != "id"} | own)


def check(summary: SyncSummary, n: int, what: str) -> None:
    if summary.accepted != n or summary.pending or summary.rejected:
        raise SystemExit(f"error: {what}: accepted {summary.accepted} of {n}, rejected "
                         f"{len(summary.rejected)}, pending {summary.pending}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the same (1,000 is small)")
    parser.add_argument("--visits", type=int, default=1_000)
    parser.add_argument("--kbit-s", type=float, default=50)
    parser.add_argument("--rtt-ms", type=float, default=300)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    n = args.visits
    # Few doctors over three and a half years, so one (a posting doctor) has N visits.
    scenario = common.county(0, doctors=6, start=date(2022, 1, 3), weeks=190)
    by_doctor = Counter(v["doctor"] for v in scenario["visits"])
    doctor, count = by_doctor.most_common(1)[0]
    if count < n:
        raise SystemExit(f"the busiest doctor has {count} visits, wanted {n}")
    visits = [v for v in scenario["visits"] if v["doctor"] == doctor][:n]
    as_of = visits[-1]["check_in"][:10]
    # (2): the other doctor with the most visits in the week to `as_of`.
    week_start = date.fromordinal(date.fromisoformat(as_of).toordinal() - 6).isoformat()
    in_week = Counter(v["doctor"] for v in scenario["visits"]
                      if week_start <= v["check_in"][:10] <= as_of and v["doctor"] != doctor)  # fmt: skip
    other = in_week.most_common(1)[0][0]
    history = [v for v in scenario["visits"] if v["doctor"] == other and v["check_in"] <= as_of]
    week = [v for v in history if v["check_in"][:10] >= week_start]
    history = history[: len(history) - len(week)]
    scenario["visits"] = []
    bare_gzip = common.gzip_size(visits)
    link_name = f"{args.kbit_s:g} kbit/s, {args.rtt_ms:g} ms RTT"

    with common.workdir("bench-wire") as work:
        prod = common.prepare_production(work, scenario, [doctor, other],
                                         env={"ZHUXUN_RULES_AS_OF": as_of})  # fmt: skip
        server = prod.serve()
        try:
            with SlowLink(server.url, kbit_s=args.kbit_s, rtt_ms=args.rtt_ms) as link:
                # (1) A fresh device: login and sync, over the slow link.
                http = CountingHTTP()
                store = device(work / "fresh.sqlite3", doctor, visits)
                started = time.perf_counter()
                session = ServerAPI.login(link.url, common.username(doctor), common.PASSWORD,
                                          http=http)  # fmt: skip
                summary = run_sync(store, ServerAPI(session, http=http))
                fresh_s = time.perf_counter() - started
                store.close()
                check(summary, n, "fresh device")
                fresh_link = link.totals()
                # The same pull in the full form (what a device that does not ask for the
                # compact one gets; issue 14, the wire), over loopback: bytes only.
                full_http = CountingHTTP()
                full_http.headers.update({H_DEVICE_ID: http.headers[H_DEVICE_ID]})
                full_api = ServerAPI(replace(session, server=server.url), http=full_http,
                                     compact=False)  # fmt: skip
                cursor, more = None, True
                while more:
                    page = full_api.pull(cursor, MAX_PULL_LIMIT)
                    cursor, more = page["cursor"], page["has_more"]

                # (2) Another doctor's device: history synced over loopback, then a week.
                store = device(work / "weekly.sqlite3", other, history)
                session = ServerAPI.login(server.url, common.username(other), common.PASSWORD)
                check(run_sync(store, ServerAPI(session)), len(history), "history")
                add(store, other, week)
                weekly_http = CountingHTTP()
                slow = ServerAPI(replace(session, server=link.url), http=weekly_http)
                started = time.perf_counter()
                weekly = run_sync(store, slow)
                week_s = time.perf_counter() - started
                store.close()
                check(weekly, len(week), "a week")
        finally:
            server.stop()

    requests_n = len(http.exchanges)
    kinds = Counter(path.rsplit("/", 1)[-1] for path, *_ in http.exchanges)
    sync_ex = [e for e in http.exchanges if "/sync/" in e[0]]
    up = sum(e[1] for e in sync_ex)
    down = sum(e[2] for e in sync_ex)
    login_bytes = sum(e[1] + e[2] for e in http.exchanges if "/sync/" not in e[0])
    heads = sum(e[3] for e in http.exchanges)
    per_visit = (up + down) / n
    bare = bare_gzip / n
    pull_compact = sum(e[2] for e in sync_ex if e[0].endswith("/sync/pull"))
    pull_full = sum(e[2] for e in full_http.exchanges)
    per_visit_full = (up + down - pull_compact + pull_full) / n
    rows = [[p, f"{u:,}", f"{d:,}", f"{h:,}"] for p, u, d, h in http.exchanges]
    rows.append(["**total**", f"{sum(e[1] for e in http.exchanges):,}",
                 f"{sum(e[2] for e in http.exchanges):,}", f"{heads:,}"])  # fmt: skip
    week_up = sum(e[1] for e in weekly_http.exchanges)
    week_down = sum(e[2] for e in weekly_http.exchanges)
    body = [
        f"(1) A fresh device with {n:,} pending visits of doctor {doctor} (demo county, seed "
        f"{common.SEED}; rules as of {as_of}, the day of the last visit) logs in and runs the "
        f"offline client's sync against `zhuxun serve` over a simulated 2G link ({link_name}): "
        f"{summary.sent} sent, {summary.accepted} accepted, {summary.received} changes pulled "
        f"({', '.join(f'{v} {k}' for k, v in http.pulled.most_common()) or 'none'}; the "
        "device's own visits are not sent back).",
        "",
        common.table(["request", "body up", "body down", "headers (both ways)"], rows),
        "",
        f"- HTTP requests, login included: {requests_n} "
        f"({', '.join(f'{v} {k}' for k, v in kinds.items())}) — ≤ 3: "
        f"{common.goal(requests_n <= 3)}",
        f"- bodies a visit, push and pull: {per_visit:,.1f} bytes (up {up / n:,.1f}, down "
        f"{down / n:,.1f}); the bare records gzip to {bare:,.1f} bytes a visit; ratio "
        f"{per_visit / bare:.2f}x — ≤ 1.25x: {common.goal(per_visit <= 1.25 * bare)}",
        f"- the pull, compact form (`compact=1`, what both devices ask for) against the full "
        f"form in the same run: {pull_compact:,} against {pull_full:,} bytes "
        f"({pull_compact / n:,.1f} against {pull_full / n:,.1f} a visit); with the full form "
        f"the bodies would be {per_visit_full:,.1f} bytes a visit, {per_visit_full / bare:.2f}x",
        f"- with the login ({login_bytes:,} bytes of bodies): {(up + down + login_bytes) / n:,.1f}"
        f" bytes a visit ({(up + down + login_bytes) / bare_gzip:.2f}x); with every header "
        f"too: {(up + down + login_bytes + heads) / n:,.1f}",
        f"- over the 2G link: {fresh_s:.1f} s from login to quiet "
        f"({fresh_link[0]:,} bytes up, {fresh_link[1]:,} down on the link)",
        "",
        f"(2) Doctor {other}'s device, its {len(history):,} earlier visits synced before, "
        f"logs {len(week)} visits in the week to {as_of} and syncs over the same link on its "
        f"saved session: {len(weekly_http.exchanges)} requests, {week_up:,} bytes up and "
        f"{week_down:,} down (bodies), {weekly.received} changes pulled — "
        f"**{week_s:.2f} s**.",
    ]
    common.report("Wire: a fresh device syncs pending visits", "short" if args.short else "full",
                  "\n".join(body), save=not args.no_save)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
