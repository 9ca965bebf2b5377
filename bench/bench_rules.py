"""Benchmark of the rules engine on a synthetic county (not a timed test).

    python bench/bench_rules.py [--short] [--seed N]

Generates 1,000 doctors x 26 weeks (about 150k visits; --short: 100 doctors x 8 weeks) with a
fixed seed, then times: loading the scenario dict, a full evaluation, and an incremental
re-evaluation of the doctor-weeks touched by one 500-visit batch (one scoped call per touched
ISO week, as the server does after a push), with and without a prebuilt Index. It checks the
incremental result equals the full result filtered to the same scope, and prints a table.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules import Index, evaluate, load_scenario, preset  # noqa: E402
from rules.periods import week_start  # noqa: E402

TZ = timezone(timedelta(hours=8))
START = date(2026, 1, 5)


def visit(vid: str, doctor: str, place: str, kind: str, day: date, hour: float, hours: float,
          rng: random.Random, assignment: str | None = None) -> dict[str, Any]:  # fmt: skip
    check_in = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(hours=hour)
    check_out = check_in + timedelta(hours=hours)
    return {
        "id": vid, "doctor": doctor, "assignment": assignment, "place": place, "kind": kind,
        "check_in": check_in.isoformat(), "check_out": check_out.isoformat(),
        "patients": rng.randrange(0, 40), "lat": 23.0 + rng.random() * 0.001, "lon": 108.0,
        "recorded_at": (check_out + timedelta(hours=rng.choice([0.1, 1, 30, 200]))).isoformat(),
    }  # fmt: skip


def make_county(doctors: int, n_weeks: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    places: list[dict[str, Any]] = [{"code": "C", "name": "县", "level": "county", "parent": None}]
    n_townships = max(2, doctors // 50)
    villages = []
    for t in range(n_townships):
        places.append({"code": f"T{t:03d}", "name": f"镇{t}", "level": "township", "parent": "C"})
        for v in range(20):
            code = f"T{t:03d}V{v:02d}"
            villages.append(code)
            places.append({"code": code, "name": f"村{v}", "level": "village", "parent": f"T{t:03d}",
                           "population": rng.randrange(100, 3000), "has_clinic": rng.random() < 0.6,
                           "lat": 23.0, "lon": 108.0})  # fmt: skip
    end = START + timedelta(weeks=n_weeks) - timedelta(days=1)
    docs, assignments, visits, leave = [], [], [], []
    n = 0
    for i in range(doctors):
        did = f"D{i:04d}"
        kind = "posting" if i % 10 < 6 else "patrol" if i % 10 < 9 else "sitin"
        township = f"T{rng.randrange(n_townships):03d}"
        qual = rng.choice(["physician", "assistant_physician", "village_doctor", "village_doctor"])
        docs.append({"id": did, "name": did, "qualification": qual, "home": township})
        if kind == "posting":
            places_of = [rng.choice(villages)]
        elif kind == "patrol":
            places_of = rng.sample(villages, 3)
        else:
            places_of = [township]
        slots = (
            [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "am"}] if kind == "patrol" else []
        )
        aid = f"A{i:04d}"
        assignments.append({"id": aid, "doctor": did, "kind": kind, "places": places_of,
                            "start": START.isoformat(), "end": end.isoformat(), "slots": slots})  # fmt: skip
        for day_index in range(n_weeks * 7):
            day = START + timedelta(days=day_index)
            weekday = day.isoweekday()
            if kind == "posting" and weekday <= 5 and rng.random() < 0.97:
                visits.append(
                    visit(f"X{n}", did, places_of[0], kind, day, 8, rng.choice([4, 4.5, 3.5]), rng)
                )
                n += 1
                if rng.random() < 0.45:
                    visits.append(visit(f"X{n}", did, places_of[0], kind, day, 14, 3, rng))
                    n += 1
            elif kind == "patrol" and weekday in (1, 2, 3, 4) and rng.random() < 0.95:
                visits.append(
                    visit(
                        f"X{n}",
                        did,
                        rng.choice(places_of),
                        kind,
                        day,
                        8,
                        rng.choice([3.5, 4, 3]),
                        rng,
                    )
                )
                n += 1
            elif kind == "sitin" and weekday in (3, 5) and rng.random() < 0.9:
                visits.append(visit(f"X{n}", did, township, kind, day, 8, 8, rng))
                n += 1
        if rng.random() < 0.2:
            first = START + timedelta(days=rng.randrange(n_weeks * 7))
            leave.append({"doctor": did, "start": first.isoformat(),
                          "end": (first + timedelta(days=2)).isoformat(), "status": "approved"})  # fmt: skip
    return {"places": places, "doctors": docs, "assignments": assignments, "visits": visits,
            "leave": leave, "trainings": []}  # fmt: skip


def batch_of(county: dict[str, Any], size: int, seed: int) -> list[dict[str, Any]]:
    """A push: `size` new visits by 50 doctors in the last two weeks of the data."""
    rng = random.Random(seed + 1)
    posted = [a for a in county["assignments"] if a["kind"] == "posting"]
    chosen = rng.sample(posted, min(50, len(posted)))
    last = date.fromisoformat(chosen[0]["end"])
    out = []
    for i in range(size):
        a = chosen[i % len(chosen)]
        day = last - timedelta(days=rng.randrange(14))
        out.append(
            visit(
                f"B{i}", a["doctor"], a["places"][0], "posting", day, 18 + rng.random() * 3, 1, rng
            )
        )
    return out


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="100 doctors x 8 weeks")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    doctors, n_weeks = (100, 8) if args.short else (1000, 26)
    ruleset = preset("guangxi")
    county, t_gen = timed(lambda: make_county(doctors, n_weeks, args.seed))
    as_of = START + timedelta(weeks=n_weeks) - timedelta(days=1)
    scenario, t_load = timed(lambda: load_scenario(county))
    full, t_full = timed(lambda: evaluate(scenario, as_of=as_of, ruleset=ruleset))

    batch = batch_of(county, 500, args.seed)
    county["visits"] = county["visits"] + batch
    scenario2, t_load2 = timed(lambda: load_scenario(county))
    touched: dict[date, set[str]] = defaultdict(set)
    for v in batch:
        touched[week_start(date.fromisoformat(v["check_in"][:10]))].add(v["doctor"])

    def incremental(index: Index | None) -> dict[str, Any]:
        out = {}
        idx = index or Index(scenario2, as_of)
        for monday, who in touched.items():
            period = (monday, monday + timedelta(days=6))
            for f in evaluate(
                scenario2, as_of=as_of, ruleset=ruleset, doctors=who, period=period, index=idx
            ):
                out[f.key] = f
        return out

    inc, t_inc = timed(lambda: incremental(None))
    index, t_index = timed(lambda: Index(scenario2, as_of))
    inc2, t_inc2 = timed(lambda: incremental(index))
    full2, t_full2 = timed(lambda: evaluate(scenario2, as_of=as_of, ruleset=ruleset))
    expected = {
        f.key: f
        for monday, who in touched.items()
        for f in full2
        if f.in_scope(who, (monday, monday + timedelta(days=6)))
    }
    assert inc == expected == inc2, "incremental result differs from the filtered full result"

    rows = [
        ("generate county (dicts)", t_gen, f"{doctors} doctors x {n_weeks} weeks, {len(county['visits']) - len(batch):,} visits"),
        ("load_scenario", t_load, f"{len(scenario.visits):,} visits validated"),
        ("full evaluation", t_full, f"{len(full):,} flags"),
        ("load_scenario + batch", t_load2, f"{len(batch)} new visits, {sum(map(len, touched.values()))} doctor-weeks"),
        ("incremental (with Index build)", t_inc, f"{len(touched)} scoped calls, {len(inc):,} flags"),
        ("  Index build alone", t_index, ""),
        ("incremental (prebuilt Index)", t_inc2, "equals full result filtered to scope"),
        ("full re-evaluation after batch", t_full2, f"{len(full2):,} flags"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'step'.ljust(width)}  {'seconds':>8}  notes")
    for name, seconds, note in rows:
        print(f"{name.ljust(width)}  {seconds:8.3f}  {note}")


if __name__ == "__main__":
    main()
