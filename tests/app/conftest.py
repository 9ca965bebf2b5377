"""Fixtures of the doctor's app tests: the page tests' demo county, server and Chromium
(tests/server/web/conftest.py), with a doctor's login and the rules evaluated as of today."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.builders import PASSWORD
from tests.conftest import LiveServer, app_config
from tests.server.web import conftest as web
from tests.server.web.conftest import make_demo_app

# The page tests' fixtures, shared: the seed-7 demo county, Chromium, screenshots.
browser = web.browser
demo_county = web.demo_county
screenshot = web.screenshot

# D0004 patrols two villages of the first township (the reviewer's), open-ended from
# 2026-01-05 in the seed-7 demo county: their week plans exist for any date after that.
DOCTOR, DOCTOR_USER = "D0004", "doc"


@pytest.fixture
def app_server(
    tmp_path: Path, request: pytest.FixtureRequest, demo_county: dict[str, Any]
) -> Iterator[tuple[Any, LiveServer]]:
    """The demo county served live, a doctor's login, and the rules' "today" the real one
    (the app stamps visits with the device's clock)."""
    from server.database import add_user
    from server.extensions import db

    app = make_demo_app(app_config("sqlite", tmp_path, request), demo_county)
    app.config["ZHUXUN_RULES_AS_OF"] = None
    with app.app_context():
        add_user(DOCTOR_USER, PASSWORD, "doctor", doctor_id=DOCTOR)
        db.session.remove()
    server = LiveServer(app)
    yield app, server
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def china_today() -> date:
    from server.flags import today_in_china

    return today_in_china()
