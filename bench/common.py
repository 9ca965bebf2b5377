"""What every sync benchmark shares: the seeded demo data, the production server and the
bare floor server as subprocesses (127.0.0.1 only, always stopped), the machine description,
and the result table appended to docs/benchmarks.md.

Not a library of the project: only `bench/` imports it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo_county import generate_county  # noqa: E402
from sync.batch import encode  # noqa: E402
from sync.clock import HybridLogicalClock  # noqa: E402
from sync.protocol import DEFAULT_MAX_BATCH_CHANGES  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "docs" / "benchmarks.md"
PASSWORD = "bench-password-" + "x" * 8  # a throwaway server's users; never reused
WORKERS, THREADS = 2, 4  # `zhuxun serve` defaults; the bare server is served the same way
SEED = 2026
CLIENT_BATCH = DEFAULT_MAX_BATCH_CHANGES  # the offline client's batch (offline_client/sync_loop.py)

JSON = dict[str, Any]


# --- data ----------------------------------------------------------------------------------


def county(
    visits: int, *, doctors: int, seed: int = SEED, start: date = date(2025, 1, 6), weeks: int = 0
) -> JSON:
    """A demo county with at least `visits` visits, cut to exactly that many (earliest first;
    0 keeps them all).

    The generator writes 2 to 6 visits a doctor-week; the weeks follow from the count,
    villages and townships from the doctors (the generator's 150 : 120 : 10). Starting on
    the first Monday of 2025 keeps every visit in the past: the server refuses visits more
    than a day ahead."""
    weeks = weeks or max(4, round(visits / (3 * doctors)) + 2)
    scenario = generate_county(
        seed=seed, doctors=doctors, weeks=weeks, start=start,
        villages=max(12, doctors * 4 // 5), townships=min(899, max(2, doctors // 15)),
    )  # fmt: skip
    if len(scenario["visits"]) < visits:
        raise SystemExit(f"the generator gave {len(scenario['visits'])} visits, wanted {visits}")
    if visits:
        scenario["visits"] = scenario["visits"][:visits]
    last = scenario["visits"][-1]["check_in"][:10] if scenario["visits"] else ""
    if last >= date.today().isoformat():
        raise SystemExit("the visits reach today; fewer weeks, more doctors or an earlier start")
    return scenario


def visit_change(visit: JSON, device_id: str, clock: HybridLogicalClock) -> JSON:
    """A new visit as the offline client pushes it (docs/sync-protocol.md, "Push"): its HLC
    stamp stands for the change id."""
    data = {k: v for k, v in visit.items() if k != "id"}
    data.update(device_id=device_id, form_version=1)
    return {
        "collection": "visits",
        "id": visit["id"],
        "op": "upsert",
        "base_version": 0,
        "hlc": clock.now().encode(),
        "data": data,
    }


def push_body(changes: list[JSON], device_id: str, clock: HybridLogicalClock) -> bytes:
    """A gzip push body as the offline client sends it, asking for a compact answer."""
    return encode(
        {
            "device_id": device_id,
            "batch_id": uuid.uuid4().hex,
            "sent_at": datetime.now(UTC).isoformat(),
            "clock": clock.now().encode(),
            "changes": changes,
            "compact": True,
        }
    )


def batches_by_doctor(visits: list[JSON], size: int) -> dict[str, list[bytes]]:
    """Gzip push bodies of `size` changes, each doctor's own, prepared before timing."""
    by_doctor: dict[str, list[JSON]] = {}
    for visit in visits:
        by_doctor.setdefault(visit["doctor"], []).append(visit)
    out: dict[str, list[bytes]] = {}
    for doctor, own in by_doctor.items():
        device = f"bench-{doctor.lower()}"
        clock = HybridLogicalClock(device)
        changes = [visit_change(v, device, clock) for v in own]
        out[doctor] = [
            push_body(changes[i : i + size], device, clock) for i in range(0, len(changes), size)
        ]
    return out


def username(doctor_id: str) -> str:
    return doctor_id.lower()


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer {url} in {timeout_s} s:\n{log.read_text()}")


@dataclass
class Server:
    """A running server subprocess; `stop()` ends it and its workers."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def worker_pids(self) -> list[int]:
        pids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
        return pids

    def peak_rss_mib(self) -> float:
        """The largest peak resident set (VmHWM) of any worker, MiB."""
        return max((rss_mib(pid) for pid in self.worker_pids()), default=0.0)

    def reset_peak_rss(self) -> None:
        """Start the workers' VmHWM again from their current RSS (Linux: clear_refs 5)."""
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop, workers too
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


PG_URL = os.environ.get("ZHUXUN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL at PG_URL (database `test`), dropped afterwards; yields
    the SQLAlchemy URL whose connections use it."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def scalar(database_url: str, sql: str) -> Any:
    """One value from the database (SQLite file or PostgreSQL schema)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    """A process's peak (VmHWM) or current (VmRSS) resident set, MiB; 0 if it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ZHUXUN_DATABASE_URL=database_url,
        ZHUXUN_SECRET_KEY=secrets.token_urlsafe(48),
        ZHUXUN_ENV="production",
        ZHUXUN_PASSWORD=PASSWORD,
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class Production:
    """A database prepared with the `zhuxun` commands, for one or more server runs."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    doctors: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.workdir / "zhuxun.sqlite3"

    @property
    def database_url(self) -> str:
        return self.env["ZHUXUN_DATABASE_URL"]

    def serve(self) -> Server:
        port = free_port()
        log = self.workdir / f"serve-{port}.log"
        args = [str(BIN / "zhuxun"), "serve", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(WORKERS), "--threads", str(THREADS)]  # fmt: skip
        proc = subprocess.Popen(args, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        try:
            _wait_ready(server.url + "/api/v1/health", proc, log)
        except BaseException:
            server.stop()
            raise
        return server

    def worker(self) -> Server:
        """`zhuxun worker` on this database (ZHUXUN_EVALUATION=worker), looking every 50 ms
        when idle; `stop()` sends SIGTERM, which it answers by finishing its round."""
        log = self.workdir / "worker.log"
        args = [str(BIN / "zhuxun"), "worker", "--idle", "0.05"]
        proc = subprocess.Popen(args, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        return Server(proc, "", log)


_CREATE_USERS = """
import json, os, sys
from server.app import create_app
from server.database import add_user
with create_app().app_context():
    for doctor in json.loads(sys.argv[1]):
        add_user(doctor.lower(), os.environ["ZHUXUN_PASSWORD"], "doctor", doctor_id=doctor)
"""


def prepare_production(
    workdir: Path,
    scenario: JSON,
    doctors: list[str],
    *,
    env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> Production:
    """`zhuxun init-db`, `zhuxun import` of the scenario without visits, and a doctor user
    for each doctor. `env` adds settings (e.g. ZHUXUN_RULES_AS_OF) for these and the server;
    `database_url` is a PostgreSQL schema's (`pg_schema`), else a SQLite file in `workdir`."""
    url = database_url or f"sqlite:///{workdir / 'zhuxun.sqlite3'}"
    prod = Production(workdir, {**_env(url), **(env or {})}, doctors)
    zhuxun = str(BIN / "zhuxun")
    _run([zhuxun, "init-db"], prod.env)
    reference = {k: v for k, v in scenario.items() if k not in ("visits", "meta")}
    scenario_file = workdir / "scenario.json"
    scenario_file.write_text(json.dumps(reference, ensure_ascii=False), encoding="utf-8")
    _run([zhuxun, "import", str(scenario_file)], prod.env)

    # One process for all users, calling what `zhuxun create-user` calls: one CLI process a
    # user costs 1.5 s of start-up, 20 minutes for the full run's doctors.
    _run([sys.executable, "-c", _CREATE_USERS, json.dumps(doctors)], prod.env)
    return prod


def login(url: str, doctor: str) -> requests.Session:
    http = requests.Session()
    answer = http.post(f"{url}/api/v1/auth/login",
                       json={"username": username(doctor), "password": PASSWORD}, timeout=60)  # fmt: skip
    answer.raise_for_status()
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


def serve_bare(workdir: Path) -> Server:
    """bench/bare_app.py under gunicorn with the settings `zhuxun serve` uses."""
    port = free_port()
    log = workdir / f"bare-{port}.log"
    env = dict(os.environ, BENCH_BARE_DB=str(workdir / "bare.sqlite3"))
    args = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
            "--threads", str(THREADS), "--worker-class", "gthread", "--timeout", "60",
            "--graceful-timeout", "10", "--chdir", str(ROOT / "bench"), "bare_app:create_app()"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(server.url + "/health", proc, log)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"zhuxun-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """The pragmas the server sets on every connection (server/app.py)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def gzip_size(records: list[JSON]) -> int:
    raw = json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode()
    return len(gzip.compress(raw, compresslevel=6, mtime=0))


# --- the report ----------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("zhuxun", "flask", "sqlalchemy", "marshmallow", "gunicorn", "requests")
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · commit {commit or '?'} · "
        f"nproc {os.cpu_count()} · {_memory()} · {_cpu_model()} · "
        f"Python {platform.python_version()} · SQLite {sqlite3.sqlite_version} · {versions}"
    )


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, mode: str, body: str, *, save: bool = True) -> None:
    """Print the result and append it, with the machine, to docs/benchmarks.md."""
    text = f"### {title} ({mode})\n\n{machine()}\n\n{body}\n"
    print(text, flush=True)
    if save:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + text)


def svg_bars(
    path: Path, title: str, x_label: str, groups: list[str], series: dict[str, list[float]]
) -> None:
    """A grouped bar chart (one group a label, one bar a series), hand-written SVG."""
    colours = ["#4a7ab5", "#d98b3a", "#5a9e5a", "#a04a8a"]
    width, height, left, bottom, top_pad = 520, 300, 60, 56, 34
    top = max(max(values) for values in series.values()) * 1.15 or 1
    group_w = (width - left - 20) / len(groups)
    bar_w = group_w * 0.7 / len(series)
    plot_h = height - bottom - top_pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="{width / 2}" y="18" text-anchor="middle">{title}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
             'stroke="black"/>']  # fmt: skip
    for g, label in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.15
        for k, (_, values) in enumerate(series.items()):
            h = plot_h * values[g] / top
            x, y = x0 + k * bar_w, height - bottom - h
            parts += [
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" '
                f'fill="{colours[k % len(colours)]}"/>',
                f'<text x="{x + bar_w * 0.45:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                f'font-size="10">{values[g]:,.0f}</text>',
            ]
        parts.append(f'<text x="{x0 + bar_w * len(series) / 2:.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{label}</text>')  # fmt: skip
    parts.append(f'<text x="{width / 2}" y="{height - bottom + 34}" text-anchor="middle">'
                 f"{x_label}</text>")  # fmt: skip
    if len(series) > 1:
        for k, name in enumerate(series):
            x = left + k * 150
            parts += [f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
                      f'fill="{colours[k % len(colours)]}"/>',
                      f'<text x="{x + 14}" y="{height - 5}">{name}</text>']  # fmt: skip
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def goal(met: bool) -> str:
    return "**met**" if met else "**not met**"
