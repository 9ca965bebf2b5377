"""County summaries (server/summaries/figures.py), their downloads (server/summaries/exports.py), charts
(server/summaries/charts.py) and API (/api/v1/summaries), on SQLite and PostgreSQL: figures checked by
hand on a small March, raw against reviewer-approved, scope, bad input, and the JSON, CSV and
XLSX agreeing figure for figure, for the small county and for the demo county generator."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest

from tests.builders import (
    COUNTY,
    OTHER_COUNTY,
    PASSWORD,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_B1,
    small_scenario,
    visit_data,
)

AS_OF = "2026-03-31"
MONTH = "2026-03"  # its weeks (by their Thursday): 2026-W10 .. 2026-W13, 2 to 29 March
SVG = "{http://www.w3.org/2000/svg}"
POSITIONS = {VILLAGE_A1: (23.11, 108.31), VILLAGE_A2: (23.12, 108.33), VILLAGE_B1: (23.21, 108.41)}


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_RULES_AS_OF": AS_OF}


def visit(vid: str, doctor: str, assignment: str, place: str, kind: str, day: int, start: str,
          end: str, patients: int) -> dict[str, Any]:  # fmt: skip
    lat, lon = POSITIONS[place]
    stamp = f"2026-03-{day:02d}T"
    return visit_data(
        id=vid,
        doctor=doctor,
        assignment=assignment,
        place=place,
        kind=kind,
        check_in=f"{stamp}{start}:00+08:00",
        check_out=f"{stamp}{end}:00+08:00",
        recorded_at=f"{stamp}{end}:30+08:00",
        patients=patients,
        lat=lat,
        lon=lon,
    )


def march_visits() -> list[dict[str, Any]]:
    """D2 (posting A2 at 石桥村, township A): five duty days in W11 and three in W12, 10
    patients each; D1 (patrol A1, township A): two sessions at 高岭村 in W13, 5 patients each;
    D3 (patrol A3 at 河口村, township B): two sessions in W10, 6 patients each."""
    visits = [
        visit(f"P{day}", "D2", "A2", VILLAGE_A1, "posting", day, "08:00", "12:30", 10)
        for day in (9, 10, 11, 12, 13, 16, 17, 18)
    ]
    visits += [
        visit("R1", "D1", "A1", VILLAGE_A2, "patrol", 24, "08:00", "12:00", 5),
        visit("R2", "D1", "A1", VILLAGE_A2, "patrol", 26, "14:00", "17:30", 5),
        visit("S1", "D3", "A3", VILLAGE_B1, "patrol", 4, "08:00", "12:00", 6),
        visit("S2", "D3", "A3", VILLAGE_B1, "patrol", 6, "08:00", "12:00", 6),
    ]
    return visits


def actor(username: str) -> Any:
    from sqlalchemy import select

    from server.actor import actor_for
    from server.extensions import db
    from server.models import User

    return actor_for(db.session, db.session.scalar(select(User).where(User.username == username)))


def seed(app: Any) -> None:
    """March's visits, flags judged as of AS_OF, one flag excused."""
    from server.extensions import db
    from server.flags import evaluate_all
    from server.records.importer import import_scenario
    from server.review import workflow as review

    with app.app_context():
        import_scenario(db.session, {**small_scenario(), "visits": march_visits()})
        evaluate_all(db.session, ruleset="guangxi", as_of=date.fromisoformat(AS_OF), cause="test")
        review.excuse_flag(
            db.session,
            actor("rev_a"),
            "posting.days_per_week|assignment|A2|2026-W12",
            reason="village meeting",
        )


def approve(app: Any, doctor: str, *weeks: str) -> None:
    from server.extensions import db
    from server.review import workflow as review

    with app.app_context():
        for week in weeks:
            review.approve_week(db.session, actor("rev_a"), doctor, week, reason="checked")


def summary_of(app: Any, username: str, **kwargs: Any) -> dict[str, Any]:
    from server import summaries
    from server.extensions import db

    with app.app_context():
        return summaries.county_summary(
            db.session,
            actor(username),
            month=kwargs.pop("month", MONTH),
            ruleset_name="guangxi",
            as_of=date.fromisoformat(AS_OF),
            **kwargs,
        )


def raw(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: value["raw"] for key, value in figures.items()}


def approved(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: value["approved"] for key, value in figures.items()}


def row(summary: dict[str, Any], code: str) -> dict[str, Any]:
    rows = summary["townships"] + summary["villages"] + [summary["totals"]]
    return next(r for r in rows if r["code"] == code)


# --- figures, checked by hand ------------------------------------------------------------


def test_the_month_figures_per_township_are_those_counted_by_hand(app: Any) -> None:
    seed(app)
    summary = summary_of(app, "admin")
    assert summary["county"] == {"code": COUNTY, "name": "示范县"}
    assert summary["period"]["weeks"] == ["2026-W10", "2026-W11", "2026-W12", "2026-W13"]
    assert summary["ruleset"]["name"] == "guangxi" and summary["ruleset"]["version"]
    assert summary["figures_as_of"] == AS_OF
    assert [t["code"] for t in summary["townships"]] == [TOWNSHIP_A, TOWNSHIP_B]

    a = raw(row(summary, TOWNSHIP_A)["figures"])
    assert a == {
        "doctors_posting": 1,
        "doctors_patrol": 1,
        "doctors_sitin": 0,
        "duty_days": 8,
        "duty_days_required": 20,  # 4 weeks x 5 workdays (no holiday in March 2026)
        "patrol_sessions": 2,
        "patrol_sessions_required": 8,
        "weeks_judged": 8,
        "weeks_met": 2,  # D2's W11, D1's W13
        "compliance_rate": 0.25,
        "visits": 10,
        "patients": 90,
        "fee_total": 640.0,  # 80 patients at 石桥村's clinic x 8 yuan; 高岭村 has none
        "fee_insurance": 560.0,
        "fee_personal": 80.0,
        "villages_needing_coverage": 1,  # 高岭村: no clinic, 160 residents
        "villages_covered": 1,  # patrolled, last visit 26 March: 5 days < 14
        "coverage_rate": 1.0,
        "flags_open": a["flags_open"],
        "flags_excused": 1,
        "flags_resolved": 0,
        "population": 1010,
        "village_doctors": 2,  # D1 (patrol), D2 (home and posting)
        "doctors_per_1000": 1.98,
        "qualified_doctors": 1,  # D1 is a physician, D2 a village doctor
        "qualified_share": 0.5,
    }
    compliance = row(summary, TOWNSHIP_A)["compliance"]
    assert raw(compliance["posting.days_per_week"]) == {"judged": 4, "met": 1, "rate": 0.25}
    assert raw(compliance["patrol.per_week"]) == {"judged": 4, "met": 1, "rate": 0.25}
    assert raw(compliance["sitin.days_per_week"]) == {"judged": 0, "met": 0, "rate": None}
    flags = row(summary, TOWNSHIP_A)["flags"]
    assert raw(flags["posting.days_per_week"]) == {"open": 2, "excused": 1, "resolved": 0}
    assert raw(flags["patrol.per_week"]) == {"open": 3, "excused": 0, "resolved": 0}

    b = raw(row(summary, TOWNSHIP_B)["figures"])
    assert (b["patrol_sessions"], b["weeks_judged"], b["weeks_met"]) == (2, 4, 1)
    assert (b["visits"], b["patients"], b["fee_total"]) == (2, 12, 96.0)
    assert (b["villages_needing_coverage"], b["coverage_rate"]) == (0, None)
    assert (b["doctors_per_1000"], b["qualified_share"]) == (1.667, 1.0)

    total = raw(summary["totals"]["figures"])
    assert (total["visits"], total["patients"], total["fee_total"]) == (12, 102, 736.0)
    assert (total["weeks_judged"], total["weeks_met"], total["compliance_rate"]) == (12, 3, 0.25)
    assert (total["village_doctors"], total["population"]) == (3, 1610)
    assert (total["doctors_per_1000"], total["qualified_share"]) == (1.863, 0.667)


def test_the_village_figures_are_those_counted_by_hand(app: Any) -> None:
    seed(app)
    summary = summary_of(app, "admin")
    assert [v["code"] for v in summary["villages"]] == [VILLAGE_A1, VILLAGE_A2, VILLAGE_B1]
    a1 = raw(row(summary, VILLAGE_A1)["figures"])
    assert a1 == {
        "visits": 8,
        "patients": 80,
        "days_since_last_visit": 13,  # last duty day 18 March
        "coverage": "not_required",  # its own clinic, 850 residents
        "fee_total": 640.0,
        "fee_insurance": 560.0,
        "fee_personal": 80.0,
    }
    a2 = raw(row(summary, VILLAGE_A2)["figures"])
    assert (a2["visits"], a2["patients"], a2["days_since_last_visit"]) == (2, 10, 5)
    assert a2["coverage"] == "covered"
    assert a2["fee_total"] is None  # no clinic: no consultation fee
    assert row(summary, VILLAGE_A2)["township"] == TOWNSHIP_A


def test_a_village_needing_coverage_without_a_recent_visit_is_uncovered(app: Any) -> None:
    from server.extensions import db
    from server.records.importer import import_scenario

    with app.app_context():
        import_scenario(
            db.session,
            {**small_scenario(), "visits": [v for v in march_visits() if v["id"] in ("R1",)]},
        )
    village = row(summary_of(app, "admin", month="2026-03"), VILLAGE_A2)["figures"]
    assert raw(village)["days_since_last_visit"] == 7
    assert raw(village)["coverage"] == "covered"
    february = row(summary_of(app, "admin", month="2026-02"), VILLAGE_A2)["figures"]
    assert raw(february)["days_since_last_visit"] is None  # never visited by 28 February
    assert raw(february)["coverage"] == "uncovered"


# --- raw against approved ------------------------------------------------------------------


def test_approved_figures_count_only_the_doctor_weeks_a_reviewer_approved(app: Any) -> None:
    seed(app)
    before = summary_of(app, "admin")
    assert approved(row(before, TOWNSHIP_A)["figures"])["duty_days"] == 0
    assert approved(row(before, TOWNSHIP_A)["figures"])["compliance_rate"] is None

    approve(app, "D2", "2026-W11", "2026-W12")
    summary = summary_of(app, "admin")
    a = row(summary, TOWNSHIP_A)["figures"]
    assert approved(a) != raw(a)
    got = approved(a)
    assert (got["doctors_posting"], got["doctors_patrol"]) == (1, 0)
    assert (got["duty_days"], got["duty_days_required"]) == (8, 10)
    assert (got["weeks_judged"], got["weeks_met"], got["compliance_rate"]) == (2, 1, 0.5)
    assert (got["visits"], got["patients"], got["fee_total"]) == (8, 80, 640.0)
    assert got["villages_covered"] == 0  # 高岭村's patrol weeks are not approved
    assert got["village_doctors"] == raw(a)["village_doctors"]  # staffing has no weeks
    flags = row(summary, TOWNSHIP_A)["flags"]
    assert approved(flags["posting.days_per_week"]) == {"open": 0, "excused": 1, "resolved": 0}
    assert approved(flags["coverage.village"]) == {"open": None, "excused": None, "resolved": None}
    a1 = row(summary, VILLAGE_A1)["figures"]
    assert approved(a1)["visits"] == 8 and approved(a1)["days_since_last_visit"] == 13
    b = row(summary, TOWNSHIP_B)["figures"]
    assert approved(b)["visits"] == 0 and raw(b)["visits"] == 2


def test_a_device_edit_reopens_the_week_and_it_leaves_the_approved_figures(
    app: Any, api: Any
) -> None:
    seed(app)
    approve(app, "D2", "2026-W11")
    assert approved(row(summary_of(app, "admin"), TOWNSHIP_A)["figures"])["duty_days"] == 5
    d2 = api("d2")
    changed = visit("P9", "D2", "A2", VILLAGE_A1, "posting", 9, "08:00", "12:30", 11)
    d2.push(
        {
            "collection": "visits",
            "id": "P9",
            "op": "upsert",
            "change_id": "c-p9",
            "base_version": 1,
            "data": {k: v for k, v in changed.items() if k != "id"},
        }
    )
    after = row(summary_of(app, "admin"), TOWNSHIP_A)["figures"]
    assert approved(after)["duty_days"] == 0
    assert raw(after)["patients"] == 91  # the push is seen: the county's data was not kept stale


# --- scope and bad input -------------------------------------------------------------------


def test_a_township_reviewer_sees_only_their_township(app: Any) -> None:
    from server import errors

    seed(app)
    mine = summary_of(app, "rev_a")
    assert [t["code"] for t in mine["townships"]] == [TOWNSHIP_A]
    assert {v["township"] for v in mine["villages"]} == {TOWNSHIP_A}
    assert mine["scope"]["township"] == [TOWNSHIP_A]
    assert raw(mine["totals"]["figures"])["visits"] == 10  # not township B's two
    admin_row = row(summary_of(app, "admin"), TOWNSHIP_A)
    assert mine["townships"][0]["figures"] == admin_row["figures"]
    with pytest.raises(errors.NotFound):
        summary_of(app, "rev_a", township=TOWNSHIP_B)
    with pytest.raises(errors.NotFound):
        summary_of(app, "admin_other", township=TOWNSHIP_A)
    with pytest.raises(errors.Forbidden):
        summary_of(app, "d1")
    other = summary_of(app, "admin_other")
    assert other["county"]["code"] == OTHER_COUNTY
    assert raw(other["totals"]["figures"])["visits"] == 0


def test_a_county_admin_may_ask_for_one_township(app: Any) -> None:
    seed(app)
    one = summary_of(app, "admin", township=TOWNSHIP_B)
    assert [t["code"] for t in one["townships"]] == [TOWNSHIP_B]
    assert [v["code"] for v in one["villages"]] == [VILLAGE_B1]
    assert raw(one["totals"]["figures"])["visits"] == 2


def test_summaries_over_http_answer_doctors_403_and_bad_months_400(api: Any) -> None:
    assert api("d1").get("/summaries", params={"month": MONTH}).status_code == 403
    assert api("d1").get("/summaries.csv", params={"month": MONTH}).status_code == 403
    admin = api("admin")
    # Months are read from 1990-01 to 2109-12 (forms.definitions.PERIOD_EARLIEST, _LATEST).
    for bad in ("2026-13", "March", "2026-3", "1989-12", "2110-01", "٢٠٢٦-٠٣", "2026-04"):
        answer = admin.get("/summaries", params={"month": bad})
        assert answer.status_code == 400, (bad, answer.text)
        body = answer.json()["error"]
        assert body["code"] == "validation_failed" and "month" in body["errors"], body
    missing = admin.get("/summaries.xlsx")
    assert missing.status_code == 400 and "month" in missing.json()["error"]["errors"]
    outside = api("rev_a").get("/summaries", params={"month": MONTH, "township": TOWNSHIP_B})
    assert outside.status_code == 404
    assert admin.get("/summaries/charts/pie.svg").status_code == 404
    assert (
        admin.get("/summaries/charts/duty-heatmap.svg", params={"doctor": "D9"}).status_code == 404
    )
    weeks = admin.get("/summaries/charts/duty-heatmap.svg", params={"doctor": "D1", "weeks": 0})
    assert weeks.status_code == 400


# --- CSV and XLSX agree with the JSON ----------------------------------------------------


def parse_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def expected_tables(summary: dict[str, Any]) -> dict[str, dict[tuple[str, ...], dict[str, Any]]]:
    """Every figure of the JSON, keyed by table, row key and column header, built from the
    JSON alone (not from table_rows)."""
    from server.summaries import TOWNSHIP_FIGURES, VILLAGE_FIGURES

    def head(zh: str, en: str, view: str) -> str:
        return f"{zh} {en} ({'原始 raw' if view == 'raw' else '审核 approved'})"

    views = ("raw", "approved")
    out: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {
        "townships": {},
        "compliance": {},
        "flags": {},
        "villages": {},
    }
    for unit in [*summary["townships"], summary["totals"]]:
        out["townships"][(unit["code"],)] = {
            head(zh, en, view): unit["figures"][key][view]
            for key, zh, en in TOWNSHIP_FIGURES
            for view in views
        }
        for rule, figure in unit["compliance"].items():
            out["compliance"][(unit["code"], rule)] = {
                head(zh, en, view): figure[key][view]
                for key, zh, en in (
                    ("judged", "已评周数", "weeks judged"),
                    ("met", "达标周数", "weeks met"),
                    ("rate", "达标率", "rate"),
                )
                for view in views
            }
        for rule, by_state in unit["flags"].items():
            out["flags"][(unit["code"], rule)] = {
                head(zh, en, view): by_state[state][view]
                for state, zh, en in (
                    ("open", "未处理", "open"),
                    ("excused", "已说明", "excused"),
                    ("resolved", "已解决", "resolved"),
                )
                for view in views
            }
    for v in summary["villages"]:
        out["villages"][(v["code"],)] = {
            head(zh, en, view): v["figures"][key][view]
            for key, zh, en in VILLAGE_FIGURES
            for view in views
        } | {"人口 population": v["population"], "有村卫生室 has clinic": v["has_clinic"]}
    return out


KEY_COLUMNS = {"townships": 1, "villages": 1, "compliance": 3, "flags": 3}


def table_values(name: str, rows: list[list[Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    header, *body = rows
    keys = [0] if KEY_COLUMNS[name] == 1 else [0, 2]
    return {tuple(str(r[k]) for k in keys): dict(zip(header, r, strict=True)) for r in body}


def assert_agree(summary: dict[str, Any], csv_bytes: bytes, xlsx_bytes: bytes) -> int:
    """The CSV and the XLSX hold every figure of the JSON, each in its place; returns how
    many figures were compared."""
    from openpyxl import load_workbook

    assert csv_bytes.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for Excel in zh-CN
    sections: dict[str, list[list[Any]]] = {}
    for line in list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))[1:]:
        cells = line[1:] if line[0] == "about" else [parse_cell(c) for c in line[1:]]
        sections.setdefault(line[0], []).append(cells)
    about = {r[0]: r[1:] for r in sections.pop("about")}
    assert about["规则集 rule set"][:2] == [
        summary["ruleset"]["name"],
        summary["ruleset"]["version"],
    ]
    assert about["数据截至 figures as of"][0] == summary["figures_as_of"]
    assert about["月份 month"][0] == summary["month"]

    book = load_workbook(io.BytesIO(xlsx_bytes))
    assert sorted(book.sheetnames) == sorted(sections)
    expected = expected_tables(summary)
    compared = 0
    for name, wanted in expected.items():
        csv_rows = [r[: len(sections[name][0])] for r in sections[name]]
        sheet_rows = [list(r) for r in book[name].iter_rows(values_only=True)]
        sheet_about = {r[0]: r[1:] for r in sheet_rows[:5]}
        assert sheet_about["规则集 rule set"][1] == summary["ruleset"]["version"]
        assert sheet_about["数据截至 figures as of"][0] == summary["figures_as_of"]
        table = [r for r in sheet_rows[6:]]
        for source in (table_values(name, csv_rows), table_values(name, table)):
            assert set(source) == set(wanted), name
            for key, figures in wanted.items():
                for header, value in figures.items():
                    got = source[key][header]
                    if isinstance(value, float) and isinstance(got, int | float):
                        assert got == pytest.approx(value, abs=1e-9), (name, key, header)
                    else:
                        assert got == value, (name, key, header, got, value)
                    compared += 1
    return compared


def test_csv_and_xlsx_downloads_hold_every_figure_of_the_json(app: Any, api: Any) -> None:
    seed(app)
    approve(app, "D2", "2026-W11")
    admin = api("admin")
    summary = admin.get("/summaries", params={"month": MONTH})
    assert summary.status_code == 200, summary.text
    as_csv = admin.get("/summaries.csv", params={"month": MONTH})
    as_xlsx = admin.get("/summaries.xlsx", params={"month": MONTH})
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_xlsx.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    disposition = as_xlsx.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"{COUNTY}-{MONTH}.xlsx" in disposition
    assert f"{COUNTY}-{MONTH}.csv" in as_csv.headers["Content-Disposition"]
    assert assert_agree(summary.json(), as_csv.content, as_xlsx.content) > 500


def test_a_name_that_looks_like_a_formula_stays_text_in_both_files(app: Any) -> None:
    from openpyxl import load_workbook

    from server.extensions import db
    from server.records.importer import import_scenario
    from server.summaries import exports

    scenario = small_scenario()
    for place in scenario["places"]:
        if place["code"] == VILLAGE_B1:
            place["name"] = '=HYPERLINK("http://x","<b>&")'
    with app.app_context():
        import_scenario(db.session, scenario)
    summary = summary_of(app, "admin")
    text = exports.to_csv(summary).decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(summary)))["villages"]
    cells = [c for r in sheet.iter_rows() for c in r if c.value and "HYPERLINK" in str(c.value)]
    assert cells and all(c.data_type == "s" for c in cells)


# --- charts ---------------------------------------------------------------------------------


def svg_root(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
    assert root.tag == f"{SVG}svg"
    return root


def by_class(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if css in (e.get("class") or "").split()]


def test_the_coverage_map_places_every_village_with_its_status(app: Any) -> None:
    from server.summaries import charts

    seed(app)
    summary = summary_of(app, "admin")
    root = svg_root(charts.coverage_map_svg(summary["villages"], labels=charts.LABELS_ZH))
    dots = {e.get("data-code"): e for e in by_class(root, "circle", "village")}
    assert set(dots) == {VILLAGE_A1, VILLAGE_A2, VILLAGE_B1}
    assert dots[VILLAGE_A2].get("data-status") == "covered"
    assert dots[VILLAGE_A1].get("data-status") == "not_required"
    # west to east and south to north as on a map
    assert float(dots[VILLAGE_A1].get("cx")) < float(dots[VILLAGE_B1].get("cx"))
    assert float(dots[VILLAGE_A1].get("cy")) > float(dots[VILLAGE_B1].get("cy"))
    legend = " ".join("".join(e.itertext()) for e in by_class(root, "g", "legend-item"))
    assert "已覆盖: 1" in legend and "未覆盖: 0" in legend


def test_the_duty_heatmap_has_a_cell_a_day_coloured_by_sessions(app: Any) -> None:
    from server import summaries
    from server.extensions import db
    from server.summaries import charts

    seed(app)
    approve(app, "D2", "2026-W11")
    with app.app_context():
        data = summaries.duty_heatmap(db.session, actor("rev_a"), "D2", 4, as_of=date(2026, 3, 25))
    assert [w["week"] for w in data["weeks"]] == ["2026-W10", "2026-W11", "2026-W12", "2026-W13"]
    root = svg_root(charts.duty_heatmap_svg(data, labels=charts.LABELS_EN))
    days = {e.get("data-date"): e for e in by_class(root, "rect", "day")}
    assert len(days) == 28
    assert days["2026-03-09"].get("data-sessions") == "1"
    assert days["2026-03-09"].get("fill") == charts.HEAT_COLOURS[1]
    assert days["2026-03-14"].get("data-sessions") == "0"
    assert "future" in days["2026-03-26"].get("class")  # after the date of the figures
    assert len(by_class(root, "text", "approved")) == 1
    week_rows = {g.get("data-week"): g for g in by_class(root, "g", "week")}
    assert by_class(week_rows["2026-W11"], "text", "approved")


def test_the_compliance_trend_draws_a_line_a_township_and_the_total(app: Any) -> None:
    from server import summaries
    from server.extensions import db
    from server.summaries import charts

    seed(app)
    with app.app_context():
        trend = summaries.compliance_trend(
            db.session,
            actor("admin"),
            ["2026-02", "2026-03"],
            ruleset_name="guangxi",
            as_of=date.fromisoformat(AS_OF),
        )
    march = trend["totals"]["points"][1]
    assert march["month"] == "2026-03" and march["rate"]["raw"] == 0.25
    root = svg_root(charts.compliance_trend_svg(trend))
    series = {g.get("data-code"): g for g in by_class(root, "g", "series")}
    assert set(series) == {TOWNSHIP_A, TOWNSHIP_B, COUNTY}
    points = by_class(series[COUNTY], "circle", "point")
    assert [p.get("data-rate") for p in points][-1] == "0.25"


def test_chart_text_is_escaped(app: Any) -> None:
    from server.summaries import charts

    villages = [
        {
            "code": "V<1>",
            "name": '</text><script>alert("x")</script>&',
            "lat": 23.0,
            "lon": 108.0,
            "figures": {
                "coverage": {"raw": "covered"},
                "days_since_last_visit": {"raw": None},
            },
        }
    ]
    svg = charts.coverage_map_svg(villages, labels={"map_title": "<b>map</b>"})
    root = svg_root(svg)
    assert not list(root.iter(f"{SVG}script"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_charts_over_http_are_svg_scoped_to_the_caller(app: Any, api: Any) -> None:
    seed(app)
    rev_a = api("rev_a")
    answer = rev_a.get("/summaries/charts/coverage-map.svg", params={"month": MONTH})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("image/svg+xml")
    codes = {e.get("data-code") for e in by_class(svg_root(answer.text), "circle", "village")}
    assert codes == {VILLAGE_A1, VILLAGE_A2}
    trend = rev_a.get("/summaries/charts/compliance-trend.svg", params={"months": 3, "lang": "en"})
    assert trend.status_code == 200
    assert {g.get("data-code") for g in by_class(svg_root(trend.text), "g", "series")} == {
        TOWNSHIP_A,
        COUNTY,
    }
    heat = rev_a.get("/summaries/charts/duty-heatmap.svg", params={"doctor": "D2", "weeks": 5})
    assert heat.status_code == 200
    assert len(by_class(svg_root(heat.text), "rect", "day")) == 35
    assert (
        rev_a.get("/summaries/charts/duty-heatmap.svg", params={"doctor": "D3"}).status_code == 404
    )


# --- the demo county ----------------------------------------------------------------------


def test_json_csv_and_xlsx_agree_for_the_demo_county(app: Any, live: Any) -> None:
    import requests

    from demo_county import generate_county
    from server.database import add_user
    from server.extensions import db
    from server.flags import evaluate_all
    from server.models import Doctor
    from server.records.importer import import_scenario
    from server.review import workflow as review

    county = generate_county(townships=2, villages=8, doctors=10, weeks=9)
    code = county["county"]["code"]
    as_of = date.fromisoformat(AS_OF)
    with app.app_context():
        import_scenario(db.session, county)
        evaluate_all(db.session, ruleset="guangxi", as_of=as_of, cause="test", counties=[code])
        add_user("demo_admin", PASSWORD, "county_admin", unit_code=code)
        admin = actor("demo_admin")
        for doctor in list(
            db.session.scalars(db.select(Doctor.id).where(Doctor.county_code == code))
        )[:4]:
            for week in ("2026-W06", "2026-W07"):
                review.approve_week(db.session, admin, doctor, week, reason=None)
    http = requests.Session()
    token = http.post(
        f"{live.url}/api/v1/auth/login",
        json={"username": "demo_admin", "password": PASSWORD},
        timeout=30,
    ).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    got = {}
    for suffix in ("", ".csv", ".xlsx"):
        answer = http.get(
            f"{live.url}/api/v1/summaries{suffix}", params={"month": "2026-02"}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        got[suffix] = answer
    summary = got[""].json()
    assert len(summary["townships"]) == 2 and len(summary["villages"]) == 8
    totals = summary["totals"]["figures"]
    assert totals["visits"]["raw"] > totals["visits"]["approved"] > 0
    assert totals["duty_days"]["raw"] > 0 and totals["patients"]["raw"] > 0
    assert assert_agree(summary, got[".csv"].content, got[".xlsx"].content) > 500
