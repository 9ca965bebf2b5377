"""Issue 15's done-when, in a real headless Chromium (Debian's) against the app served on
127.0.0.1: a county admin imports the demo county's places and doctors from an XLSX (a dry
run that shows a row error first, then the fixed file), creates a reviewer, resets a
doctor's password; the doctor signs in with it and is made to change it; the admin revokes
one of the doctor's devices, and that device's next `zhuxun-client sync` is refused with
`device_revoked` while the other device syncs. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.spreadsheets import DOCTORS, PLACES, USERS, write_xlsx
from tests.builders import PASSWORD
from tests.conftest import LiveServer, app_config
from tests.server.web.test_browser import sign_in

pytestmark = pytest.mark.slow

CLIENT = Path(sys.executable).parent / "zhuxun-client"
NEW_PASSWORD = "doctor-chose-this-1"


@pytest.fixture
def county_live(
    tmp_path: Path, request: pytest.FixtureRequest, demo_county: dict[str, Any]
) -> Iterator[LiveServer]:
    """The server over a database with nothing but the demo county's own place and its
    admin `county`: what a county has before its first import."""
    from server.app import create_app
    from server.database import add_user, init_db
    from server.extensions import db
    from server.records.importer import import_scenario

    app = create_app(app_config("sqlite", tmp_path, request))
    code = demo_county["county"]["code"]
    with app.app_context():
        init_db()
        import_scenario(
            db.session, {"places": [p for p in demo_county["places"] if p["code"] == code]}
        )
        add_user("county", PASSWORD, "county_admin", unit_code=code)
        db.session.remove()
    server = LiveServer(app)
    yield server
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def client(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ZHUXUN_CLIENT_DIR=str(directory), ZHUXUN_CLIENT_MAX_ATTEMPTS="1")
    return subprocess.run(
        [str(CLIENT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_county_admin_imports_manages_accounts_and_revokes_a_lost_tablet(
    county_live: LiveServer,
    browser: Any,
    screenshot: Any,
    demo_county: dict[str, Any],
    tmp_path: Path,
) -> None:
    base = county_live.url
    first_doctor = demo_county["doctors"][0]
    rows = {
        PLACES: demo_county["places"],
        DOCTORS: [dict(d) for d in demo_county["doctors"]],
        USERS: [{"username": "doc1", "role": "doctor", "doctor": first_doctor["id"]}],
    }
    broken = {**rows, DOCTORS: [dict(d) for d in rows[DOCTORS]]}
    broken[DOCTORS][3]["home"] = "450000000000"  # no such place: row 5 of the sheet
    (tmp_path / "broken").mkdir()
    (tmp_path / "fixed").mkdir()
    broken_file = tmp_path / "broken" / "县数据.xlsx"
    fixed_file = tmp_path / "fixed" / "县数据.xlsx"
    broken_file.write_bytes(write_xlsx(broken))
    fixed_file.write_bytes(write_xlsx(rows))

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, base, "county")

    # The import: the template downloads; a dry run shows the row error; nothing written.
    page.goto(f"{base}/admin/import")
    with page.expect_download() as started:
        page.click("#template-xlsx")
    assert started.value.suggested_filename.endswith(".xlsx")
    page.set_input_files("#files", str(broken_file))
    page.click("#check")
    page.wait_for_load_state()
    errors = page.locator("tr.import-error")
    assert errors.count() == 1
    assert errors.first.get_attribute("data-row") == "5"
    assert errors.first.get_attribute("data-column") == "所属单位编码"
    assert "没有编码为“450000000000”的地点" in errors.first.inner_text()
    screenshot(page, "20-import-dry-run-with-a-row-error")
    page.set_input_files("#files", str(fixed_file))
    page.click("#check")
    page.wait_for_load_state()
    assert page.locator("#import-result").get_attribute("data-ok") == "yes"
    assert page.locator("#import-result").get_attribute("data-applied") == "no"
    page.set_input_files("#files", str(fixed_file))
    page.click("#import")
    page.wait_for_load_state()
    assert page.locator("#import-result").get_attribute("data-applied") == "yes"
    doctors = page.locator("#import-counts tr[data-kind=doctors]")
    assert doctors.get_attribute("data-new") == str(len(demo_county["doctors"]))
    screenshot(page, "21-import-done")

    # A reviewer account, created on the users page, with its one-time password shown once.
    township = min(p["code"] for p in demo_county["places"] if p["level"] == "township")
    page.goto(f"{base}/admin/users")
    page.fill("#new-username", "reviewer1")
    page.select_option("#new-role", "township_reviewer")
    page.fill("#new-unit", township)
    page.click("#create-user button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#one-time-password code").inner_text().strip()
    assert page.locator("tr[data-user=reviewer1]").count() == 1

    # The doctor's password reset; the doctor signs in with it and must change it first.
    page.goto(f"{base}/admin/users/doc1")
    page.click("#reset-password button")
    page.wait_for_load_state()
    one_time = page.locator("#one-time-password code").inner_text().strip()
    screenshot(page, "22-password-reset")
    doctor_page = browser.new_context(viewport={"width": 412, "height": 800}).new_page()
    doctor_page.goto(f"{base}/login")
    doctor_page.fill("#username", "doc1")
    doctor_page.fill("#password", one_time)
    doctor_page.click("main form button[type=submit]")
    doctor_page.wait_for_load_state()
    assert doctor_page.url.endswith("/password")
    assert doctor_page.locator("#must-change").count() == 1
    doctor_page.fill("#old-password", one_time)
    doctor_page.fill("#new-password", NEW_PASSWORD)
    doctor_page.fill("#repeat-password", NEW_PASSWORD)
    doctor_page.click("#password-form button[type=submit]")
    doctor_page.wait_for_load_state()
    assert doctor_page.locator("#password-changed").count() == 1
    screenshot(doctor_page, "23-doctor-changed-the-one-time-password")

    # Two tablets of the doctor sync; the admin revokes one of them.
    tablets = [tmp_path / "tablet-a", tmp_path / "tablet-b"]
    device_ids = []
    for tablet in tablets:
        signed = client(
            tablet, "login", "--server", base, "--username", "doc1", "--password", NEW_PASSWORD
        )
        assert signed.returncode == 0, signed.stderr
        found = re.search(r"; device (\S+)", signed.stdout)
        assert found, signed.stdout
        device_ids.append(found[1])
        synced = client(tablet, "sync")
        assert synced.returncode == 0, synced.stderr
    page.goto(f"{base}/admin/users/doc1")
    listed = page.locator("tr.device")
    assert sorted(
        listed.nth(i).get_attribute("data-device") or "" for i in range(listed.count())
    ) == sorted(device_ids)
    lost_id = device_ids[0]
    row = page.locator(f"tr.device[data-device='{lost_id}']")
    row.locator("input[name=reason]").fill("平板丢失")
    row.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert (
        page.locator(f"tr.device[data-device='{lost_id}']").get_attribute("data-revoked") == "yes"
    )
    assert "device.revoked" in [
        page.locator("#audit li").nth(i).get_attribute("data-action")
        for i in range(page.locator("#audit li").count())
    ]
    screenshot(page, "24-device-revoked")

    refused = client(tablets[0], "sync")
    assert refused.returncode != 0
    assert "device_revoked" in refused.stderr + refused.stdout
    still = client(tablets[1], "sync")
    assert still.returncode == 0, still.stderr
    context.close()
