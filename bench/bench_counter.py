"""The single counter row (issue 14, item 7): what ceiling does it put on writes?

    python bench/bench_counter.py [--short] [--seconds S] [--no-save]

Every writing transaction of Zhuxun starts by locking the one `sync_counter` row and holds
it to commit (server/store.py): sequence numbers then become visible in commit order, and a
pull cursor never skips a change. This measures, on the PostgreSQL at 127.0.0.1 (a fresh
schema of the database `test`, dropped afterwards), the write transaction of a push as SQL
alone, side by side in one run, so that no Python push work hides the lock:

- **one counter**: `UPDATE counter … RETURNING` (the lock), then 20 records (about 600
  bytes of JSON each, the size of a visit) inserted with their sequence numbers, commit;
- **a counter a county**: the same transaction, each client writing to its own county's
  counter row (what splitting the sequence by county would do);
- **no counter**: the same inserts, sequence numbers from a PostgreSQL sequence (no order
  guarantee at all: the floor).

Each with 1, 4 and 16 clients writing at once (16 counties, a client a county), for a fixed
time each. Throughput is committed transactions a second; the lock's cost is the gap between
one counter and the rest at the same number of clients.

Then the whole push path (`--http`, on by default in the full run): `zhuxun serve` on a
PostgreSQL schema, 16 doctors pushing 20-visit batches at once, while a sampler reads
`pg_stat_activity` every 10 ms: the share of the server's busy database connections that
are waiting for a lock (the counter row is the only lock a push waits for) says whether the
lock or the rest of the push is the limit.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import common
from sqlalchemy import create_engine, text

ROWS = 20  # a typical push (docs/scaling.md: 20-visit pushes)
COUNTIES = 16
CLIENTS = (1, 4, 16)

SCHEMA = """
CREATE TABLE counter (id int PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE records (id text PRIMARY KEY, county int NOT NULL, seq bigint NOT NULL,
                      data jsonb NOT NULL);
CREATE INDEX records_county_seq ON records (county, seq);
CREATE SEQUENCE free_seq;
"""

VISIT = {
    "doctor": "D000123", "assignment": "A000123", "place": "450123101201", "kind": "posting",
    "check_in": "2026-03-10T08:00:00+08:00", "check_out": "2026-03-10T16:30:00+08:00",
    "patients": 12, "lat": 23.1123, "lon": 108.3123, "accuracy_m": 12.0,
    "device_id": "tablet-000123", "form_version": 1, "recorded_at": "2026-03-10T16:40:00+08:00",
    "notes": "血压随访；慢病管理；" * 8,
}  # fmt: skip


def run(url: str, mode: str, clients: int, seconds: float) -> tuple[float, float]:
    """Committed transactions a second and the median transaction time (ms)."""
    engine = create_engine(url, pool_size=clients, max_overflow=0)
    data = json.dumps(VISIT, ensure_ascii=False)
    stop = threading.Event()
    counts = [0] * clients
    times: list[list[float]] = [[] for _ in range(clients)]
    insert = text("INSERT INTO records (id, county, seq, data) VALUES (:id, :county, :seq, "
                  "CAST(:data AS jsonb))")  # fmt: skip

    def client(n: int) -> None:
        county = n % COUNTIES
        row = 0 if mode == "one counter" else county + 1
        with engine.connect() as conn:
            while not stop.is_set():
                started = time.perf_counter()
                with conn.begin():
                    if mode == "no counter":
                        first = conn.execute(
                            text(f"SELECT setval('free_seq', nextval('free_seq') + {ROWS - 1})")
                        ).scalar_one() - ROWS + 1  # fmt: skip
                    else:
                        last = conn.execute(
                            text("UPDATE counter SET value = value + :n WHERE id = :id "
                                 "RETURNING value"), {"n": ROWS, "id": row},
                        ).scalar_one()  # fmt: skip
                        first = last - ROWS + 1
                    conn.execute(insert, [
                        {"id": f"{mode[:2]}-{clients}-{n}-{counts[n]}-{i}", "county": county,
                         "seq": first + i, "data": data}
                        for i in range(ROWS)
                    ])  # fmt: skip
                times[n].append(time.perf_counter() - started)
                counts[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    engine.dispose()
    every = sorted(t for per in times for t in per)
    return sum(counts) / elapsed, every[len(every) // 2] * 1000 if every else 0.0


def http_run(url: str, doctors: int, batch: int) -> tuple[str, list[str]]:
    """Push through `zhuxun serve` from `doctors` at once; the table rows and notes."""
    import requests

    app_name = "zhuxun_bench_counter"
    scenario = common.county(doctors * batch * 10, doctors=doctors)
    visits = scenario["visits"]
    pushing = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, batch)
    samples = {"active": 0, "lock": 0}
    waits: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        engine = create_engine(common.PG_URL)
        query = text("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                     "WHERE application_name = :name")  # fmt: skip
        with engine.connect() as conn:
            while not stop.is_set():
                for state, wait, event in conn.execute(query, {"name": app_name}):
                    if state == "active":
                        samples["active"] += 1
                        samples["lock"] += wait == "Lock"
                        name = f"{wait}:{event}" if wait else "on CPU"
                        waits[name] = waits.get(name, 0) + 1
                conn.rollback()
                time.sleep(0.01)
        engine.dispose()

    with common.workdir("bench-counter") as work:
        prod = common.prepare_production(
            work, scenario, pushing, database_url=f"{url}&application_name={app_name}"
        )
        server = prod.serve()
        try:
            sessions = {d: common.login(server.url, d) for d in pushing}
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

            def one_doctor(doctor: str) -> int:
                sent = 0
                for body in bodies[doctor]:
                    answer = sessions[doctor].post(server.url + "/api/v1/sync/push", data=body,
                                                   headers=headers, timeout=300)  # fmt: skip
                    answer.raise_for_status()
                    sent += len(answer.json()["results"])
                return sent

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            threads = [threading.Thread(target=one_doctor, args=(d,)) for d in pushing]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            stop.set()
            sampler.join()
        finally:
            server.stop()
    pushes = sum(len(b) for b in bodies.values())
    share = samples["lock"] / samples["active"] if samples["active"] else 0.0
    rows = [[len(pushing), batch, f"{pushes / elapsed:.1f}", f"{len(visits) / elapsed:,.0f}",
             f"{share:.0%}"]]  # fmt: skip
    notes = [
        f"- the whole push path through `zhuxun serve` ({common.WORKERS} workers x "
        f"{common.THREADS} threads) on PostgreSQL: {len(visits):,} visits of {len(pushing)} "
        f"doctors in {batch}-visit pushes, all at once; {samples['active']:,} samples of the "
        f"server's busy connections, {share:.0%} of them waiting for a lock",
        "- what the busy connections were doing: "
        + ", ".join(
            f"{name} {n / samples['active']:.0%}"
            for name, n in sorted(waits.items(), key=lambda item: -item[1])[:5]
        ),
    ]
    _ = requests
    return common.table(["doctors at once", "visits a push", "pushes/s", "visits/s",
                         "busy connections waiting for a lock"], rows), notes  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="2 s a run instead of 10")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--http", action=argparse.BooleanOptionalAction, default=None,
                        help="also the whole push path (default: in the full run)")  # fmt: skip
    args = parser.parse_args()
    http = args.http if args.http is not None else not args.short
    seconds = args.seconds or (2.0 if args.short else 10.0)
    modes = ("one counter", "a counter a county", "no counter")
    results: dict[tuple[str, int], tuple[float, float]] = {}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with common.pg_schema("bench_counter") as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
            conn.execute(text("INSERT INTO counter VALUES (:id, 0)"),
                         [{"id": i} for i in range(COUNTIES + 1)])  # fmt: skip
        engine.dispose()
        for clients in CLIENTS:
            for mode in modes:  # side by side at each number of clients
                results[(mode, clients)] = run(url, mode, clients, seconds)
    http_table, http_notes = "", []
    if http:
        with common.pg_schema("bench_counter_http") as url:
            http_table, http_notes = http_run(url, 16, ROWS)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    rows: list[list[Any]] = []
    for clients in CLIENTS:
        base = results[("no counter", clients)][0]
        for mode in modes:
            rate, median = results[(mode, clients)]
            rows.append([clients, mode, f"{rate:,.0f}", f"{rate * ROWS:,.0f}", f"{median:.1f}",
                         f"{rate / base:.2f}"])  # fmt: skip
    one = results[("one counter", CLIENTS[-1])][0]
    split = results[("a counter a county", CLIENTS[-1])][0]
    body = [
        f"The write transaction of a push as SQL alone ({ROWS} records of about "
        f"{len(json.dumps(VISIT, ensure_ascii=False).encode())} bytes of JSON, one "
        f"transaction), {seconds:.0f} s a run, PostgreSQL at 127.0.0.1 (fsync and synchronous "
        f"commit on, the server's defaults) on the same 2 cores as the clients; load average "
        f"{' '.join(load_before)} before, {' '.join(load_after)} after.",
        "",
        common.table(
            [
                "clients",
                "sequence from",
                "transactions/s",
                "records/s",
                "median ms",
                "÷ no counter",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"- at {CLIENTS[-1]} clients: one counter {one:,.0f} transactions/s "
        f"({one * ROWS:,.0f} records/s), a counter a county {split:,.0f} "
        f"({split / one:.2f}x)",
    ]
    if http_table:
        body += ["", http_table, "", *http_notes]
    common.report("The counter row", "short" if args.short else "full", "\n".join(body),
                  save=not args.no_save)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
