"""Benchmark of the county summaries on the demo county (not a timed test).

    python bench/bench_summaries.py [--short] [--postgres URL]

Imports the demo county generator's county (150 doctors x 26 weeks, about 24,000 visits;
--short: 20 doctors x 8 weeks) into a fresh SQLite file (or a fresh schema of the PostgreSQL
database at URL, dropped afterwards), judges its
flags, approves a few doctor-weeks, then times: a month's summary with the county's data
loaded from the database (cold) and kept (warm), the CSV, the XLSX, the compliance trend over
six months and the three charts. Prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = date(2026, 7, 5)
MONTH = "2026-03"


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@contextmanager
def _database(postgres: str | None, tmp: str) -> Iterator[dict[str, Any]]:
    if postgres is None:
        yield {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3"}
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {
            "SQLALCHEMY_DATABASE_URI": postgres,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-c search_path={schema}"}},
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--postgres", help="a postgresql+psycopg:// URL; default SQLite")
    args = parser.parse_args()

    from demo_county import generate_county
    from server import summaries
    from server.actor import Actor
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db
    from server.flags import evaluate_all
    from server.review import workflow as review
    from server.summaries import charts, exports
    from server.summaries import county as summaries_county

    size = {"doctors": 20, "villages": 20, "townships": 3, "weeks": 8} if args.short else {}
    county = generate_county(**size)
    with tempfile.TemporaryDirectory() as tmp, _database(args.postgres, tmp) as config:
        url = config["SQLALCHEMY_DATABASE_URI"]
        app = create_app({"TESTING": True, "ZHUXUN_ENV": "test", **config})
        with app.app_context():
            from server.records.importer import import_scenario

            init_db()
            import_scenario(db.session, county)
            code = county["county"]["code"]
            evaluate_all(db.session, ruleset="guangxi", as_of=AS_OF, cause="bench")
            admin = Actor("bench", "county_admin", None, None, code)
            for doctor in [d["id"] for d in county["doctors"]][:20]:
                for week in ("2026-W10", "2026-W11"):
                    review.approve_week(db.session, admin, doctor, week, reason=None)

            def summary() -> dict[str, Any]:
                return summaries.county_summary(
                    db.session, admin, month=MONTH, ruleset_name="guangxi", as_of=AS_OF
                )

            def cold() -> dict[str, Any]:
                summaries_county._SCENARIOS.clear()
                return summary()

            rows: list[tuple[str, float]] = []
            t, result = timed(cold, 3)
            rows.append(("summary of a month, data loaded from the database", t))
            t, result = timed(summary, 5)
            rows.append(("summary of a month, county data kept", t))
            rows.append(("CSV of the summary", timed(lambda: exports.to_csv(result), 3)[0]))
            rows.append(("XLSX of the summary", timed(lambda: exports.to_xlsx(result), 3)[0]))
            months = summaries.months_until(AS_OF, 6)
            t, trend = timed(
                lambda: summaries.compliance_trend(
                    db.session, admin, months, ruleset_name="guangxi", as_of=AS_OF
                ),
                3,
            )
            rows.append(("compliance trend, 6 months (data kept)", t))
            doctor = county["doctors"][0]["id"]
            t, heat = timed(
                lambda: summaries.duty_heatmap(db.session, admin, doctor, 12, as_of=AS_OF), 5
            )
            rows.append(("duty heatmap data, 12 weeks", t))
            rows.append(("trend SVG", timed(lambda: charts.compliance_trend_svg(trend), 5)[0]))
            rows.append(("heatmap SVG", timed(lambda: charts.duty_heatmap_svg(heat), 5)[0]))
            rows.append(
                (
                    "coverage map SVG",
                    timed(lambda: charts.coverage_map_svg(result["villages"]), 5)[0],
                )
            )
        visits = len(county["visits"])
        backend = url.split(":", 1)[0]
        print(
            f"demo county: {len(county['doctors'])} doctors, {visits} visits, "
            f"{len(result['villages'])} villages; {backend}; month {MONTH}; medians"
        )
        print()
        print("| step | seconds |")
        print("|---|---:|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
