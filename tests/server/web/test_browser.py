"""The pages in a real headless Chromium (Debian's /usr/bin/chromium through Playwright)
against the app served on 127.0.0.1 over a small seeded demo county: a township reviewer
approves a week, sends a visit back and excuses a flag, each checked through the JSON API;
a county admin downloads the XLSX and its figures are compared with /api/v1/summaries; the
review on a phone-sized screen with JavaScript off. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from openpyxl import load_workbook

from tests.builders import PASSWORD
from tests.conftest import Api
from tests.server.web.conftest import DEMO_MONTH

pytestmark = pytest.mark.slow


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()


def open_week_with_flags(page: Any, base: str) -> tuple[str, str]:
    """From the overview, open a doctor-week with sessions and an open flag."""
    page.goto(f"{base}/review")
    cell = page.locator(
        "td[data-state=unreviewed]:not([data-open-flags='0'])", has=page.locator(".flags")
    ).first
    doctor, week = cell.get_attribute("data-doctor"), cell.get_attribute("data-week")
    assert doctor and week
    cell.locator("a").click()
    page.wait_for_url(f"**/review/{doctor}/{week}")
    return doctor, week


def audit_actions(api: Api, subject_id: str) -> list[str]:
    answer = api.get("/review/audit", params={"subject_id": subject_id})
    assert answer.status_code == 200, answer.text
    return [e["action"] for e in answer.json()["items"]]


def test_a_reviewer_excuses_a_flag_sends_a_visit_back_and_approves_the_week(
    demo_live: Any, browser: Any, screenshot: Any
) -> None:
    base = demo_live.url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, "reviewer")
    assert page.url.endswith("/review")
    assert page.locator("h1").inner_text() == "待审核的医生周"
    screenshot(page, "01-reviewer-overview")
    doctor, week = open_week_with_flags(page, base)
    api = Api(base, "reviewer")

    flag = page.locator(".flag").first
    key = flag.get_attribute("data-flag")
    assert key
    flag.locator("summary").click()
    flag.locator("textarea[name=reason]").fill("村卫生室停电，已电话核实")
    screenshot(page, "02-reviewer-week-excusing-a-flag")
    flag.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "预警已免除" in page.locator(".note.ok").inner_text()
    excused = api.get("/flags", params={"state": "excused", "limit": 500}).json()["items"]
    assert key in {f["key"] for f in excused}
    assert audit_actions(api, key) == ["flag.excused"]

    session = page.locator(".session").first
    visit = session.get_attribute("data-visit")
    assert visit
    session.locator("summary").click()
    session.locator("textarea[name=comment]").fill("患者人数与登记本不符，请核对")
    session.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "退回医生" in page.locator(".note.ok").inner_text()
    assert audit_actions(api, visit) == ["visit.sent_back"]

    page.fill("#approve-reason", "已核对")
    page.click("#approve-form button")
    page.wait_for_load_state()
    assert page.locator("#review-state").get_attribute("data-state") == "approved"
    state = api.get(f"/review/weeks/{doctor}/{week}").json()["review"]
    assert (state["state"], state["by"], state["reason"]) == ("approved", "reviewer", "已核对")
    trail = page.locator("#audit li")
    assert [trail.nth(i).get_attribute("data-action") for i in range(trail.count())] == [
        "flag.excused",
        "visit.sent_back",
        "week.approved",
    ]
    screenshot(page, "03-reviewer-week-approved")

    page.click("header a.lang")
    page.wait_for_load_state()
    assert page.locator("#review-state h2").inner_text() == "Review: approved"
    screenshot(page, "04-reviewer-week-in-english")
    context.close()


def test_a_county_admin_downloads_the_xlsx_and_its_figures_match_the_api(
    demo_live: Any, browser: Any, screenshot: Any, tmp_path: Any
) -> None:
    from server.summaries import TOWNSHIP_FIGURES, table_rows

    base = demo_live.url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, base, "county")
    assert page.url.endswith("/county")
    page.goto(f"{base}/county?month={DEMO_MONTH}")
    screenshot(page, "05-county-summary")
    with page.expect_download() as started:
        page.click("#download-xlsx")
    download = started.value
    assert download.suggested_filename.endswith(f"-{DEMO_MONTH}.xlsx")
    path = tmp_path / "summary.xlsx"
    download.save_as(path)

    api = Api(base, "county")
    answer = api.get("/summaries", params={"month": DEMO_MONTH})
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    expected = table_rows(summary)
    workbook = load_workbook(path, read_only=True)
    assert set(workbook.sheetnames) >= set(expected)
    for name, rows in expected.items():
        sheet = [list(r) for r in workbook[name].iter_rows(values_only=True)]
        start = next(i for i, row in enumerate(sheet) if row[: len(rows[0])] == rows[0])
        got = [row[: len(rows[0])] for row in sheet[start : start + len(rows)]]
        # The JSON API sorts object keys, so rows built from it may come in another order.
        assert got[0] == rows[0], name
        assert sorted(got[1:], key=repr) == sorted(rows[1:], key=repr), name
    # And by name: the county totals row holds the API's totals, raw and approved.
    totals = next(
        list(row)
        for row in workbook["townships"].iter_rows(values_only=True)
        if row[0] == summary["totals"]["code"]
    )
    figures = summary["totals"]["figures"]
    for n, (key, _zh, _en) in enumerate(TOWNSHIP_FIGURES):
        assert totals[2 + 2 * n] == figures[key]["raw"], key
        assert totals[3 + 2 * n] == figures[key]["approved"], key
    assert figures["visits"]["raw"] > 0, "the demo county has visits that month"
    context.close()


def _canonical(rows: list[list[Any]]) -> list[str]:
    """Rows as sortable text, numbers as floats (JSON.parse reads 1.0 as 1)."""
    return sorted(
        json.dumps(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in r],
            ensure_ascii=False,
        )
        for r in rows
    )


def test_the_figures_on_the_county_page_equal_the_json_api(demo_live: Any, browser: Any) -> None:
    from server.summaries import table_rows

    base = demo_live.url
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "county")
    api = Api(base, "county")
    township = api.get("/summaries", params={"month": DEMO_MONTH}).json()["townships"][0]["code"]
    for params, names in (
        ({"month": DEMO_MONTH}, ("townships", "compliance", "flags")),
        ({"month": DEMO_MONTH, "township": township}, ("townships", "villages")),
    ):
        expected = table_rows(api.get("/summaries", params=params).json())
        page.goto(f"{base}/county?{urlencode(params)}")
        for name in names:
            header, *rows = expected[name]
            if name == "townships":  # drawn transposed: a figure a row, a township a column
                cells = page.eval_on_selector_all(
                    "table[data-table=townships] td",
                    "tds => tds.map(td => [td.dataset.unit, td.dataset.column,"
                    " JSON.parse(td.dataset.value), td.textContent.trim()])",
                )
                want = [[row[0], header[i], row[i]] for row in rows for i in range(2, len(header))]
                assert _canonical([c[:3] for c in cells]) == _canonical(want), params
            else:
                shown = page.eval_on_selector_all(
                    f"table[data-table={name}] tbody tr",
                    "trs => trs.map(tr => [...tr.cells].map(td =>"
                    " [td.dataset.column, JSON.parse(td.dataset.value), td.textContent.trim()]))",
                )
                assert [c[0] for c in shown[0]] == header, name
                assert _canonical([[c[1] for c in r] for r in shown]) == _canonical(rows), name
                cells = [[None, *c] for r in shown for c in r]
            # What a person reads is the same figure, to the shown precision.
            for _, column, value, text in cells:
                if isinstance(value, bool | str):
                    continue
                if value is None:
                    assert text == "—", column
                elif text.endswith("%"):
                    assert abs(float(text[:-1]) / 100 - value) < 0.0005, (column, value, text)
                else:
                    assert abs(float(text) - value) < 0.005, (column, value, text)
    context.close()


def test_the_review_works_on_a_phone_with_javascript_off(
    demo_live: Any, browser: Any, screenshot: Any
) -> None:
    base = demo_live.url
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
        locale="zh-CN",
    )
    page = context.new_page()
    sign_in(page, base, "reviewer")
    screenshot(page, "06-phone-overview")
    doctor, week = open_week_with_flags(page, base)
    # Nothing but the wide tables (which scroll inside their own box) is wider than the
    # screen: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "07-phone-week")
    page.click("#approve-form button")
    page.wait_for_load_state()
    assert page.locator("#review-state").get_attribute("data-state") == "approved"
    state = Api(base, "reviewer").get(f"/review/weeks/{doctor}/{week}").json()["review"]
    assert state["state"] == "approved"
    screenshot(page, "08-phone-week-approved")
    context.close()
