"""Requests and bytes for a fresh device to sync 1,000 pending visits: push, then pull to quiet.

    python bench/bench_wire.py [--short] [--visits N] [--no-save]

The real offline client (`offline_client.sync.run_sync`, its store and its HTTP API) on a
new device store holding one doctor's N pending visits from the seeded demo county, against
`zhuxun serve`. Every HTTP exchange is counted: bodies as they went over the wire (gzip where
sent so) and header bytes. Compared, in the same run, with the gzip size of the bare records.
Goals (issue 7): at most 3 HTTP requests; bytes a visit at most 1.25x the bare gzip.
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections import Counter
from datetime import date

import common
import requests

from offline_client.api import ServerAPI
from offline_client.store import open_store
from offline_client.sync import run_sync


class CountingHTTP(requests.Session):
    """A requests session that counts what goes over the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[str, int, int, int, int]] = []  # path, up, down, headers, gz
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
        # What the answer would weigh gzipped (the server sends it plain): a what-if.
        gz = len(gzip.compress(response.content, compresslevel=6, mtime=0))
        self.exchanges.append((path, up, down, head, gz))
        if path.endswith("/sync/pull") and response.ok:
            self.pulled.update(c["collection"] for c in response.json().get("changes") or [])
        return response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the same (1,000 is small)")
    parser.add_argument("--visits", type=int, default=1_000)
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
    scenario["visits"] = []
    bare_gzip = common.gzip_size(visits)

    with common.workdir("bench-wire") as work:
        prod = common.prepare_production(work, scenario, [doctor])
        server = prod.serve()
        try:
            http = CountingHTTP()
            session = ServerAPI.login(server.url, common.username(doctor), common.PASSWORD,
                                      http=http)  # fmt: skip
            login = list(http.exchanges)
            http.exchanges.clear()
            store = open_store(work / "device" / "zhuxun.sqlite3")
            device = {"doctor": doctor, "device_id": store.device_id, "form_version": 1}
            for visit in visits:
                data = {k: v for k, v in visit.items() if k != "id"} | device
                store.save("visits", visit["id"], data)
            started = time.perf_counter()
            summary = run_sync(store, ServerAPI(session, http=http))
            elapsed = time.perf_counter() - started
            store.close()
        finally:
            server.stop()

    if summary.accepted != n or summary.pending or summary.rejected:
        print(f"error: accepted {summary.accepted} of {n}, rejected {len(summary.rejected)}, "
              f"pending {summary.pending}")  # fmt: skip
        return 1
    requests_n = len(http.exchanges)
    kinds = Counter(path.rsplit("/", 1)[-1] for path, *_ in http.exchanges)
    up = sum(e[1] for e in http.exchanges)
    down = sum(e[2] for e in http.exchanges)
    heads = sum(e[3] for e in http.exchanges)
    per_visit = (up + down) / n
    bare = bare_gzip / n
    gz_down = sum(e[4] for e in http.exchanges)
    rows = [[p, f"{u:,}", f"{d:,}", f"{h:,}", f"{g:,}"] for p, u, d, h, g in http.exchanges]
    rows.append(["**total**", f"{up:,}", f"{down:,}", f"{heads:,}", f"{gz_down:,}"])
    body = [
        f"A fresh device with {n:,} pending visits of doctor {doctor} (demo county, seed "
        f"{common.SEED}) runs the offline client's sync against `zhuxun serve`: "
        f"{summary.sent} sent, {summary.accepted} accepted, {summary.received} changes pulled, "
        f"{elapsed:.2f} s. Login ({len(login)} request, {sum(e[1] + e[2] for e in login):,} "
        "bytes of bodies) is not counted.",
        "",
        common.table(
            ["request", "body up", "body down", "headers (both ways)", "body down if gzipped"], rows
        ),  # fmt: skip
        "",
        f"- HTTP requests: {requests_n} ({', '.join(f'{v} {k}' for k, v in kinds.items())}) "
        f"— ≤ 3: {common.goal(requests_n <= 3)}",
        f"- bodies a visit: {per_visit:,.0f} bytes (up {up / n:,.0f}, down {down / n:,.0f}); "
        f"the bare records gzip to {bare:,.0f} bytes a visit; ratio {per_visit / bare:.2f}x "
        f"— ≤ 1.25x: {common.goal(per_visit <= 1.25 * bare)}",
        f"- with headers: {(up + down + heads) / n:,.0f} bytes a visit",
        f"- if the server gzipped its answers: {(up + gz_down) / n:,.0f} bytes a visit "
        f"({(up + gz_down) / bare_gzip:.2f}x the bare gzip)",
        f"- pulled: {', '.join(f'{v} {k}' for k, v in http.pulled.most_common())} — the "
        f"device's own {n:,} visits come back to it",
    ]
    common.report("Wire: a fresh device syncs pending visits", "short" if args.short else "full",
                  "\n".join(body), save=not args.no_save)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
