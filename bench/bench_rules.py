"""The rules over a stored county: the full evaluation, the incremental one after a push,
and the time to read the same rows into Python, side by side (issue 7, item 5).

    python bench/bench_rules.py [--short] [--doctors N] [--weeks W] [--no-save]

A demo county (demo_county/generator.py, seed 2026; full: 1,000 doctors x 26 weeks, about 150k
visits; short: 100 doctors x 8 weeks) is imported into a SQLite file with the importer
(not timed). Then, in one process:

1. **read**: the rows a full evaluation reads (the county's places and doctors, their
   assignments, every live visit, leave and training record) fetched with the plain
   sqlite3 driver and their JSON decoded: the floor of reading them into Python;
2. **full**: `server.flags.evaluate_all`, what `zhuxun import` and `zhuxun reevaluate` run:
   read through SQLAlchemy, parse (`rules.scenario.trusted_scenario`: stored records were
   validated on the way in), evaluate every rule, store every
   flag with its history and sync record; timed by step;
3. **incremental**: one push of 500 new visits by 50 doctors in the last two weeks is
   written as a push writes it (`SqlSyncStore.apply_batch`, the doctor-weeks it makes stale
   into the evaluation queue; not timed), then settling the queue (`server.evaluation_queue.
   settle` with `server.flags.judge_entries`: the doctors' weeks judged on a window of the
   stored data) is timed; its stored flags must equal a full evaluation's for those doctors
   and weeks, or the run fails.

Before each timed step the heap is collected and frozen (`quiet_heap`): a collection of the
bench's own data must not land inside a step.

Goals: full <= 10x read; incremental <= 2% of full.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import secrets
import sqlite3
import time
from datetime import date, datetime, timedelta, timezone

import common

from rules import evaluate, load_scenario
from rules.scenario import trusted_scenario

START = date(2025, 1, 6)
CHINA = timezone(timedelta(hours=8))


def read_rows(db_path: str, county: str) -> int:
    """The rows `server.flags.scenario_for` reads, with the sqlite3 driver; the row count."""
    db = sqlite3.connect(db_path)
    try:
        units = db.execute("SELECT code, name, level, parent_code, population, has_clinic, lat, "
                           "lon FROM org_units WHERE county_code = ?", (county,)).fetchall()  # fmt: skip
        doctors = db.execute("SELECT id, name, qualification, home_code FROM doctors "
                             "WHERE county_code = ?", (county,)).fetchall()  # fmt: skip
        assignments = [
            (a, d, k, json.loads(p), s, e, json.loads(slots) if slots else [])
            for a, d, k, p, s, e, slots in db.execute(
                "SELECT id, doctor_id, kind, places, start, \"end\", slots FROM assignments "
                "WHERE doctor_id IN (SELECT id FROM doctors WHERE county_code = ?)", (county,))
        ]  # fmt: skip
        records = [
            (c, i, json.loads(data))
            for c, i, data in db.execute(
                "SELECT collection, id, data FROM sync_records WHERE collection IN "
                "('visits', 'leave', 'trainings') AND deleted = 0 AND doctor_id IN "
                "(SELECT id FROM doctors WHERE county_code = ?)", (county,))
        ]  # fmt: skip
    finally:
        db.close()
    return len(units) + len(doctors) + len(assignments) + len(records)


def clocks() -> tuple[float, float]:
    """Now, on the wall clock and in this process's CPU time."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since `start` (`clocks()`)."""
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def quiet_heap() -> None:
    """Collect, then set aside what this process holds (the generated county, the parsed
    scenario, the full evaluation's flags): a server process holds none of it, and a full
    collection of it (0.1-0.2 s) landing inside a 0.07 s step would measure the bench, not
    the step (issue 14). Called before each timed step alike."""
    gc.collect()
    gc.freeze()


def push_batch(scenario: common.JSON, as_of: date, size: int = 500) -> list[common.JSON]:
    """`size` new visits by 50 posting doctors in the last two weeks before `as_of`."""
    rng = random.Random(common.SEED + 1)
    postings = [a for a in scenario["assignments"] if a["kind"] == "posting"]
    chosen = rng.sample(postings, min(50, len(postings)))
    out = []
    for i in range(size):
        a = chosen[i % len(chosen)]
        day = as_of - timedelta(days=rng.randrange(14))
        check_in = datetime(day.year, day.month, day.day, 18, tzinfo=CHINA)
        check_in += timedelta(minutes=rng.randrange(180))
        out.append({
            "id": f"B-{i:04d}", "doctor": a["doctor"], "assignment": a["id"],
            "place": a["places"][0], "kind": "posting", "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(hours=1)).isoformat(), "patients": 3,
            "device_id": "bench", "form_version": 1,
            "recorded_at": (check_in + timedelta(hours=2)).isoformat(),
        })  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="100 doctors x 8 weeks")
    parser.add_argument("--doctors", type=int)
    parser.add_argument("--weeks", type=int)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a pyinstrument profile of the incremental re-evaluation",
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    doctors = args.doctors or (100 if args.short else 1000)
    weeks = args.weeks or (8 if args.short else 26)
    mode = "short" if args.short else "full"
    if args.doctors or args.weeks:
        mode = f"{doctors} doctors x {weeks} weeks"
    scenario = common.county(0, doctors=doctors, weeks=weeks, start=START)
    county = scenario["county"]["code"]
    as_of = START + timedelta(weeks=weeks) - timedelta(days=1)

    with common.workdir("bench-rules") as work:
        db_path = work / "zhuxun.sqlite3"
        os.environ.update(ZHUXUN_DATABASE_URL=f"sqlite:///{db_path}",
                          ZHUXUN_SECRET_KEY=secrets.token_urlsafe(48), ZHUXUN_ENV="production")  # fmt: skip
        from server import evaluation_queue
        from server.app import create_app
        from server.database import init_db
        from server.extensions import db
        from server.flags import judge_entries, ruleset_named, scenario_for, store_flags
        from server.models import FlagRecord
        from server.records.importer import import_scenario
        from server.records.projections import BatchProjection
        from server.records.sql_store import RecordScope, SqlSyncStore, WriteContext
        from sync.protocol import Op
        from sync.records import Change

        app = create_app()
        ruleset = app.config["ZHUXUN_RULESET"]
        with app.app_context():
            t0 = time.perf_counter()
            init_db()
            import_scenario(db.session, scenario)
            setup_s = time.perf_counter() - t0
            session = db.session
            visits = len(scenario["visits"])

            read_runs = []
            for _ in range(3):  # the best of three: the floor
                t = clocks()
                rows_read = read_rows(str(db_path), county)
                read_runs.append(since(t))
            read_s, read_cpu = min(read_runs)

            # The full evaluation, step by step (evaluate_all does these four for a county).
            steps: dict[str, tuple[float, float]] = {}
            quiet_heap()
            t = clocks()
            data = scenario_for(session, {county}, None)
            steps["read (SQLAlchemy)"] = since(t)
            t = clocks()
            parsed = trusted_scenario(data)
            steps["parse (trusted_scenario)"] = since(t)
            t = clocks()
            flags = evaluate(parsed, as_of=as_of, ruleset=ruleset_named(ruleset))
            steps["evaluate (rules)"] = since(t)
            session.rollback()
            t = clocks()
            stored = store_flags(session, flags, FlagRecord.county_code == county, cause="bench")
            steps["store flags (first time)"] = since(t)
            full_s = sum(wall for wall, _ in steps.values())
            full_cpu = sum(cpu for _, cpu in steps.values())

            # One push of 500 visits, written as a push writes it; then its re-evaluation.
            batch = push_batch(scenario, as_of)
            store = SqlSyncStore(session, projector=BatchProjection())
            scopes = {d["id"]: d for d in scenario["doctors"]}
            townships = {p["code"]: p["parent"] for p in scenario["places"]}
            items = [
                (Change("visits", v["id"], Op.UPSERT, f"c-{v['id']}", 0,
                        {k: x for k, x in v.items() if k != "id"}),
                 RecordScope(v["doctor"], townships[v["place"]], county))
                for v in batch
            ]  # fmt: skip
            # Written as a push writes it: the doctor-weeks it makes stale go in the queue.
            store.apply_batch(items, WriteContext(origin="bench", device_id="bench"),
                              stale=evaluation_queue.PUSH)  # fmt: skip
            stale = evaluation_queue.stale_weeks(store.written)
            touched = {s.doctor_id for s in stale}
            period = (min(s.week for s in stale), max(s.week for s in stale) + timedelta(days=6))
            assert len(scopes) >= len(touched)
            settings = evaluation_queue.Settings(ruleset=ruleset, as_of=as_of)
            quiet_heap()
            profiler = None
            if args.profile:
                from pyinstrument import Profiler  # dev extra

                profiler = Profiler(interval=0.0005)
                profiler.start()
            t = clocks()
            settled = evaluation_queue.settle(session, settings, judge_entries)
            inc_s, inc_cpu = since(t)
            assert settled.entries == len(stale) and not settled.failed, settled
            if profiler is not None:
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False))

            # Correct as well as fast: the stored flags of those doctors and weeks equal a
            # full evaluation's of the data with the push.
            scenario["visits"] = scenario["visits"] + batch
            monday = period[0] - timedelta(days=period[0].weekday())
            sunday = period[1] + timedelta(days=6 - period[1].weekday())
            expected = {
                f.key
                for f in evaluate(load_scenario(scenario), as_of=as_of,
                                  ruleset=ruleset_named(ruleset), doctors=touched,
                                  period=(monday, sunday))
                if f.doctor is not None
            }  # fmt: skip
            got = {
                row.key
                for row in session.query(FlagRecord).filter(
                    FlagRecord.doctor_id.in_(touched), FlagRecord.state == "open",
                    FlagRecord.scope_start <= sunday, FlagRecord.scope_end >= monday)
            }  # fmt: skip
            session.rollback()
            if got != expected:
                print(f"error: after the push {len(got ^ expected)} flags differ from a full "
                      f"evaluation's, e.g. {sorted(got ^ expected)[:3]}")  # fmt: skip
                return 1

    rows = [["read the rows into Python (sqlite3, json), best of 3", f"{read_s:.2f}",
             f"{read_cpu:.2f}", f"{rows_read:,.0f} rows"]]  # fmt: skip
    rows += [
        [f"full: {name}", f"{wall:.2f}", f"{cpu:.2f}", ""] for name, (wall, cpu) in steps.items()
    ]
    rows += [["**full evaluation**", f"**{full_s:.2f}**", f"**{full_cpu:.2f}**",
              f"{len(flags):,} flags ({stored.opened:,} opened)"],
             ["incremental after a 500-visit push", f"{inc_s:.3f}", f"{inc_cpu:.3f}",
              f"{len(touched)} doctors, {len(stale)} doctor-weeks ({settled.groups} group(s)), "
              f"{period[0]}..{period[1]}; {settled.flag_changes} flag changes"]]  # fmt: skip
    body = [
        f"Demo county (seed {common.SEED}): {doctors:,} doctors x {weeks} weeks, "
        f"{visits:,} visits, rules `{ruleset}` as of {as_of}; SQLite, one process. "
        f"Import (not timed) {setup_s:.0f} s.",
        "",
        common.table(["step", "seconds", "CPU seconds", ""], rows),
        "",
        f"- full ÷ read: {full_s / read_s:.1f}x — ≤ 10x: {common.goal(full_s <= 10 * read_s)}",
        f"- incremental ÷ full: {inc_s / full_s:.2%} — ≤ 2%: {common.goal(inc_s <= 0.02 * full_s)}"
        f" (in CPU time {inc_cpu / full_cpu:.2%}: less moved by other work on a shared machine)",
        "- the incremental result equals the full evaluation's for the pushed doctors and "
        "weeks (checked)",
    ]
    common.report("Rules over a stored county", mode, "\n".join(body), save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
