"""The app's files under /app/ (CSP, gzip, ETags, the service worker's version and precache
list), the form definitions as JSON, and the doctor's week plans."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from forms.definitions import LATEST, MAX_VISIT_HOURS
from server.web import app_shell
from tests.builders import PASSWORD

SHELL_BUDGET_BYTES = 150 * 1024  # issue 12: the app shell ≤ 150 KB gzip


@pytest.fixture
def client(app_server: Any) -> Any:
    app, _live = app_server
    return app.test_client()


def login(client: Any, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_app_is_served_under_a_strict_csp_with_no_inline_script(client: Any) -> None:
    answer = client.get("/app/")
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    page = _Scripts()
    page.feed(answer.get_data(as_text=True))
    assert page.scripts == [{"type": "module", "src": "/app/js/main.js"}]
    assert not page.inline and not page.handlers
    assert client.get("/app").status_code == 308


def test_app_files_are_gzipped_and_revalidated_by_etag(client: Any) -> None:
    plain = client.get("/app/js/store.js")
    packed = client.get("/app/js/store.js", headers={"Accept-Encoding": "gzip"})
    assert plain.mimetype == "text/javascript"
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    again = client.get("/app/js/store.js", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/app/vendor/sqlite3.wasm").mimetype == "application/wasm"
    assert client.get("/app/manifest.webmanifest").mimetype == "application/manifest+json"


@pytest.mark.parametrize("path", ["/app/../app.py", "/app/%2e%2e/app.py", "/app/nothing.js"])
def test_nothing_outside_the_app_folder_is_served(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_service_worker_precaches_every_file_and_its_version_follows_them(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = client.get("/app/sw.js").get_data(as_text=True)
    files = json.loads(re.search(r"const SHELL = (\[.*?\]);", text)[1])  # type: ignore[index]
    on_disk = {
        f"/app/{p.relative_to(app_shell.APP_DIR).as_posix()}"
        for p in app_shell.APP_DIR.rglob("*")
        if p.is_file()
    }
    assert set(files) == on_disk - {"/app/sw.js", "/app/index.html", "/app/vendor/VENDOR.json"} | {
        "/app/"
    }
    assert "/app/vendor/sqlite3.wasm" in files
    version = re.search(r"const VERSION = '([0-9a-f]{16})'", text)
    assert version
    copy = tmp_path / "app"
    shutil.copytree(app_shell.APP_DIR, copy)
    monkeypatch.setattr(app_shell, "APP_DIR", copy)
    assert version[1] in client.get("/app/sw.js").get_data(as_text=True)
    (copy / "app.css").write_text("body { color: black; }\n", encoding="utf-8")
    assert version[1] not in client.get("/app/sw.js").get_data(as_text=True)


def test_the_app_shell_stays_within_its_gzip_budget() -> None:
    total = sum(
        len(gzip.compress(p.read_bytes(), compresslevel=9))
        for p in app_shell.APP_DIR.rglob("*")
        if p.is_file() and p.suffix != ".wasm"
    )
    assert total <= SHELL_BUDGET_BYTES, f"{total} bytes gzipped"


def test_the_forms_are_served_from_their_definitions(client: Any) -> None:
    answer = client.get("/api/v1/forms").get_json()
    assert set(answer["forms"]) == set(LATEST)
    for collection, form in LATEST.items():
        served = answer["forms"][collection]
        assert served["version"] == form.version
        assert [(f["name"], f["type"], f["required"], f["minimum"], f["maximum"],
                 f["max_length"], tuple(f["choices"])) for f in served["fields"]] == [
            (f.name, f.type, f.required, f.minimum, f.maximum, f.max_length, f.choices)
            for f in form.fields
        ]  # fmt: skip
    checks = answer["forms"]["visits"]["checks"]
    assert {"check": "max_hours", "field": "check_out", "other": "check_in",
            "hours": MAX_VISIT_HOURS} in checks  # fmt: skip
    assert answer["protocol"]["statuses"] == ["accepted", "duplicate", "conflict", "rejected"]


def test_a_doctor_gets_the_week_plans_the_rules_count_against(client: Any, app_server: Any) -> None:
    from rules import load_scenario
    from rules.counts import weekly_counts
    from server import flags
    from server.extensions import db
    from tests.app.conftest import DOCTOR, DOCTOR_USER, china_today

    assert client.get("/api/v1/duty/plan").status_code == 401
    assert client.get("/api/v1/duty/plan", headers=login(client, "reviewer")).status_code == 403
    answer = client.get("/api/v1/duty/plan", headers=login(client, DOCTOR_USER))
    assert answer.status_code == 200
    body = answer.get_json()
    today = china_today()
    assert body["doctor"] == DOCTOR and body["as_of"] == today.isoformat()
    weeks = {p["week"] for p in body["plans"]}
    assert len(weeks) == 4, "last week, this week and two ahead"
    this_week = [p for p in body["plans"] if p["first"] <= today.isoformat() <= p["sunday"]]
    app, _ = app_server
    monday = today - timedelta(days=today.weekday())
    with app.app_context():
        scenario = load_scenario(flags.scenario_for(db.session, {"450623"}, {DOCTOR}))
        counts = weekly_counts(
            scenario,
            as_of=today,
            ruleset=flags.ruleset_named(app.config["ZHUXUN_RULESET"]),
            doctors={DOCTOR},
            period=(monday, monday + timedelta(days=6)),
        )
    assert [(p["assignment"], p["required"], len(p["available"])) for p in this_week] == [
        (c.assignment, c.required, c.available_workdays) for c in counts
    ]
    patrol = this_week[0]
    assert patrol["unit"] == "sessions" and patrol["hours"] > 0 and patrol["per_date"] >= 1
    assert set(patrol["available"]) <= set(patrol["workdays"])
    assert all(patrol["first"] <= d <= patrol["last"] for d in patrol["workdays"])
