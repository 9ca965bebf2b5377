"""Kinto as a peer (issue 7, item 2): the same visits written to Kinto with kinto-http's
batch and pushed to `zhuxun serve` in 500-change gzip batches, one client each, side by side.

    python bench/bench_kinto.py [--visits N] [--no-save]

Kinto runs from bench/.kinto-venv (`python -m venv bench/.kinto-venv && bench/.kinto-venv/
bin/pip install kinto kinto-http`; gitignored, never a dependency of Zhuxun) with its memory
backend, so it writes nothing to disk while Zhuxun writes SQLite: Kinto has the easier job.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import common
from bench_push import push_all

KINTO_VENV = common.ROOT / "bench" / ".kinto-venv"
INI = """[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.memory
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the same 10,000 visits")
    parser.add_argument("--visits", type=int, default=10_000)
    parser.add_argument("--doctors", type=int, default=40)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    mode = "short" if args.short else "full"
    if not (KINTO_VENV / "bin" / "kinto").exists():
        common.report("Kinto peer", mode, "Not measured: bench/.kinto-venv has no Kinto "
                      "(see this script's docstring to install it).", save=not args.no_save)  # fmt: skip
        return 0
    n = args.visits
    scenario = common.county(n, doctors=args.doctors)
    visits = scenario["visits"]
    doctors = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, 500)
    with common.workdir("bench-kinto") as work:
        port = common.free_port()
        ini = work / "kinto.ini"
        ini.write_text(INI.format(port=port, secret="bench-" + "0" * 40), encoding="utf-8")
        log = work / "kinto.log"
        kinto = subprocess.Popen([str(KINTO_VENV / "bin" / "kinto"), "start", "--ini", str(ini)],
                                 stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        server = common.Server(kinto, f"http://127.0.0.1:{port}", log)
        try:
            common._wait_ready(server.url + "/v1/", kinto, log)
            done = subprocess.run(
                [str(KINTO_VENV / "bin" / "python"), str(common.ROOT / "bench" / "kinto_client.py"),
                 server.url + "/v1"],
                input=json.dumps(visits, ensure_ascii=False), capture_output=True, text=True,
                check=False,
            )  # fmt: skip
            kinto_rss = server.peak_rss_mib() or _rss(kinto.pid)
        finally:
            server.stop()
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            return 1
        k = json.loads(done.stdout.strip().splitlines()[-1])

        prod = common.prepare_production(work, scenario, doctors)
        zserver = prod.serve()
        try:
            sessions = {d: common.login(zserver.url, d) for d in doctors}
            z_s, answers = push_all(zserver.url, "/api/v1/sync/push", sessions, bodies, 1)
        finally:
            zserver.stop()
    if k["stored"] != n or answers["accepted"] != n:
        print(f"error: Kinto stored {k['stored']}, Zhuxun accepted {dict(answers)}; wanted {n}")
        return 1
    z_requests = sum(len(b) for b in bodies.values())
    z_up = sum(len(b) for own in bodies.values() for b in own)
    rows = [
        ["Zhuxun `zhuxun serve` (SQLite, flags)", f"{z_s:.2f}", f"{n / z_s:,.0f}", z_requests,
         f"{z_up:,}"],
        ["Kinto 26 + kinto-http batch (memory)", f"{k['seconds']:.2f}", f"{n / k['seconds']:,.0f}",
         k["requests"], f"{k['bytes_up']:,}"],
    ]  # fmt: skip
    body = [
        f"{n:,} visits of {len(doctors)} doctors (demo county, seed {common.SEED}), one client "
        "each; Zhuxun in each doctor's session, 500-change gzip batches; Kinto as one user "
        "through kinto-http's `batch()` (it splits by the server's `batch_max_requests`, 25), "
        "uncompressed JSON, memory backend, waitress.",
        "",
        common.table(["server", "seconds", "visits/s", "HTTP requests", "bytes up"], rows),
        "",
        f"- Zhuxun ÷ Kinto throughput: {(n / z_s) / (n / k['seconds']):.2f}x",
        f"- Kinto process peak RSS: {kinto_rss:.0f} MiB (holds every record in memory)",
    ]
    common.report("Kinto peer", mode, "\n".join(body), save=not args.no_save)
    return 0


def _rss(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(hwm[0].split()[1]) / 1024 if hwm else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
