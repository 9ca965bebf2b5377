"""Incremental pull: 100 changed visits among a small and a large table, side by side.

    python bench/bench_pull.py [--short] [--sizes N,N,...] [--chart] [--no-save]

One database is prepared with the `zhuxun` commands (the seeded demo county without visits,
a doctor and the county admin), then copied once per size. Each copy is seeded fast by
writing N visits straight into `sync_records` and `visits` (the schema of server/models.py)
with sqlite3 — a million pushes over HTTP would take hours — spread over the county's
doctors. Then `zhuxun serve` runs, the doctor pushes 100 edits of their own visits over
HTTP, and the pull from the cursor just before those edits is timed (median of repeats), as
that doctor and as the county admin, with its bytes. Goal (issue 7): the large case costs at
most 1.5x the small one.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import common
import requests

from sync.clock import HybridLogicalClock

CHANGED = 100
REPEATS = 7
_DT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores a value in SQLite


def _stamp(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime(_DT)


def seed(db_path: Path, scenario: common.JSON, total: int, doctor: str) -> list[str]:
    """Write `total` visits (version 1) straight into the tables; the ids of `doctor`'s
    last CHANGED ones, the visits the bench edits."""
    townships = {p["code"]: p["parent"] if p["level"] == "village" else p["code"]
                 for p in scenario["places"]}  # fmt: skip
    county = scenario["county"]["code"]
    templates = scenario["visits"]
    db = common.sqlite_connect(db_path)
    seq = db.execute("SELECT value FROM sync_counter WHERE id = 1").fetchone()[0]
    now = datetime.now(UTC).strftime(_DT)
    own: list[str] = []
    db.execute("BEGIN IMMEDIATE")
    chunk = 50_000
    for start in range(0, total, chunk):
        records, typed = [], []
        for i in range(start, min(total, start + chunk)):
            v = templates[i % len(templates)]
            vid = f"S-{i:07d}"
            seq += 1
            data = {k: x for k, x in v.items() if k != "id"}
            data.update(device_id=f"bench-{v['doctor'].lower()}", form_version=1)
            township = townships[v["place"]]
            records.append(("visits", vid, 1, 0, json.dumps(data, ensure_ascii=False), seq, None,
                            v["doctor"], township, county, now, common.username(v["doctor"]),
                            data["device_id"], 0.0))  # fmt: skip
            typed.append((vid, v["doctor"], v["place"], v.get("assignment"), v["kind"],
                           _stamp(v["check_in"]), _stamp(v["check_out"]), v["check_in"][:10],
                           v["patients"], 0, 1))  # fmt: skip
            if v["doctor"] == doctor:
                own.append(vid)
        db.executemany(
            "INSERT INTO sync_records (collection, id, version, deleted, data, seq, hlc, "
            "doctor_id, township_code, county_code, updated_at, updated_by, device_id, "
            "clock_skew_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
        db.executemany(
            "INSERT INTO visits (id, doctor_id, place_code, assignment_id, kind, check_in, "
            "check_out, local_date, patients, deleted, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            typed,
        )
    db.execute("UPDATE sync_counter SET value = ? WHERE id = 1", (seq,))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return own[-CHANGED:]


def edit(url: str, http: requests.Session, db_path: Path, ids: list[str]) -> int:
    """Push CHANGED edits of the doctor's visits over HTTP; the cursor just before them."""
    db = common.sqlite_connect(db_path)
    before = db.execute("SELECT value FROM sync_counter WHERE id = 1").fetchone()[0]
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT id, data FROM sync_records WHERE collection = 'visits' AND id IN ({marks})", ids
    ).fetchall()
    db.close()
    device = "bench-editor"
    clock = HybridLogicalClock(device)
    changes = []
    for vid, data in rows:
        data = json.loads(data)
        data["patients"] += 1
        change = common.visit_change({"id": vid, **data}, device, clock)
        change["base_version"] = 1
        changes.append(change)
    answer = http.post(url + "/api/v1/sync/push", data=common.push_body(changes, device, clock),
                       headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                       timeout=120)  # fmt: skip
    answer.raise_for_status()
    statuses = {r["status"] for r in answer.json()["results"]}
    if statuses != {"accepted"}:
        raise SystemExit(f"error: the edits were answered {statuses}")
    return int(before)


def pull_to_quiet(url: str, http: requests.Session, cursor: int) -> tuple[float, int, list[dict]]:
    """Pull from `cursor` until `has_more` is false; seconds, bytes on the wire, changes."""
    started = time.perf_counter()
    size, changes, at, more = 0, [], str(cursor), True
    while more:
        answer = http.get(url + "/api/v1/sync/pull", params={"cursor": at, "limit": 5000},
                          timeout=120)  # fmt: skip
        answer.raise_for_status()
        size += int(answer.headers.get("Content-Length") or len(answer.content))
        page = answer.json()
        changes += page["changes"]
        at, more = page["cursor"], page["has_more"]
    return time.perf_counter() - started, size, changes


def login_admin(url: str, admin: str) -> requests.Session:
    http = requests.Session()
    answer = http.post(f"{url}/api/v1/auth/login",
                       json={"username": admin, "password": common.PASSWORD}, timeout=60)  # fmt: skip
    answer.raise_for_status()
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="10,000 and 50,000 visits")
    parser.add_argument("--sizes", help="visits in the tables, comma-separated "
                        "(default 10,000, 100,000 and 1,000,000; short 10,000 and 50,000)")  # fmt: skip
    parser.add_argument("--chart", action="store_true", help="draw docs/bench-pull-size.svg")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    default = "10000,50000" if args.short else "10000,100000,1000000"
    sizes_n = [int(x) for x in (args.sizes or default).split(",")]
    small, large = sizes_n[0], sizes_n[-1]
    scenario = common.county(0, doctors=20, weeks=26)
    random.Random(common.SEED).shuffle(scenario["visits"])
    doctor = "D0001"
    admin = "county-admin"
    results = []
    table_rows = []
    with common.workdir("bench-pull") as work:
        base = work / "base"
        base.mkdir()
        reference = dict(scenario, visits=[])
        prod = common.prepare_production(base, reference, [doctor])
        county = reference["county"]["code"]
        common._run([str(common.BIN / "zhuxun"), "create-user", admin, "--role", "county_admin",
                     "--unit", county], prod.env)  # fmt: skip
        servers: list[common.Server] = []
        try:
            # Every size served at once and pulled in turn, so all see the same machine load.
            runs = []
            for total in sizes_n:
                copy = common.Production(work / str(total), prod.env, prod.doctors)
                copy.workdir.mkdir()
                shutil.copy(prod.db_path, copy.db_path)
                copy.env = dict(prod.env, ZHUXUN_DATABASE_URL=f"sqlite:///{copy.db_path}")
                t0 = time.perf_counter()
                ids = seed(copy.db_path, scenario, total, doctor)
                seed_s = time.perf_counter() - t0
                server = copy.serve()
                servers.append(server)
                sessions = {doctor: common.login(server.url, doctor),
                            admin: login_admin(server.url, admin)}  # fmt: skip
                cursor = edit(server.url, sessions[doctor], copy.db_path, ids)
                runs.append((total, seed_s, server, sessions, cursor, set(ids)))
            times: dict[tuple[int, str], list[float]] = {}
            sizes: dict[tuple[int, str], tuple[int, int]] = {}
            for repeat in range(REPEATS + 1):  # the first warms the workers and is not counted
                for total, _, server, sessions, cursor, ids in runs:
                    for who, http in sessions.items():
                        secs, size, changes = pull_to_quiet(server.url, http, cursor)
                        got = {c["id"] for c in changes if c["collection"] == "visits"}
                        if not ids <= got:
                            raise SystemExit(f"error: {who}'s pull missed {len(ids - got)} edits")
                        if repeat:
                            times.setdefault((total, who), []).append(secs)
                        sizes[(total, who)] = (size, len(changes))
        finally:
            for server in servers:
                server.stop()
        for total, seed_s, *_ in runs:
            row = [f"{total:,}", f"{seed_s:.1f}"]
            for who in (doctor, admin):
                secs = statistics.median(times[(total, who)])
                size, count = sizes[(total, who)]
                row += [f"{secs * 1000:.1f}", f"{size:,}", str(count)]
                results.append((total, who, secs, size))
            table_rows.append(row)

    def cost(total: int, who: str) -> tuple[float, int]:
        return next((s, b) for t, w, s, b in results if t == total and w == who)

    lines = []
    for who in (doctor, admin):
        (small_s, small_b), (large_s, large_b) = cost(small, who), cost(large, who)
        ratio = large_s / small_s
        lines.append(
            f"- {who}: {large:,} ÷ {small:,} {ratio:.2f}x in time, {large_b / small_b:.2f}x in bytes "
            f"— ≤ 1.5x: {common.goal(ratio <= 1.5 and large_b <= 1.5 * small_b)}"
        )
    header = ["visits in the table", "seeding s", f"{doctor} pull ms", "bytes", "changes",
              "admin pull ms", "bytes", "changes"]  # fmt: skip
    body = [
        f"{CHANGED} visits of {doctor} edited over HTTP (a push of {CHANGED}, with its flag "
        "re-evaluation) after the table was seeded directly; the pull from the cursor before "
        f"the edits, to quiet (gzip answers, as the client gets them), median of {REPEATS} "
        "after one warm-up, the tables served at once and pulled in turn; `changes` includes "
        "the flags and any "
        "other record the edits touched. Demo county seed "
        f"{common.SEED}, 20 doctors; {doctor} owns about 1/20 of the table.",
        "",
        common.table(header, table_rows),
        "",
        *lines,
    ]
    if args.chart:
        svg = common.ROOT / "docs" / "bench-pull-size.svg"
        common.svg_bars(
            svg, "incremental pull of 100 changes, ms (median)", "visits in the table",
            [f"{t:,}" for t in sizes_n],
            {who: [cost(t, who)[0] * 1000 for t in sizes_n] for who in (doctor, admin)},
        )  # fmt: skip
        body += ["", f"Chart: {svg.relative_to(common.ROOT)}"]
    common.report("Incremental pull", "short" if args.short else "full", "\n".join(body),
                  save=not args.no_save)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
