"""A real Zhuxun server process on 127.0.0.1, and devices that talk to it through the CLI.

The server is `.venv/bin/zhuxun serve` on a free port with its own SQLite file, prepared
with `zhuxun init-db`, `zhuxun import` of a tiny scenario and `zhuxun create-user`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from offline_client.cli import cli

BIN = Path(sys.executable).parent
PASSWORD = "field-visit-2026"
COUNTY = "450999"
TOWNSHIP = "450999101"
VILLAGE_1 = "450999101201"
VILLAGE_2 = "450999101202"

SCENARIO: dict[str, Any] = {
    "places": [
        {"code": COUNTY, "name": "示范县", "level": "county", "parent": None},
        {"code": TOWNSHIP, "name": "甲镇", "level": "township", "parent": COUNTY},
        {
            "code": VILLAGE_1,
            "name": "石桥村",
            "level": "village",
            "parent": TOWNSHIP,
            "population": 850,
            "has_clinic": True,
        },
        {
            "code": VILLAGE_2,
            "name": "高岭村",
            "level": "village",
            "parent": TOWNSHIP,
            "population": 160,
        },
    ],
    "doctors": [
        {"id": "D1", "name": "李明", "qualification": "physician", "home": TOWNSHIP},
        {"id": "D2", "name": "王芳", "qualification": "village_doctor", "home": VILLAGE_1},
    ],
    "assignments": [
        {
            "id": "A1",
            "doctor": "D1",
            "kind": "patrol",
            "places": [VILLAGE_1, VILLAGE_2],
            "start": "2026-01-05",
            "end": None,
            "slots": [{"weekday": 2, "slot": "am"}],
        },
    ],
    "visits": [],
    "leave": [],
    "trainings": [],
}
USERS = (("d1", "D1"), ("d2", "D2"))
REVIEWER = "rev"  # township reviewer of TOWNSHIP (sends visits back)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    root: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def zhuxun(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "zhuxun"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"zhuxun {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def prepare(self) -> None:
        scenario = self.root / "scenario.json"
        scenario.write_text(json.dumps(SCENARIO, ensure_ascii=False), encoding="utf-8")
        self.zhuxun("init-db")
        self.zhuxun("import", str(scenario))
        for username, doctor in USERS:
            self.zhuxun("create-user", username, "--role", "doctor", "--doctor", doctor)
        self.zhuxun("create-user", REVIEWER, "--role", "township_reviewer", "--unit", TOWNSHIP)

    def start(self) -> None:
        self.port = free_port()
        with (self.root / "server.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "zhuxun"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its workers
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            try:
                requests.get(self.url + "/api/v1/openapi.json", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not start within 30 s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return (self.root / "server.log").read_text(encoding="utf-8", errors="replace")


def start_server(root: Path, **extra_env: str) -> ServerProcess:
    env = {
        **os.environ,
        "ZHUXUN_DATABASE_URL": f"sqlite:///{root / 'db.sqlite'}",
        "ZHUXUN_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "ZHUXUN_PASSWORD": PASSWORD,
        "HOME": str(root),  # gunicorn keeps its control socket under $HOME
        # Every test logs in a few devices as d1; the production limit is 10 a minute.
        "ZHUXUN_LOGIN_RATE_LIMIT": "10000 per minute",
        **extra_env,
    }
    server = ServerProcess(root=root, env=env)
    server.prepare()
    server.start()
    return server


@dataclass
class Device:
    """One tablet: a data directory driven through the real CLI."""

    data_dir: Path
    server: ServerProcess
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {
            "ZHUXUN_PASSWORD": PASSWORD,
            "ZHUXUN_CLIENT_MAX_ATTEMPTS": "2",
            "ZHUXUN_CLIENT_BACKOFF_S": "0.01",
            **self.env,
        }

    def run(self, *args: str, ok: bool = True) -> str:
        """Run a command in-process with click's CliRunner (fast)."""
        result = CliRunner().invoke(
            cli, ["--data-dir", str(self.data_dir), *args], env=self.env, catch_exceptions=False
        )
        if ok and result.exit_code != 0:
            raise AssertionError(f"zhuxun-client {' '.join(args)} failed:\n{result.output}")
        if not ok and result.exit_code == 0:
            raise AssertionError(f"zhuxun-client {' '.join(args)} succeeded:\n{result.output}")
        return result.output

    def process(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run the installed `zhuxun-client` as a real process."""
        return subprocess.run(
            [str(BIN / "zhuxun-client"), *args],
            env={**os.environ, **self.env, "ZHUXUN_CLIENT_DIR": str(self.data_dir), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def login(self, username: str = "d1") -> Device:
        self.run("login", "--server", self.server.url, "--username", username)
        return self

    def add_visit(
        self, *, patients: int = 9, place: str = VILLAGE_1, day: int = 10, date: str = ""
    ) -> str:
        """A half-day patrol visit (08:00-12:00) on `date`, or on 2026-03-`day`."""
        date = date or f"2026-03-{day:02d}"
        args = ["--place", place, "--kind", "patrol", "--assignment", "A1"]
        args += ["--check-in", f"{date}T08:00:00+08:00", "--check-out", f"{date}T12:00:00+08:00"]
        return self.run("visit", "add", *args, "--patients", str(patients)).strip()

    def visits(self) -> dict[str, dict[str, Any]]:
        return {row["id"]: row for row in json.loads(self.run("visit", "list", "--json"))}

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--json"))

    def status_for(self, week: str) -> list[dict[str, Any]]:
        """The duty flags `status` shows for an ISO week."""
        return json.loads(self.run("status", "--json", "--week", week))["flags"]
