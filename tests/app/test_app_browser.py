"""The doctor's app in Debian's Chromium at phone size (390 px), geolocation granted and
set, against the demo county served live (issue 12, "Done when"): sign in online; offline,
a reload still opens from the service worker; three visits checked in and out; a new page
opened offline holds them, pending; back online a sync leaves each on the server exactly
once; a reviewer's send-back reaches the app with its comment; an edit from the Python
client gives a conflict with both versions, and resolving it converges both devices; a
page closed in the middle of a sync loses and duplicates nothing; the week's duty standing
equals the server's rules; with geolocation denied a visit is still saved, marked without
a position. Screenshots of every screen go to test-artifacts/screenshots/app-*.png."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.app.conftest import DOCTOR, DOCTOR_USER, china_today
from tests.builders import PASSWORD
from tests.conftest import Api
from tests.server.web.conftest import SCREENSHOTS

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
WHERE = {"latitude": 22.7536, "longitude": 108.6256, "accuracy": 12}
TIMEOUT_MS = 30_000


def new_context(browser: Any, *, geolocation: bool = True) -> Any:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation=WHERE if geolocation else None,
        permissions=["geolocation"] if geolocation else [],
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def open_app(context: Any, base: str) -> Any:
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("pageerror", lambda error: print("page error:", error))
    page.goto(f"{base}/app/")
    page.wait_for_selector("body[data-ready=true]")
    return page


def wait_synced(page: Any) -> None:
    """The sync loop idle with nothing pending (the header says so)."""
    page.wait_for_selector("body[data-phase=idle][data-pending='0']")


def sync_now(page: Any) -> None:
    page.click("#sync-now")
    page.wait_for_function(
        "() => window.zhuxun.syncer && !window.zhuxun.syncer.running"
        " && window.zhuxun.syncer.state.phase === 'idle'"
    )
    wait_synced(page)


def sign_in(page: Any) -> None:
    page.fill("input[name=username]", DOCTOR_USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#check-in-card")
    page.wait_for_selector("body:not([data-synced-at=''])[data-synced-at]")
    wait_synced(page)


def check_in_and_out(page: Any, patients: int) -> None:
    page.click("#check-in")
    page.wait_for_selector("#open-visit")
    page.wait_for_selector("#open-position:not(:has-text('…'))")
    page.fill("#co-patients", str(patients))
    page.wait_for_timeout(1100)  # the check-out is stamped to the second, after the check-in
    page.click("#check-out")
    page.wait_for_selector("#check-in-card")


def app_visits(page: Any, attribute: str = "data-state") -> dict[str, str]:
    """The visits the app lists: id -> sync state as shown (or as the outbox holds it)."""
    items = page.locator("#visits li.record")
    return {
        items.nth(i).get_attribute("data-id"): items.nth(i).get_attribute(attribute)
        for i in range(items.count())
    }


def server_visits(api: Api) -> dict[str, dict[str, Any]]:
    """The doctor's visits on the server, through the API: id -> {version, data}."""
    changes, _ = api.pull_all()
    return {c["id"]: c for c in changes if c["collection"] == "visits" and not c.get("deleted")}


def python_client(tmp_path: Any, base: str) -> tuple[Any, Any]:
    from offline_client.local.device import open_store
    from offline_client.server_api import ServerAPI

    session = ServerAPI.login(base, DOCTOR_USER, PASSWORD)
    return open_store(tmp_path / "clinic-pc.sqlite"), ServerAPI(session)


def server_standing(app: Any) -> dict[str, tuple[int, int]]:
    """This week's measured and required per assignment by the server's rules."""
    from rules import load_scenario
    from rules.counts import weekly_counts
    from server import flags
    from server.extensions import db

    today = china_today()
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
        db.session.remove()
    return {c.assignment: (c.measured, c.required) for c in counts}


def app_standing(page: Any) -> dict[str, tuple[int, int]]:
    rows = page.locator("#week .standing")
    return {
        rows.nth(i).get_attribute("data-assignment"): (
            int(rows.nth(i).get_attribute("data-measured")),
            int(rows.nth(i).get_attribute("data-required")),
        )
        for i in range(rows.count())
    }


def enter_past_visit(page: Any, day: str, start: str, end: str, patients: int) -> None:
    """A visit entered afterwards, times picked by hand (the patrol's first village)."""
    page.click("#add-visit")
    page.wait_for_selector("#record-form")
    page.select_option("select[name=assignment]", "A0004")
    page.select_option("select[name=place]", "450623101201")
    page.fill("input[name=check_in]", f"{day}T{start}")
    page.fill("input[name=check_out]", f"{day}T{end}")
    page.fill("input[name=patients]", str(patients))
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#check-in-card")


def test_the_app_on_a_phone_offline_and_back(
    app_server: Any, browser: Any, screenshot: Any, tmp_path: Any
) -> None:
    app, live = app_server
    base = live.url
    doctor_api = Api(base, DOCTOR_USER)
    before = set(server_visits(doctor_api))
    context = new_context(browser)

    # Sign in online; the service worker takes the page.
    page = open_app(context, base)
    screenshot(page, "app-login")
    sign_in(page)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    assert page.get_attribute("#storage", "data-mode") == "opfs"
    screenshot(page, "app-home")

    # Offline: a reload still opens, from the service worker; three visits in and out.
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#check-in-card")
    for patients in (3, 5, 8):
        check_in_and_out(page, patients)
        if patients == 3:
            page.click("#check-in")
            page.wait_for_selector("#open-position:not(:has-text('…'))")
            screenshot(page, "app-visit-open")
            page.wait_for_timeout(1100)
            page.click("#check-out")
            page.wait_for_selector("#check-in-card")
    # (the first check-in above was a visit of 0 patients after the 3: four in all, then
    # one of them is deleted before any sync)
    states = {k: v for k, v in app_visits(page).items() if k not in before}
    assert len(states) == 4 and set(states.values()) == {"pending"}, states
    zero = [
        k for k in states if "诊疗人次 0 " in page.inner_text(f"#visits li[data-id='{k}'] .line")
    ]
    assert len(zero) == 1
    page.locator(f"#visits li[data-id='{zero[0]}'] button.delete").click()
    page.wait_for_selector(f"#visits li[data-id='{zero[0]}']", state="detached")
    mine = {k for k in app_visits(page) if k not in before}
    assert len(mine) == 3
    screenshot(page, "app-offline-pending")

    # Close the page; a new one opened offline holds all three, pending.
    page.close()
    page = open_app(context, base)
    page.wait_for_selector("#check-in-card")
    states = app_visits(page)
    assert {k: states[k] for k in mine} == dict.fromkeys(mine, "pending")
    assert "离线" in page.inner_text("#sync-status")

    # Back online, sync: the server holds each exactly once (version 1).
    context.set_offline(False)
    sync_now(page)
    on_server = server_visits(doctor_api)
    assert mine <= set(on_server)
    assert len(on_server) == len(before) + 3
    assert sorted(on_server[v]["data"]["patients"] for v in mine) == [3, 5, 8]
    assert all(on_server[v]["version"] == 1 for v in mine)
    assert all(on_server[v]["data"]["lat"] == WHERE["latitude"] for v in mine)
    assert set(app_visits(page).values()) == {"synced"}

    # The week: a past visit entered by hand this week, then the duty standing after a
    # sync equals the server's rules.
    today = china_today()
    monday = today - timedelta(days=today.weekday())
    enter_past_visit(page, monday.isoformat(), "08:00", "12:30", 6)
    screenshot(page, "app-past-visit-saved")
    sync_now(page)
    expected = server_standing(app)
    assert expected, "the doctor has a patrol this week"
    assert app_standing(page) == expected
    assert expected["A0004"][0] >= 1, "the 4.5-hour visit counts as a half-day session"
    screenshot(page, "app-week")
    page.screenshot(path=str(SCREENSHOTS / "app-phone.png"))  # the phone's screen, for docs

    # A reviewer sends one visit back: it reaches the app with the comment.
    sent_back = min(mine)
    reviewer = Api(base, "reviewer")
    answer = reviewer.http.post(
        reviewer.url(f"/review/visits/{sent_back}/send-back"),
        json={"comment": "请补充备注：患者人次是否包括随访"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    sync_now(page)
    item = page.locator(f"#visits li[data-id='{sent_back}']")
    assert item.get_attribute("data-state") == "sent_back"
    assert "请补充备注" in item.locator(".send-back").inner_text()
    screenshot(page, "app-sent-back")

    # The same visit edited on the clinic PC (the Python client) and in the app: the app
    # gets a conflict with both versions; keeping mine converges both devices.
    from offline_client.sync_loop import run_sync

    contested = sorted(mine)[1]
    pc_store, pc_api = python_client(tmp_path, base)
    run_sync(pc_store, pc_api)
    pc_record = pc_store.get("visits", contested)
    assert pc_record is not None
    pc_store.save("visits", contested, {**pc_record.data, "patients": 11, "notes": "PC"})
    run_sync(pc_store, pc_api)
    page.locator(f"#visits li[data-id='{contested}'] button.edit").click()
    page.wait_for_selector("#record-form")
    page.fill("input[name=patients]", "12")
    page.fill("textarea[name=notes]", "平板")
    screenshot(page, "app-visit-edit")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#check-in-card")
    page.click("#sync-now")
    conflict = page.locator(f"#visits li[data-id='{contested}'] div.conflict")
    conflict.wait_for()
    assert "平板" in conflict.locator(".mine").inner_text()
    assert "PC" in conflict.locator(".theirs").inner_text()
    screenshot(page, "app-conflict")
    conflict.locator("button.keep-mine").click()
    sync_now(page)
    run_sync(pc_store, pc_api)
    on_server = server_visits(doctor_api)[contested]
    assert on_server["data"]["patients"] == 12
    pc_record = pc_store.get("visits", contested)
    assert pc_record is not None and pc_record.data == on_server["data"]
    assert pc_record.version == on_server["version"]
    assert app_visits(page)[contested] == "synced"
    assert not pc_store.conflicts(status="open")

    # A page closed in the middle of a sync: the push reached the server, its answer never
    # came back. The next page sends the same changes again; nothing is lost or doubled.
    context.set_offline(True)
    check_in_and_out(page, 2)
    check_in_and_out(page, 4)
    interrupted = {k for k, v in app_visits(page).items() if v == "pending"}
    assert len(interrupted) == 2
    pushed = []

    def answer_lost(route: Any) -> None:
        route.fetch()  # the server applies the batch ...
        pushed.append(route.request.url)
        route.abort()  # ... and the page never hears back

    page.route("**/api/v1/sync/push", answer_lost)
    context.set_offline(False)
    page.click("#sync-now")
    page.wait_for_function("() => window.zhuxun.syncer.state.phase !== 'syncing'")
    assert pushed
    assert set(server_visits(doctor_api)) >= interrupted
    page.close()
    page = open_app(context, base)
    states = app_visits(page, "data-outbox")
    assert {states[k] for k in interrupted} <= {"in_flight", "synced"}
    sync_now(page)
    on_server = server_visits(doctor_api)
    assert len(on_server) == len(before) + 3 + 1 + 2  # the three, the past visit, these two
    assert all(on_server[v]["version"] == 1 for v in interrupted)
    assert {app_visits(page)[k] for k in interrupted} == {"synced"}

    # English by the switch.
    page.click("#lang")
    page.wait_for_selector("text=Check in")
    screenshot(page, "app-home-en")
    page.click("#add-leave")
    page.fill("input[name=start]", (today + timedelta(days=7)).isoformat())
    page.fill("input[name=end]", (today + timedelta(days=6)).isoformat())
    page.click("#record-form button[type=submit]")
    error = page.locator("[data-field=end] .field-error")
    assert error.inner_text() == "Must be on or after the start"
    screenshot(page, "app-leave-error")
    page.fill("input[name=end]", (today + timedelta(days=8)).isoformat())
    page.fill("textarea[name=reason]", "family")
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#leave li.record")
    sync_now(page)
    leave = [c for c in doctor_api.pull_all()[0] if c["collection"] == "leave"]
    assert any(c["data"].get("reason") == "family" for c in leave)
    context.close()


def test_a_visit_with_geolocation_denied_is_saved_without_a_position(
    app_server: Any, browser: Any, screenshot: Any
) -> None:
    _app, live = app_server
    context = new_context(browser, geolocation=False)
    page = open_app(context, live.url)
    sign_in(page)
    check_in_and_out(page, 1)
    item = page.locator("#visits li.record").first
    assert item.get_attribute("data-state") in ("pending", "in_flight", "synced")
    assert item.locator(".no-position").count() == 1
    assert "无定位" in page.inner_text("#notice")
    screenshot(page, "app-no-position")
    sync_now(page)
    visit_id = item.get_attribute("data-id")
    on_server = server_visits(Api(live.url, DOCTOR_USER))[visit_id]
    assert "lat" not in on_server["data"] or on_server["data"]["lat"] is None
    context.close()


def test_without_opfs_the_app_says_so_and_keeps_its_data_in_indexeddb(
    app_server: Any, browser: Any, screenshot: Any
) -> None:
    _app, live = app_server
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{live.url}/app/?idb")  # the fallback, as where OPFS is missing
    page.wait_for_selector("body[data-ready=true]")
    sign_in(page)
    storage = page.locator("#storage")
    assert storage.get_attribute("data-mode") == "indexeddb"
    assert "IndexedDB" in storage.inner_text()
    context.set_offline(True)
    check_in_and_out(page, 7)
    saved = app_visits(page)
    screenshot(page, "app-indexeddb")
    page.close()
    page = context.new_page()
    page.goto(f"{live.url}/app/?idb")
    page.wait_for_selector("#check-in-card")
    assert app_visits(page) == saved, "every record back from IndexedDB after the tab closed"
    assert "pending" in saved.values()
    context.close()


def test_a_new_version_waits_while_a_visit_is_open_and_takes_over_after_check_out(
    app_server: Any, browser: Any, screenshot: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    import shutil

    from server.web import app_shell

    _app, live = app_server
    context = new_context(browser)
    page = open_app(context, live.url)
    sign_in(page)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    first = page.evaluate("caches.keys()")
    page.click("#check-in")
    page.wait_for_selector("#open-position:not(:has-text('…'))")
    page.fill("#co-patients", "4")

    # A new version of the app on the server: the worker installs it, and it waits.
    copy = tmp_path / "app"
    shutil.copytree(app_shell.APP_DIR, copy)
    with (copy / "app.css").open("a", encoding="utf-8") as css:
        css.write("/* a new version */\n")
    monkeypatch.setattr(app_shell, "APP_DIR", copy)
    page.evaluate("window.beforeTheUpdate = true")
    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    page.wait_for_selector("#update-ready")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.beforeTheUpdate") is True, "never reloaded during the visit"
    assert page.input_value("#co-patients") == "4"
    screenshot(page, "app-update-waiting")

    # Checked out: a safe moment; the new version takes over and the app reloads once.
    page.wait_for_timeout(1100)
    with page.expect_navigation():
        page.click("#check-out")
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("window.beforeTheUpdate") is None
    now = page.evaluate("caches.keys()")
    assert now != first and len([k for k in now if k.startswith("zhuxun-app-")]) == 1
    assert any(
        "诊疗人次 4 " in page.inner_text(f"#visits li[data-id='{k}'] .line")
        for k in app_visits(page)
    ), "the visit checked out just before the update is kept"
    context.close()
