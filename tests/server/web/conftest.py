"""Fixtures of the browser tests: a small seeded demo county served on 127.0.0.1, and
Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import PASSWORD
from tests.conftest import LiveServer, app_config

CHROMIUM = os.environ.get("ZHUXUN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
# The small demo county: two townships, data from Monday 2026-01-05 for eight weeks; the
# figures are as of the Sunday that ends them.
DEMO_SIZES = {"townships": 2, "villages": 10, "doctors": 10, "weeks": 8}
DEMO_AS_OF = "2026-03-01"
DEMO_MONTH = "2026-02"


@pytest.fixture(scope="module")
def demo_county() -> dict[str, Any]:
    from demo_county import generate_county

    return generate_county(seed=7, **DEMO_SIZES)


def make_demo_app(config: dict[str, Any], scenario: dict[str, Any]) -> Any:
    """The app over the demo county, its flags evaluated, with a township reviewer
    `reviewer` (the first township) and a county admin `county`."""
    from datetime import date

    from server.app import create_app
    from server.database import add_user, init_db
    from server.extensions import db
    from server.flags import evaluate_all
    from server.records.importer import import_scenario

    app = create_app({**config, "ZHUXUN_RULES_AS_OF": DEMO_AS_OF})
    with app.app_context():
        init_db()
        import_scenario(db.session, scenario)
        evaluate_all(
            db.session,
            ruleset=app.config["ZHUXUN_RULESET"],
            as_of=date.fromisoformat(DEMO_AS_OF),
            cause="test",
        )
        township = min(p["code"] for p in scenario["places"] if p["level"] == "township")
        add_user("reviewer", PASSWORD, "township_reviewer", unit_code=township)
        add_user("county", PASSWORD, "county_admin", unit_code=scenario["county"]["code"])
        db.session.remove()
    return app


@pytest.fixture
def demo_app(
    tmp_path: Path, request: pytest.FixtureRequest, demo_county: dict[str, Any]
) -> Iterator[Any]:
    app = make_demo_app(app_config("sqlite", tmp_path, request), demo_county)
    yield app
    from server.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def demo_live(demo_app: Any) -> Iterator[LiveServer]:
    server = LiveServer(demo_app)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def screenshot() -> Any:
    """`screenshot(page, name)` saves a full-page PNG under test-artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
