"""Where a production push spends its time: cProfile of the push view, in process.

    python bench/profile_push.py [--visits N] [--doctors D] [--top K]

The app from `create_app` on a temporary SQLite file (the pragmas of production), the demo
county imported without visits and evaluated, one doctor user a doctor; then each doctor's
gzip batches of 500 go through Flask's test client under cProfile. Prints the functions by
cumulative time, and the share of the push spent in flag re-evaluation.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import time

import common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=2_000)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    scenario = common.county(args.visits, doctors=args.doctors)
    visits = scenario["visits"]
    doctors = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, 500)
    with common.workdir("profile-push") as work:
        os.environ.update(
            ZHUXUN_DATABASE_URL=f"sqlite:///{work / 'z.sqlite3'}",
            ZHUXUN_SECRET_KEY=secrets.token_urlsafe(48),
            ZHUXUN_ENV="production",
        )
        from server import api
        from server.app import create_app
        from server.auth import create_user
        from server.database import init_db
        from server.extensions import db
        from server.flags import evaluate_all
        from server.importer import import_scenario

        app = create_app()
        with app.app_context():
            init_db()
            reference = {k: v for k, v in scenario.items() if k not in ("visits", "meta")}
            import_scenario(db.session, reference)
            evaluate_all(db.session, ruleset=app.config["ZHUXUN_RULESET"],
                         as_of=api.rules_as_of(), cause="evaluate")  # fmt: skip
            for doctor in doctors:
                create_user(common.username(doctor), common.PASSWORD, "doctor", doctor_id=doctor)
        client = app.test_client()
        tokens = {}
        for doctor in doctors:
            answer = client.post("/api/v1/auth/login",
                                 json={"username": common.username(doctor), "password": common.PASSWORD})  # fmt: skip
            tokens[doctor] = answer.get_json()["access_token"]

        # Time spent in flag re-evaluation, measured by wrapping the hook the view calls.
        flag_s = [0.0]
        original = api.reevaluate_flags

        def timed(session, rows):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return original(session, rows)
            finally:
                flag_s[0] += time.perf_counter() - t

        api.reevaluate_flags = timed
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for doctor in doctors:
            for body in bodies[doctor]:
                answer = client.post("/api/v1/sync/push", data=body, headers={
                    "Content-Type": "application/json", "Content-Encoding": "gzip",
                    "Authorization": f"Bearer {tokens[doctor]}"})  # fmt: skip
                assert answer.status_code == 200, answer.get_data(as_text=True)
        profile.disable()
        elapsed = time.perf_counter() - started
        api.reevaluate_flags = original
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    print(f"{len(visits)} visits of {len(doctors)} doctors in {elapsed:.2f} s under cProfile "
          f"({len(visits) / elapsed:.0f} visits/s); flag re-evaluation {flag_s[0]:.2f} s "
          f"({flag_s[0] / elapsed:.0%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
