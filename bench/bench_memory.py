"""Peak memory (issue 7, item 6): the offline client syncing a 100,000-visit outbox, and a
server worker while 100 devices sync at once.

    python bench/bench_memory.py [--short] [--outbox N] [--devices D] [--no-save]

The seeded demo county (full: 800 doctors, 100,000 visits; short: 20 doctors, 5,000) is
prepared for `zhuxun serve` as in bench/bench_push.py, with a county-admin user.

1. **Client**: a device store holds every visit of the county as pending changes (a county
   office's data-entry PC signed in as the county admin: a doctor's tablet holds only its
   own). The first 1,000 are saved through `LocalStore.save`; the rest are written as the
   same rows with SQL, because `save` takes about 5 ms a visit (over 8 minutes for
   100,000). Then `bench/memory_client.py`, a process of its own, logs in and runs the
   offline client's sync: pushes in batches, pulls to quiet. Its peak resident set
   (VmHWM) is the measure; goal <= 150 MB.
2. **Server**: a fresh `zhuxun serve` (2 workers x 4 threads); D devices (threads here,
   each with its own store and the real client), each holding 50 new visits of its own
   doctor, log in and sync at the same moment. The largest VmHWM of a worker is the
   measure; goal <= 250 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import common

from offline_client.local import LocalStore, open_store
from offline_client.server_api import ServerAPI
from offline_client.session import Session
from offline_client.sync_loop import run_sync
from sync.clock import HLCTimestamp, HybridLogicalClock

ADMIN = "county-admin"
SAVED = 1_000  # visits saved through the client's API; the rest are cloned rows
DEVICE_VISITS = 50


def fill_outbox(store: LocalStore, visits: list[common.JSON]) -> None:
    """`visits` as pending changes in `store`: the first SAVED through `save`, the rest as
    copies of the rows `save` wrote (the visit row and its outbox entry), with their own
    ids, data, HLC stamps, sequence numbers, change ids and outbox positions."""

    def data_of(visit: common.JSON) -> common.JSON:
        data = {k: v for k, v in visit.items() if k != "id"}
        return data | {"device_id": store.device_id, "form_version": 1}

    saved, cloned = visits[:SAVED], visits[SAVED:]
    with store.transaction():
        for visit in saved:
            store.save("visits", visit["id"], data_of(visit))
    if not cloned:
        return
    db = store.db
    model_row = next(db["visits"].rows_where("id = ?", [saved[-1]["id"]]))
    model_entry = next(db["outbox"].rows_where("record_id = ?", [saved[-1]["id"]]))
    meta = {row["key"]: row["value"] for row in db["meta"].rows}
    clock = HybridLogicalClock(store.device_id, last=HLCTimestamp.decode(meta["hlc"]))
    seq, position = int(meta["seq"]), int(meta["outbox_position"])
    rows, entries = [], []
    for visit in cloned:
        hlc = clock.now().encode()
        seq, position = seq + 1, position + 1
        data = json.dumps(data_of(visit), ensure_ascii=False)
        rows.append({**model_row, "id": visit["id"], "data": data, "hlc": hlc, "seq": seq})
        entries.append({**model_entry, "record_id": visit["id"], "change_id": uuid.uuid4().hex,
                        "data": data, "hlc": hlc, "position": position})  # fmt: skip
    with store.transaction():
        db["visits"].insert_all(rows, batch_size=5000)
        db["outbox"].insert_all(entries, batch_size=5000)
        for key, value in (("hlc", clock.last.encode()), ("seq", str(seq)),
                           ("outbox_position", str(position))):  # fmt: skip
            db["meta"].upsert({"key": key, "value": value}, pk="key")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="5,000 visits, 20 devices")
    parser.add_argument("--outbox", type=int, help="visits in the client's outbox")
    parser.add_argument("--devices", type=int, help="devices syncing at once (default 100)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    n = args.outbox or (5_000 if args.short else 100_000)
    devices = args.devices or (20 if args.short else 100)
    doctors_n = max(devices, n // 125)
    mode = "short" if args.short else "full"
    scenario = common.county(n, doctors=doctors_n)
    visits = scenario["visits"]
    county = scenario["county"]["code"]
    doctors = sorted({v["doctor"] for v in visits})[:devices]
    if len(doctors) < devices:
        raise SystemExit(f"only {len(doctors)} doctors have visits, wanted {devices}")

    with common.workdir("bench-memory") as work:
        prod = common.prepare_production(work, scenario, doctors)
        common._run([str(common.BIN / "zhuxun"), "create-user", ADMIN, "--role", "county_admin",
                     "--unit", county], prod.env)  # fmt: skip

        # 1. The client with the whole county in its outbox.
        store = open_store(work / "office.sqlite3")
        t0 = time.perf_counter()
        fill_outbox(store, visits)
        fill_s = time.perf_counter() - t0
        pending = store.outbox_count()
        store.close()
        server = prod.serve()
        try:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("memory_client.py")),
                 str(work / "office.sqlite3"), server.url, ADMIN, common.PASSWORD],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        finally:
            server.stop()
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            return 1
        client = json.loads(done.stdout.strip().splitlines()[-1])
        if client["accepted"] != n or client["pending"] or client["rejected"]:
            print(f"error: the client's sync answered {client}; wanted {n} accepted")
            return 1

        # 2. D devices at once against a fresh server.
        own = {d: [dict(v, id=f"{v['id']}-m") for v in visits if v["doctor"] == d]
               [:DEVICE_VISITS] for d in doctors}  # fmt: skip
        stores = {}
        for doctor in doctors:
            stores[doctor] = open_store(work / f"tablet-{doctor}.sqlite3", any_thread=True)
            fill_outbox(stores[doctor], own[doctor])
        server = prod.serve()
        results: dict[str, object] = {}
        start = threading.Barrier(len(doctors))

        sessions: dict[str, Session] = {}

        def login(doctor: str) -> None:
            try:
                sessions[doctor] = ServerAPI.login(
                    server.url, common.username(doctor), common.PASSWORD, timeout_s=600
                )
            except Exception as exc:  # noqa: BLE001 - reported below, fails the run
                results[doctor] = exc

        def sync(doctor: str) -> None:
            try:
                start.wait()
                api = ServerAPI(sessions[doctor], timeout_s=600)
                results[doctor] = run_sync(stores[doctor], api)
            except Exception as exc:  # noqa: BLE001 - reported below, fails the run
                results[doctor] = exc

        def all_at_once(work: Callable[[str], None]) -> float:
            threads = [threading.Thread(target=work, args=(d,)) for d in doctors]
            t0 = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.perf_counter() - t0

        try:
            login_s = all_at_once(login)
            login_rss = server.peak_rss_mib()
            server.reset_peak_rss()  # the sync's own peak, apart from the logins'
            devices_s = all_at_once(sync)
            worker_rss = server.peak_rss_mib()
            workers = len(server.worker_pids())
        finally:
            server.stop()
            for store in stores.values():
                store.close()
        failed = {d: r for d, r in results.items()
                  if isinstance(r, Exception) or r.accepted != len(own[d])}  # type: ignore[union-attr]  # fmt: skip
        if failed or len(results) != len(doctors):
            doctor, why = next(iter(failed.items())) if failed else ("?", "no result")
            print(f"error: {len(failed)} devices failed, e.g. {doctor}: {why!r}")
            return 1
        received = sum(r.received for r in results.values())  # type: ignore[union-attr]

    body = [
        f"Demo county (seed {common.SEED}): {len(scenario['doctors'])} doctors, {n:,} visits.",
        "",
        common.table(
            ["what", "peak RSS (VmHWM)", "goal", ""],
            [
                [
                    f"client syncing a {pending:,}-visit outbox (county admin)",
                    f"{client['peak_rss_mib']:.0f} MiB",
                    "≤ 150 MB",
                    common.goal(client["peak_rss_mib"] * 1.048576 <= 150),
                ],
                [
                    f"server worker, {devices} devices syncing at once",
                    f"{worker_rss:.0f} MiB",
                    "≤ 250 MB",
                    common.goal(worker_rss * 1.048576 <= 250),
                ],
                [
                    f"server worker, the same {devices} devices logging in at once (before)",
                    f"{login_rss:.0f} MiB",
                    "(report only)",
                    "",
                ],
            ],
        ),  # fmt: skip
        "",
        f"- client: {client['sent']:,} sent in batches of up to {common.CLIENT_BATCH:,}, "
        f"{client['accepted']:,} accepted, {client['received']:,} changes pulled, "
        f"{client['seconds']:.0f} s; {client['rss_before_mib']:.0f} MiB before the sync "
        f"(interpreter and imports). Filling its store took {fill_s:.0f} s (not timed).",
        f"- server: {devices} devices x {DEVICE_VISITS} new visits log in at the same moment "
        f"({login_s:.1f} s for all), then sync (push, pull to quiet) at the same moment "
        f"through the real client: {devices_s:.1f} s for all, {received:,} changes pulled in "
        f"all; {workers} workers x {common.THREADS} threads. The workers' peak is reset "
        "between the two (/proc/PID/clear_refs): a login hashes the password with scrypt, "
        "whose cost here (N=32768, r=8) is 32 MiB a hash, up to four at once in a worker.",
    ]
    common.report("Memory", mode, "\n".join(body), save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
