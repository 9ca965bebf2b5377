"""Kinto as a peer (issue 7, item 2): the same 10,000 visits written to Kinto with
kinto-http's batch and pushed to `zhuxun serve` as the offline client pushes them, one
client each, side by side: Kinto's memory backend against Zhuxun on SQLite, Kinto's
PostgreSQL backend against Zhuxun on PostgreSQL (each in a fresh schema of the database
`test` at 127.0.0.1:5432).

    python bench/bench_kinto.py [--short] [--visits N] [--no-save]

Kinto runs from bench/.kinto-venv, made by `make bench-env` (`kinto[postgresql]` and
kinto-http; gitignored, never a dependency of Zhuxun), under waitress, its default server.
Its memory backend writes nothing to disk while Zhuxun writes SQLite: Kinto has the easier
job there. Goals: Zhuxun >= 25x Kinto-memory (on SQLite), >= 50x Kinto-PostgreSQL (on
PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import common
from bench_push import production_run

KINTO_VENV = common.ROOT / "bench" / ".kinto-venv"
INI = """[app:main]
use = egg:kinto
{backends}
kinto.includes = kinto.plugins.default_bucket
multiauth.policies = basicauth
kinto.userid_hmac_secret = {secret}
kinto.bucket_create_principals = system.Authenticated

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""
MEMORY = """kinto.storage_backend = kinto.core.storage.memory
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.memory"""
POSTGRESQL = """kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = {url}
kinto.permission_backend = kinto.core.permission.postgresql
kinto.permission_url = {url}
kinto.cache_backend = kinto.core.cache.memory"""


def run_kinto(work: Path, backends: str, visits: list[common.JSON]) -> tuple[common.JSON, float]:
    """Start Kinto with `backends`, write `visits` through kinto-http's batch; the client's
    report and Kinto's peak RSS (MiB)."""
    port = common.free_port()
    ini = work / f"kinto-{port}.ini"
    ini.write_text(INI.format(backends=backends, port=port, secret="bench-" + "0" * 40),
                   encoding="utf-8")  # fmt: skip
    kinto = str(KINTO_VENV / "bin" / "kinto")
    if "postgresql" in backends:
        done = subprocess.run([kinto, "migrate", "--ini", str(ini)], capture_output=True,
                              text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"kinto migrate failed:\n{done.stdout}\n{done.stderr}")
    log = work / f"kinto-{port}.log"
    proc = subprocess.Popen([kinto, "start", "--ini", str(ini)], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    server = common.Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        common._wait_ready(server.url + "/v1/", proc, log)
        done = subprocess.run(
            [str(KINTO_VENV / "bin" / "python"), str(common.ROOT / "bench" / "kinto_client.py"),
             server.url + "/v1"],
            input=json.dumps(visits, ensure_ascii=False), capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        rss = common.rss_mib(proc.pid)
    finally:
        server.stop()
    if done.returncode != 0:
        raise SystemExit(f"the Kinto client failed:\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["stored"] != len(visits):
        raise SystemExit(f"error: Kinto stored {report['stored']} of {len(visits)}")
    return report, rss


def run_zhuxun(
    work: Path, scenario: common.JSON, database_url: str | None, evaluation: str = "request"
) -> tuple[float, int, int]:
    """Push the scenario's visits to a fresh `zhuxun serve`, one client, doctor after
    doctor, with the flags judged in the requests or (`evaluation="worker"`) by a `zhuxun
    worker` beside it; seconds until every push was answered, requests and bytes sent."""
    visits = scenario["visits"]
    doctors = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, common.CLIENT_BATCH)
    work.mkdir(exist_ok=True)
    run = production_run(work, scenario, doctors, bodies, 1, evaluation, database_url)
    if run["answers"]["accepted"] != len(visits):
        raise SystemExit(f"error: Zhuxun answered {dict(run['answers'])}; wanted {len(visits)} "
                         "accepted")  # fmt: skip
    return (
        run["seconds"],
        sum(len(b) for b in bodies.values()),
        sum(len(b) for own in bodies.values() for b in own),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the same 10,000 visits")
    parser.add_argument("--visits", type=int, default=10_000)
    parser.add_argument("--doctors", type=int, default=40)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    mode = "short" if args.short else "full"
    if not (KINTO_VENV / "bin" / "kinto").exists():
        print("error: bench/.kinto-venv has no Kinto; `make bench-env` installs it")
        return 1
    n = args.visits
    scenario = common.county(n, doctors=args.doctors)
    visits = scenario["visits"]
    with common.workdir("bench-kinto") as work:
        k_mem, rss_mem = run_kinto(work, MEMORY, visits)
        z_sqlite, z_requests, z_bytes = run_zhuxun(work / "sqlite", scenario, None)
        zw_sqlite, _, _ = run_zhuxun(work / "sqlite-worker", scenario, None, "worker")
        with common.pg_schema("bench_kinto") as url:
            # Kinto's PostgreSQL backend drives psycopg2; "%" doubled for the ini parser.
            kinto_url = url.replace("+psycopg", "").replace("%", "%%")
            k_pg, rss_pg = run_kinto(work, POSTGRESQL.format(url=kinto_url), visits)
        with common.pg_schema("bench_zhuxun") as url:
            z_pg, _, _ = run_zhuxun(work / "pg", scenario, url)
        with common.pg_schema("bench_zhuxun_worker") as url:
            zw_pg, _, _ = run_zhuxun(work / "pg-worker", scenario, url, "worker")

    def row(name: str, seconds: float, requests_n: int) -> list[str]:
        return [name, f"{seconds:.2f}", f"{n / seconds:,.0f}", f"{requests_n:,}"]

    vs_mem = k_mem["seconds"] / z_sqlite
    vs_pg = k_pg["seconds"] / z_pg
    vsw_mem = k_mem["seconds"] / zw_sqlite
    vsw_pg = k_pg["seconds"] / zw_pg
    body = [
        f"{n:,} visits of {args.doctors} doctors (demo county, seed {common.SEED}), one client "
        f"each. Zhuxun: `zhuxun serve` ({common.WORKERS} workers x {common.THREADS} threads), "
        f"each doctor's visits in its own session, gzip batches of up to "
        f"{common.CLIENT_BATCH:,} changes as the offline client sends them, full push "
        "semantics (change-id memory, conflict check, typed rows, the flags of the touched "
        "doctor-weeks judged in the push or queued for `zhuxun worker`). Kinto: "
        "one user through kinto-http's `batch()` (it splits by the server's "
        "`batch_max_requests`, 25), uncompressed JSON, waitress; PostgreSQL backend for "
        "storage and permissions (cache in memory), in its own schema of the same server.",
        "",
        common.table(
            ["server", "seconds", "visits/s", "HTTP requests"],
            [
                row("Zhuxun on SQLite, flags judged in the requests", z_sqlite, z_requests),
                row("Zhuxun on SQLite + `zhuxun worker`", zw_sqlite, z_requests),
                row("Kinto, memory backend", k_mem["seconds"], k_mem["requests"]),
                row("Zhuxun on PostgreSQL, flags judged in the requests", z_pg, z_requests),
                row("Zhuxun on PostgreSQL + `zhuxun worker`", zw_pg, z_requests),
                row("Kinto, PostgreSQL backend", k_pg["seconds"], k_pg["requests"]),
            ],
        ),  # fmt: skip
        "",
        f"- Zhuxun on SQLite ÷ Kinto-memory: {vs_mem:.1f}x in request mode, {vsw_mem:.1f}x with "
        f"the worker — ≥ 25x: {common.goal(max(vs_mem, vsw_mem) >= 25)}",
        f"- Zhuxun on PostgreSQL ÷ Kinto-PostgreSQL: {vs_pg:.1f}x in request mode, {vsw_pg:.1f}x "
        f"with the worker — ≥ 50x: {common.goal(max(vs_pg, vsw_pg) >= 50)}",
        f"- request bodies up: Zhuxun {z_bytes:,} bytes (gzip), Kinto {k_mem['bytes_up']:,}",
        f"- Kinto peak RSS: {rss_mem:.0f} MiB (memory backend, holds every record), "
        f"{rss_pg:.0f} MiB (PostgreSQL backend)",
    ]
    common.report("Kinto peer", mode, "\n".join(body), save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
