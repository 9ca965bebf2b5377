"""Shared pieces of the reliability tests: the production server (`zhuxun serve`, gunicorn)
in its own process group on a prepared database, and a fleet of tablets that run the real
offline client (store + sync loop) against it over HTTP, timing every call."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from offline_client.local import LocalStore, new_id, open_store
from offline_client.server_api import ServerAPI
from offline_client.sync_loop import SyncSummary, run_sync
from sync.protocol import VISITS
from tests.builders import PASSWORD, TOWNSHIP_A, VILLAGE_A1, VILLAGE_A2, small_scenario, visit_data
from tests.conftest import BACKENDS, PG_URL, make_app

LONG = os.environ.get("ZHUXUN_LONG_TESTS") == "1"

# Transport faults and login throttling do not depend on the database: SQLite in
# `make test`, both backends in `make test-long` (the machine is shared).
sqlite_unless_long = pytest.mark.parametrize("backend", BACKENDS if LONG else ["sqlite"])

ZHUXUN = Path(sys.executable).parent / "zhuxun"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a database for served processes ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fleet:
    """The doctors of a load run: `doctors` of them in township A, each with a patrol
    assignment and a user `l001`…, plus the users of tests.builders (admin, rev_a, …)."""

    doctors: int

    def doctor(self, n: int) -> tuple[str, str, str]:
        """(username, doctor id, assignment id) of doctor `n` (0-based)."""
        return f"l{n + 1:03d}", f"L{n + 1:03d}", f"AL{n + 1:03d}"

    def scenario(self) -> dict[str, Any]:
        scenario = small_scenario()
        for n in range(self.doctors):
            _, doctor, assignment = self.doctor(n)
            scenario["doctors"].append(
                {
                    "id": doctor,
                    "name": f"医生{n + 1}",
                    "qualification": "physician",
                    "home": TOWNSHIP_A,
                }
            )
            scenario["assignments"].append(
                {
                    "id": assignment,
                    "doctor": doctor,
                    "kind": "patrol",
                    "places": [VILLAGE_A1, VILLAGE_A2],
                    "start": "2026-01-05",
                    "end": None,
                    "slots": [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "pm"}],
                }
            )
        return scenario


@dataclass(frozen=True, slots=True)
class Database:
    """A prepared database: the URL a served process is given, and a way to count rows."""

    url: str
    engine_options: dict[str, Any]

    def scalar(self, sql: str) -> Any:
        engine = create_engine(self.url, **self.engine_options)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()


def prepare_database(config: dict[str, Any], fleet: Fleet) -> Database:
    """Schema, the fleet's scenario and users in the database of `config` (tests.conftest
    app_config); the connection pool is closed again, so only served processes hold one."""
    from server.database import add_user
    from server.extensions import db

    app = make_app(config, fleet.scenario())
    with app.app_context():
        for n in range(fleet.doctors):
            username, doctor, _ = fleet.doctor(n)
            add_user(username, PASSWORD, "doctor", doctor_id=doctor)
        db.session.remove()
        db.engine.dispose()
    url = config["SQLALCHEMY_DATABASE_URI"]
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    return Database(url, options)


def served_url(database: Database, *, port: int | None = None, name: str = "zhuxun") -> str:
    """The database URL for `ZHUXUN_DATABASE_URL`: PostgreSQL's search path (the test's
    schema) and an application name go into the URL; `port` sends it through another port
    (a TcpGate in front of PostgreSQL)."""
    if database.url.startswith("sqlite"):
        return database.url
    options = database.engine_options.get("connect_args", {}).get("options", "")
    parts = urlsplit(database.url)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rsplit(':', 1)[0]}:{port}"
    query = f"options={quote(options)}&application_name={name}"
    return f"{parts.scheme}://{netloc}{parts.path}?{query}"


def pg_address() -> tuple[str, int]:
    parts = urlsplit(PG_URL)
    return parts.hostname or "127.0.0.1", parts.port or 5432


# -- the production server ----------------------------------------------------------------


class Served:
    """`zhuxun serve` (gunicorn) in its own process group, so one killpg reaches every
    worker. Bound to 127.0.0.1; the fixture that makes it stops it."""

    def __init__(
        self,
        database_url: str,
        log: Path,
        *,
        workers: int = 2,
        threads: int = 2,
        env: dict[str, str] | None = None,
        secret: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.log = log
        self.workers = workers
        self.threads = threads
        self.env = env or {}
        self.secret = secret or uuid.uuid4().hex * 2  # app servers of one site share it
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Served:
        port = free_port()
        env = dict(
            os.environ,
            ZHUXUN_ENV="development",
            ZHUXUN_SECRET_KEY=self.secret,
            ZHUXUN_DATABASE_URL=self.database_url,
            # Tablets of a load run sign in at once from one address.
            ZHUXUN_LOGIN_RATE_LIMIT="100000 per minute",
            **self.env,
        )
        command = [str(ZHUXUN), "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(self.workers), "--threads", str(self.threads)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError("the server did not start:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL to the whole group: no worker finishes its request, nothing is flushed."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


# -- every call, timed ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    status: int  # 0: no answer (the connection failed or the answer was cut)
    seconds: float
    detail: str = ""  # the error code (or the start of the body) of an error answer

    @property
    def endpoint(self) -> str:
        return self.path.removeprefix("/api/v1").split("?", 1)[0]


class CallLog:
    """Every HTTP call the tablets made, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def server_errors(self, *, allowed: Iterable[str] = ()) -> list[Call]:
        """5xx answers, and any answer that says the database is locked, except those whose
        code is `allowed`."""
        permitted = set(allowed)
        return [
            c
            for c in self.calls
            if (c.status >= 500 or "locked" in c.detail.lower()) and c.detail not in permitted
        ]

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for call in self.calls:
            counts[call.status] = counts.get(call.status, 0) + 1
        return dict(sorted(counts.items()))


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (nearest rank)."""
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))] * 1000

    return {
        "n": len(ordered),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
    }


class TimedHTTP(requests.Session):
    """A requests session that logs every call: endpoint, status, wall time."""

    def __init__(self, log: CallLog) -> None:
        super().__init__()
        self.log = log

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        path = urlsplit(str(url)).path
        start = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self.log.add(Call(str(method), path, 0, time.perf_counter() - start, repr(exc)[:300]))
            raise
        detail = ""
        if response.status_code >= 400:
            try:
                detail = str(response.json()["error"]["code"])
            except (ValueError, KeyError, TypeError):
                detail = response.text[:200]
        self.log.add(
            Call(str(method), path, response.status_code, time.perf_counter() - start, detail)
        )
        return response


# -- tablets ------------------------------------------------------------------------------


class Tablet:
    """One device of one doctor: the real offline client, every HTTP call timed."""

    def __init__(
        self,
        path: Path,
        url: str,
        fleet: Fleet,
        doctor: int,
        slot: int,
        log: CallLog,
        **api_options: Any,
    ) -> None:
        self.username, self.doctor, self.assignment = fleet.doctor(doctor)
        self.slot = slot  # which tablet of the doctor: its visits take other hours
        options: dict[str, Any] = {
            "sleep": time.sleep,
            "max_attempts": 8,
            "backoff_s": 0.05,
            "max_backoff_s": 1.0,
            "timeout_s": 60.0,
        }
        options.update(api_options)
        self.store: LocalStore = open_store(path, any_thread=True)
        http = TimedHTTP(log)
        session = ServerAPI.login(url, self.username, PASSWORD, http=http, **options)
        self.api = ServerAPI(session, http=http, **options)
        self.created: list[str] = []
        self.sync_seconds: list[float] = []

    def add_visit(self, patients: int) -> str:
        """A visit on the next free half day of this tablet (mornings for the first
        tablet of a doctor, afternoons for the second), from 2026-01-05 on."""
        day = date(2026, 1, 5) + timedelta(days=len(self.created))
        hours = ("08:00", "11:30") if self.slot == 0 else ("14:00", "17:30")
        record_id = new_id()
        self.store.save(
            VISITS,
            record_id,
            visit_data(
                doctor=self.doctor,
                assignment=self.assignment,
                device_id=self.store.device_id,
                patients=patients,
                place=VILLAGE_A1 if len(self.created) % 2 else VILLAGE_A2,
                check_in=f"{day}T{hours[0]}:00+08:00",
                check_out=f"{day}T{hours[1]}:00+08:00",
                recorded_at=f"{day}T18:00:00+08:00",
            ),
        )
        self.created.append(record_id)
        return record_id

    def edit_visit(self, record_id: str, patients: int) -> None:
        record = self.store.get(VISITS, record_id)
        assert record is not None
        self.store.save(VISITS, record_id, {**record.data, "patients": patients})

    def sync(self) -> SyncSummary:
        start = time.perf_counter()
        summary = run_sync(self.store, self.api)
        self.sync_seconds.append(time.perf_counter() - start)
        return summary

    def close(self) -> None:
        self.store.close()


@dataclass
class LoadResult:
    tablets: list[Tablet]
    log: CallLog
    seconds: float
    errors: list[str] = field(default_factory=list)

    def report(self, title: str) -> str:
        lines = [f"{title}: {len(self.tablets)} tablets, {self.seconds:.1f} s, statuses "]
        lines[0] += str(self.log.statuses())
        failures: dict[str, int] = {}
        for call in self.log.calls:
            if call.status == 0 or call.status >= 500:
                # "ChunkedEncodingError(ProtocolError(… IncompleteRead(…" → the names only
                what = " / ".join(dict.fromkeys(re.findall(r"(\w+)\(", call.detail)))
                kind = f"{call.method} {call.endpoint} {call.status or ''} {what or call.detail}"
                failures[kind] = failures.get(kind, 0) + 1
        for kind, count in sorted(failures.items()):
            lines.append(f"  retried: {kind}: {count}")
        groups: dict[str, list[float]] = {}  # answered calls only; failures are listed above
        for call in self.log.calls:
            if 200 <= call.status < 300:
                groups.setdefault(f"{call.method} {call.endpoint}", []).append(call.seconds)
        groups["whole sync (device)"] = [s for t in self.tablets for s in t.sync_seconds]
        for name, seconds in sorted(groups.items()):
            if not seconds:
                continue
            p = percentiles(seconds)
            lines.append(
                f"  {name:28} n={p['n']:5}  p50 {p['p50']:7.0f} ms  p95 {p['p95']:7.0f} ms  "
                f"p99 {p['p99']:7.0f} ms  max {p['max']:7.0f} ms"
            )
        return "\n".join(lines)


def run_load(
    root: Path,
    url_for: Callable[[int], str],
    fleet: Fleet,
    *,
    tablets_per_doctor: int,
    visits: int,
    rounds: int,
    **api_options: Any,
) -> LoadResult:
    """Every tablet signs in, then all start together: each round a tablet records `visits`
    visits offline, edits the first visit of the round before (a second version), and
    syncs. `url_for(i)` is the server address of tablet `i`. Exceptions of a tablet are
    collected in `errors`, not raised, so the caller sees all of them."""
    log = CallLog()
    count = fleet.doctors * tablets_per_doctor
    tablets: list[Tablet | None] = [None] * count
    errors: list[str] = []
    start_line = threading.Barrier(count + 1)

    def work(index: int) -> None:
        try:
            tablet = Tablet(
                root / f"tablet{index}.sqlite",
                url_for(index),
                fleet,
                index // tablets_per_doctor,
                index % tablets_per_doctor,
                log,
                **api_options,
            )
            tablets[index] = tablet
        except Exception as exc:  # noqa: BLE001 - reported with the others
            errors.append(f"tablet {index} sign-in: {type(exc).__name__}: {exc}")
            start_line.abort()
            return
        try:
            start_line.wait(timeout=300)
            for round_ in range(rounds):
                if round_:
                    first_of_last = tablet.created[(round_ - 1) * visits]
                    tablet.edit_visit(first_of_last, patients=100 + round_)
                for n in range(visits):
                    tablet.add_visit(patients=n)
                tablet.sync()
        except Exception as exc:  # noqa: BLE001 - reported with the others
            errors.append(f"tablet {index}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start_line.wait(timeout=300)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - began
    opened = [t for t in tablets if t is not None]
    return LoadResult(opened, log, elapsed, errors)


def sync_until_quiet(tablets: list[Tablet], *, rounds: int = 4) -> None:
    """Every tablet syncs, one after the other, until a round in which nobody sends or
    receives a change."""
    for _ in range(rounds):
        moved = False
        for tablet in tablets:
            summary = tablet.sync()
            moved = moved or bool(summary.sent or summary.received)
        if not moved:
            return
    raise AssertionError(f"still syncing changes after {rounds} quiet-seeking rounds")


def pull_everything(url: str, username: str) -> dict[str, dict[str, Any]]:
    """Every visit the user may see, from a fresh full pull; fails on one pulled twice."""
    api = ServerAPI(ServerAPI.login(url, username, PASSWORD))
    visits: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        page = api.pull(cursor, 1000)
        for change in page["changes"]:
            if change["collection"] == VISITS:
                assert change["id"] not in visits, f"visit {change['id']} pulled twice"
                visits[change["id"]] = change
        cursor = page["cursor"]
        if not page["has_more"]:
            return visits


def assert_converged(
    tablets: list[Tablet], server_visits: dict[str, dict[str, Any]], *, rounds: int, visits: int
) -> None:
    """Every visit any tablet recorded is on the server exactly once, at the version its
    edits give it (edited ones 2, the others 1), with the tablet's data; nothing else is;
    and every tablet holds exactly the server's visits of its doctor."""
    edited = {t.created[r * visits] for t in tablets for r in range(rounds - 1)}
    created = {record_id for t in tablets for record_id in t.created}
    assert len(created) == sum(len(t.created) for t in tablets)
    missing = created - set(server_visits)
    assert not missing, f"{len(missing)} visits never reached the server"
    extra = set(server_visits) - created
    assert not extra, f"{len(extra)} visits on the server that no tablet recorded"
    wrong = {
        record_id: change["version"]
        for record_id, change in server_visits.items()
        if change["version"] != (2 if record_id in edited else 1) or change["deleted"]
    }
    assert not wrong, f"visits at an unexpected version: {dict(list(wrong.items())[:5])}"
    by_doctor: dict[str, dict[str, tuple[int, Any]]] = {}
    for record_id, change in server_visits.items():
        by_doctor.setdefault(change["data"]["doctor"], {})[record_id] = (
            change["version"],
            change["data"],
        )
    for tablet in tablets:
        assert tablet.store.outbox_count() == 0, f"{tablet.username}: outbox not empty"
        assert not tablet.store.rejections(), f"{tablet.username}: {tablet.store.rejections()}"
        assert not tablet.store.conflicts(status=None), f"{tablet.username}: conflicts"
        held = {r.id: (r.version, r.data) for r in tablet.store.records(VISITS)}
        assert held == by_doctor.get(tablet.doctor, {}), f"{tablet.username} did not converge"


class Watcher:
    """A reader (a county admin) pulling page after page while tablets push: what it has
    gathered from its cursor must equal a fresh full pull once all is quiet; a change its
    cursor skipped would be missing, or left at an older version."""

    def __init__(self, url: str, username: str, log: CallLog, **api_options: Any) -> None:
        options: dict[str, Any] = {"sleep": time.sleep, "max_attempts": 8, "backoff_s": 0.05}
        options.update(api_options)
        http = TimedHTTP(log)
        session = ServerAPI.login(url, username, PASSWORD, http=http, **options)
        self.api = ServerAPI(session, http=http, **options)
        self.cursor: str | None = None
        self.seen: dict[str, tuple[int, bool]] = {}
        self.pages = 0
        self.errors: list[str] = []

    def pull(self) -> None:
        """Pull from the cursor until the server has nothing more."""
        while True:
            page = self.api.pull(self.cursor, 200)
            for change in page["changes"]:
                if change["collection"] == VISITS:
                    self.seen[change["id"]] = (change["version"], bool(change["deleted"]))
            self.cursor = page["cursor"]
            self.pages += 1
            if not page["has_more"]:
                return

    def follow(self, stop: threading.Event) -> None:
        """Pull again and again until `stop` is set (run it in a thread)."""
        try:
            while not stop.is_set():
                self.pull()
                stop.wait(0.05)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{type(exc).__name__}: {exc}")
