"""The admin CLI as a person runs it: real processes, a real SQLite file, a real server."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.builders import PASSWORD, small_scenario

ZHUXUN = str(Path(sys.executable).with_name("zhuxun"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ZHUXUN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "ZHUXUN_SECRET_KEY": secrets.token_urlsafe(48),
        "ZHUXUN_ENV": "production",
        "ZHUXUN_PASSWORD": PASSWORD,
    }


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([ZHUXUN, *args], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_help_lists_every_command() -> None:
    out = subprocess.run([ZHUXUN, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("init-db", "create-user", "import", "serve", "evaluate"):
        assert command in out


def test_init_import_create_user_then_serve_and_sign_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(small_scenario(), ensure_ascii=False), encoding="utf-8")
    assert "database ready" in run(env, "init-db").stdout
    first = run(env, "import", str(scenario)).stdout
    assert "imported 9 places" in first and "imported 4 assignments" in first
    again = run(env, "import", str(scenario)).stdout
    assert "imported" not in again and "unchanged 9 places" in again
    assert (
        "created doctor d1"
        in run(env, "create-user", "d1", "--role", "doctor", "--doctor", "D1").stdout
    )

    port = free_port()
    server = subprocess.Popen(
        [ZHUXUN, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(f"{base}/api/v1/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        answer = requests.post(
            f"{base}/api/v1/auth/login", timeout=10, json={"username": "d1", "password": PASSWORD}
        )
        assert answer.status_code == 200
        spec = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
        assert "/api/v1/sync/push" in spec["paths"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_refuses_to_start_in_production_without_a_secret(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "ZHUXUN_SECRET_KEY"}
    done = run(env, "serve", "--port", str(free_port()), ok=False)
    assert done.returncode != 0
    assert "ZHUXUN_SECRET_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid UTF-8 JSON"),
        (json.dumps({"places": [{"code": "1", "level": "planet"}]}), "places[0].level"),
        (
            json.dumps(
                {
                    **small_scenario(),
                    "visits": [
                        {
                            "doctor": "D1",
                            "place": "450999101201",
                            "kind": "patrol",
                            "check_in": "2026-03-10T08:00:00+08:00",
                            "check_out": "2026-03-10T07:00:00+08:00",
                            "patients": 1,
                        }
                    ],
                }
            ),
            "visits[0].check_out",
        ),
    ],
)
def test_a_bad_scenario_file_is_refused_with_the_place_named_and_nothing_written(
    env: dict[str, str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    done = run(env, "import", str(path), ok=False)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_create_user_explains_a_wrong_unit(env: dict[str, str]) -> None:
    run(env, "init-db")
    done = run(
        env, "create-user", "r", "--role", "township_reviewer", "--unit", "nowhere", ok=False
    )
    assert "needs --unit with a known township code" in done.stderr


def test_evaluate_is_available_from_the_server_cli(env: dict[str, str], tmp_path: Any) -> None:
    done = run(env, "evaluate", "--help")
    assert "--as-of" in done.stdout


def test_the_demo_runs_end_to_end_and_reports_the_conflict(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHUXUN_")}
    done = subprocess.run(
        [
            ZHUXUN,
            "demo",
            "--run",
            "--townships",
            "2",
            "--villages",
            "6",
            "--doctors",
            "6",
            "--weeks",
            "2",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(free_port()),
            "--no-serve",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "2 accepted" in out, "the tablet's two offline visits reached the server"
    assert "1 in conflict" in out and "differs: patients: mine 12, theirs 9" in out
    assert "Zhuxun is running at http://127.0.0.1:" in out and "password zhuxun-demo-2026" in out
    assert re.search(r"reviewer .*: http://127\.0\.0\.1:\d+/review", out), "the page logins"
    assert re.search(r"county .*: http://127\.0\.0\.1:\d+/county", out)
    assert re.search(r"/review answers: [1-9]\d* doctors of the township", out), "under gunicorn"
    assert "Traceback" not in done.stderr


def test_demo_out_writes_a_scenario_that_import_reads(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "county.json"
    run(
        env,
        "demo",
        "--out",
        str(path),
        "--townships",
        "2",
        "--villages",
        "5",
        "--doctors",
        "4",
        "--weeks",
        "1",
    )
    scenario = json.loads(path.read_text(encoding="utf-8"))
    assert len(scenario["doctors"]) == 4
    assert "imported 4 doctors" in run(env, "import", str(path)).stdout
