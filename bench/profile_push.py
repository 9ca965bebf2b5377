"""Where a production push spends its time: a profile of the push view, in process.

    python bench/profile_push.py [--visits N] [--doctors D] [--batch B] [--postgresql]
                                  [--cprofile] [--top K] [--html FILE]

The app from `create_app` on a temporary SQLite file (the pragmas of production), the demo
county imported without visits and evaluated, one doctor user a doctor; then each doctor's
gzip batches go through Flask's test client under pyinstrument (a sampling profiler, the
call tree with the share of each function; dev extra) or, with --cprofile, cProfile (the
functions by cumulative time). Prints also the share of the push spent in flag
re-evaluation.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import time
from pathlib import Path

import common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=2_000)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="changes a push")
    parser.add_argument("--cprofile", action="store_true", help="cProfile, not pyinstrument")
    parser.add_argument("--top", type=int, default=30, help="cProfile: functions shown")
    parser.add_argument("--html", help="pyinstrument: also write the HTML report here")
    parser.add_argument("--postgresql", action="store_true",
                        help="a fresh schema of the PostgreSQL at 127.0.0.1:5432, not SQLite")  # fmt: skip
    args = parser.parse_args()
    scenario = common.county(args.visits, doctors=args.doctors)
    visits = scenario["visits"]
    doctors = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, args.batch)
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(common.workdir("profile-push"))
        url = (
            stack.enter_context(common.pg_schema("profile_push"))
            if args.postgresql
            else f"sqlite:///{work / 'z.sqlite3'}"
        )
        os.environ.update(
            ZHUXUN_DATABASE_URL=url,
            ZHUXUN_SECRET_KEY=secrets.token_urlsafe(48),
            ZHUXUN_ENV="production",
        )
        from server import flags
        from server.api import context
        from server.app import create_app
        from server.database import add_user, init_db
        from server.extensions import db
        from server.flags import evaluate_all
        from server.records.importer import import_scenario

        app = create_app()
        with app.app_context():
            init_db()
            reference = {k: v for k, v in scenario.items() if k not in ("visits", "meta")}
            import_scenario(db.session, reference)
            evaluate_all(db.session, ruleset=app.config["ZHUXUN_RULESET"],
                         as_of=context.rules_as_of(), cause="evaluate")  # fmt: skip
            for doctor in doctors:
                add_user(common.username(doctor), common.PASSWORD, "doctor", doctor_id=doctor)
        client = app.test_client()
        tokens = {}
        for doctor in doctors:
            answer = client.post("/api/v1/auth/login",
                                 json={"username": common.username(doctor), "password": common.PASSWORD})  # fmt: skip
            tokens[doctor] = answer.get_json()["access_token"]

        # Time spent judging flags (settling the evaluation queue), measured by wrapping the
        # function the push service calls after its commit.
        flag_s = [0.0]
        original = flags.settle_stale

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                flag_s[0] += time.perf_counter() - t

        flags.settle_stale = timed
        profiler = Profiler(args)
        started = time.perf_counter()
        with profiler:
            for doctor in doctors:
                for body in bodies[doctor]:
                    answer = client.post("/api/v1/sync/push", data=body, headers={
                        "Content-Type": "application/json", "Content-Encoding": "gzip",
                        "Authorization": f"Bearer {tokens[doctor]}"})  # fmt: skip
                    assert answer.status_code == 200, answer.get_data(as_text=True)
                    summary = answer.get_json()["summary"]
                    assert summary["rejected"] == 0, answer.get_data(as_text=True)[:2000]
        elapsed = time.perf_counter() - started
        flags.settle_stale = original
        with app.app_context():
            db.session.remove()
            db.engine.dispose()  # before the schema is dropped
    print(profiler.text())
    print(f"{len(visits)} visits of {len(doctors)} doctors in {elapsed:.2f} s under "
          f"{profiler.name} ({len(visits) / elapsed:.0f} visits/s); flag re-evaluation "
          f"{flag_s[0]:.2f} s ({flag_s[0] / elapsed:.0%})")  # fmt: skip
    return 0


class Profiler:
    """pyinstrument (default) or cProfile around a block; `text()` is the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = "cProfile" if args.cprofile else "pyinstrument"
        if args.cprofile:
            self.profile = cProfile.Profile()
        else:
            from pyinstrument import Profiler as Sampler  # dev extra

            self.profile = Sampler(interval=0.0005)

    def __enter__(self) -> None:
        if self.args.cprofile:
            self.profile.enable()
        else:
            self.profile.start()

    def __exit__(self, *exc: object) -> None:
        if self.args.cprofile:
            self.profile.disable()
        else:
            self.profile.stop()

    def text(self) -> str:
        if self.args.cprofile:
            if os.environ.get("PROFILE_DUMP"):  # for pstats' print_callers and the like
                self.profile.dump_stats(os.environ["PROFILE_DUMP"])
            out = io.StringIO()
            pstats.Stats(self.profile, stream=out).sort_stats(
                os.environ.get("PROFILE_SORT", "cumulative")
            ).print_stats(self.args.top)
            return out.getvalue()
        if self.args.html:
            Path(self.args.html).write_text(self.profile.output_html(), encoding="utf-8")
        return self.profile.output_text(unicode=True, color=False, show_all=False)


if __name__ == "__main__":
    raise SystemExit(main())
