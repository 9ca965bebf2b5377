"""The demo county generator (demo_county/): sizes, determinism, integrity, calendar and the planted breaches."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from chinese_calendar import get_holiday_detail, is_workday

import demo_county.generator
from demo_county import BREACH_KINDS, generate_county, summarize, write_scenario
from rules.geo import haversine_km

SMALL = {"townships": 2, "villages": 6, "doctors": 5, "weeks": 2}


@pytest.fixture(scope="module")
def county():
    """The default county (read only: every test that changes a scenario makes its own)."""
    return generate_county()


# --- helpers ---------------------------------------------------------------------------------


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def hours(visit) -> float:
    return (at(visit["check_out"]) - at(visit["check_in"])).total_seconds() / 3600


def day_of(visit) -> date:
    return date.fromisoformat(visit["check_in"][:10])


def dates(record) -> set[date]:
    first, last = date.fromisoformat(record["start"]), date.fromisoformat(record["end"])
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


def week_days(label: str) -> list[date]:
    year, week = label.split("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    return [monday + timedelta(days=i) for i in range(7)]


def six_months_after(day: date) -> date:
    year, month0 = divmod(day.month - 1 + 6, 12)
    return date(day.year + year, month0 + 1, min(day.day, 28))


def by_id(records) -> dict:
    return {r.get("id", r.get("code")): r for r in records}


def planted_visit_ids(scenario) -> set[str]:
    ids = set()
    for breach in scenario["meta"]["breaches"]:
        detail = breach["detail"]
        ids.update(detail.get("visits", []))
        if "visit" in detail:
            ids.add(detail["visit"])
    return ids


def assert_references_valid(scenario) -> None:
    places = by_id(scenario["places"])
    doctors = by_id(scenario["doctors"])
    assignments = by_id(scenario["assignments"])
    for section in ("places", "doctors", "assignments", "visits", "leave", "trainings"):
        keys = [r.get("id", r.get("code")) for r in scenario[section]]
        assert len(keys) == len(set(keys)), f"duplicate ids in {section}"
    for p in scenario["places"]:
        assert p["parent"] is None or p["parent"] in places
    for d in scenario["doctors"]:
        assert d["home"] in places
    for a in scenario["assignments"]:
        assert a["doctor"] in doctors
        assert a["places"] and all(code in places for code in a["places"])
        assert a["end"] is None or a["end"] >= a["start"]
    for v in scenario["visits"]:
        a = assignments[v["assignment"]]
        assert v["doctor"] in doctors and a["doctor"] == v["doctor"]
        assert v["place"] in a["places"] and v["kind"] == a["kind"]
        assert a["start"] <= v["check_in"][:10] and (
            a["end"] is None or v["check_in"][:10] <= a["end"]
        )
    for record in scenario["leave"] + scenario["trainings"]:
        assert record["doctor"] in doctors and record["start"] <= record["end"]


# --- size, determinism -----------------------------------------------------------------------


def test_the_default_county_has_ten_townships_120_villages_150_doctors_and_26_weeks(county):
    counts = summarize(county)
    assert counts["places"] == {"county": 1, "township": 10, "village": 120}
    assert counts["doctors"] == 150
    assert set(counts["assignments"]) == {"posting", "patrol", "sitin"}
    assert all(n > 0 for n in counts["assignments"].values())
    assert county["meta"]["period"] == {"start": "2026-01-05", "end": "2026-07-05"}
    assert 15_000 < counts["visits"] < 40_000


def test_the_same_seed_gives_the_same_scenario(county):
    again = generate_county()
    assert json.dumps(again, sort_keys=True) == json.dumps(county, sort_keys=True)


def test_another_seed_gives_another_scenario():
    assert json.dumps(generate_county(seed=1, **SMALL)) != json.dumps(
        generate_county(seed=2, **SMALL)
    )


def test_a_small_county_works_and_is_consistent():
    small = generate_county(**SMALL)
    assert summarize(small)["places"] == {"county": 1, "township": 2, "village": 6}
    assert summarize(small)["doctors"] == 5
    assert small["visits"]
    assert_references_valid(small)


def test_sizes_that_cannot_be_coded_are_refused():
    with pytest.raises(ValueError, match="townships"):
        generate_county(townships=0)


# --- places and doctors ----------------------------------------------------------------------


def test_place_codes_follow_the_administrative_code_lengths(county):
    places = by_id(county["places"])
    assert county["county"]["code"] == county["places"][0]["code"]
    for p in county["places"]:
        length = {"county": 6, "township": 9, "village": 12}[p["level"]]
        assert len(p["code"]) == length and p["code"].isdigit()
        if p["parent"]:
            assert p["code"].startswith(p["parent"])
            assert (
                places[p["parent"]]["level"]
                == {"township": "county", "village": "township"}[p["level"]]
            )
    assert county["county"]["code"].startswith("45")  # 广西


def test_villages_have_unique_chinese_names_and_towns_end_in_xiang_or_zhen(county):
    villages = [p["name"] for p in county["places"] if p["level"] == "village"]
    assert len(set(villages)) == len(villages)
    assert all(name.endswith("村") for name in villages)
    assert all(p["name"][-1] in "乡镇" for p in county["places"] if p["level"] == "township")
    assert county["county"]["name"].endswith("县")


def test_some_villages_are_small_and_some_have_no_clinic_but_every_town_has_a_hospital(county):
    villages = [p for p in county["places"] if p["level"] == "village"]
    assert any(p["population"] < 200 for p in villages)
    assert any(not p["has_clinic"] for p in villages)
    assert all(p["has_clinic"] for p in county["places"] if p["level"] == "township")


def test_villages_lie_near_their_township(county):
    places = by_id(county["places"])
    for p in county["places"]:
        if p["level"] == "village":
            town = places[p["parent"]]
            assert haversine_km(p["lat"], p["lon"], town["lat"], town["lon"]) < 8


def test_about_half_the_doctors_hold_a_physician_qualification(county):
    qualified = [
        d for d in county["doctors"] if d["qualification"] in ("physician", "assistant_physician")
    ]
    assert 0.40 <= len(qualified) / len(county["doctors"]) <= 0.55


def test_sitin_doctors_come_from_the_county_hospital_for_two_years(county):
    doctors = by_id(county["doctors"])
    places = by_id(county["places"])
    for a in county["assignments"]:
        if a["kind"] == "sitin":
            assert doctors[a["doctor"]]["home"] == county["county"]["code"]
            assert places[a["places"][0]]["level"] == "township"
            assert a["end"] == "2028-01-05"


def test_patrols_go_to_one_to_four_small_or_clinicless_villages(county):
    places = by_id(county["places"])
    for a in county["assignments"]:
        if a["kind"] == "patrol":
            assert 1 <= len(a["places"]) <= 4
            for code in a["places"]:
                assert places[code]["population"] < 200 or not places[code]["has_clinic"]


def test_every_village_doctor_has_one_to_three_trainings(county):
    trained = defaultdict(int)
    for t in county["trainings"]:
        trained[t["doctor"]] += 1
    for d in county["doctors"]:
        if d["qualification"] == "village_doctor":
            assert 1 <= trained[d["id"]] <= 3


# --- visits ----------------------------------------------------------------------------------


def test_every_reference_and_id_is_valid(county):
    assert_references_valid(county)


def test_times_carry_the_china_offset_and_check_out_follows_check_in(county):
    for v in county["visits"]:
        for key in ("check_in", "check_out", "recorded_at"):
            assert v[key].endswith("+08:00")
        assert at(v["check_out"]) > at(v["check_in"])
        assert at(v["recorded_at"]) >= at(v["check_out"])


def test_no_visit_falls_on_a_day_of_approved_leave_or_training(county):
    away = defaultdict(set)
    for record in county["leave"]:
        if record["status"] == "approved":
            away[record["doctor"]] |= dates(record)
    for record in county["trainings"]:
        away[record["doctor"]] |= dates(record)
    assert away
    assert not [v["id"] for v in county["visits"] if day_of(v) in away[v["doctor"]]]


def test_leave_is_mostly_approved_with_a_few_pending_or_refused(county):
    statuses = [lv["status"] for lv in county["leave"]]
    assert statuses.count("approved") > len(statuses) / 2
    assert set(statuses) <= {"approved", "pending", "refused"}


def test_no_posting_duty_falls_on_the_2026_spring_festival(county):
    festival = {
        date(2026, 2, 1) + timedelta(days=i)
        for i in range(40)
        if get_holiday_detail(date(2026, 2, 1) + timedelta(days=i)) == (True, "Spring Festival")
    }
    assert len(festival) >= 7
    planted = planted_visit_ids(county)
    on_festival = [
        v["id"]
        for v in county["visits"]
        if v["kind"] == "posting" and day_of(v) in festival and v["id"] not in planted
    ]
    assert on_festival == []


def test_posting_doctors_work_the_tiaoxiu_make_up_saturday(county):
    saturday = date(2026, 2, 14)
    assert is_workday(saturday)
    at_work = {
        v["doctor"] for v in county["visits"] if v["kind"] == "posting" and day_of(v) == saturday
    }
    postings = {a["doctor"] for a in county["assignments"] if a["kind"] == "posting"}
    assert len(at_work) > 0.7 * len(postings)


def test_posting_doctors_mostly_keep_five_duty_days_an_ordinary_week(county):
    duty_hours = defaultdict(float)
    for v in county["visits"]:
        if v["kind"] == "posting":
            duty_hours[v["doctor"], day_of(v)] += hours(v)
    ordinary = [
        days
        for days in (week_days(f"2026-W{week:02d}") for week in range(2, 27))
        if [is_workday(d) for d in days] == [True] * 5 + [False] * 2
    ]
    kept = total = 0
    for a in county["assignments"]:
        if a["kind"] != "posting" or a["end"] and a["end"] < "2026-07-05":
            continue
        for days in ordinary:
            total += 1
            kept += sum(duty_hours[a["doctor"], d] >= 4 for d in days) >= 5
    assert kept / total > 0.9


def test_patrol_sessions_last_half_a_day_and_mostly_keep_their_slots(county):
    assignments = by_id(county["assignments"])
    planted = planted_visit_ids(county)
    in_slot = total = 0
    for v in county["visits"]:
        if v["kind"] != "patrol" or v["id"] in planted:
            continue
        assert 3.5 <= hours(v) <= 4.5
        slots = {(s["weekday"], s["slot"]) for s in assignments[v["assignment"]]["slots"]}
        if slots:
            total += 1
            slot = "am" if at(v["check_in"]).hour < 12 else "pm"
            in_slot += (day_of(v).isoweekday(), slot) in slots
    assert in_slot / total > 0.8


def test_patients_positions_and_entry_times_are_plausible_apart_from_the_breaches(county):
    places = by_id(county["places"])
    planted = planted_visit_ids(county)
    for v in county["visits"]:
        if v["id"] in planted:
            continue
        place = places[v["place"]]
        assert 0 <= v["patients"] <= 40
        assert haversine_km(v["lat"], v["lon"], place["lat"], place["lon"]) < 1.0
        assert at(v["recorded_at"]) - at(v["check_out"]) < timedelta(days=7)
    assert any(v["notes"] for v in county["visits"])


def test_a_year_the_calendar_does_not_know_falls_back_to_monday_to_friday():
    scenario = generate_county(start=date(2040, 1, 2), **SMALL)
    assert scenario["meta"]["calendar"]["fallback_years"] == [2040]
    assert_references_valid(scenario)
    weekdays = [day_of(v).isoweekday() <= 5 for v in scenario["visits"]]
    assert sum(weekdays) / len(weekdays) > 0.9


# --- the planted breaches --------------------------------------------------------------------


def check_posting_days_per_week(s, breach):
    detail, days = breach["detail"], week_days(breach["detail"]["week"])
    assert [is_workday(d) for d in days] == [True] * 5 + [False] * 2
    on_duty = {day_of(v) for v in s["visits"] if v["assignment"] == detail["assignment"]}
    assert len(on_duty & set(days)) == detail["duty_days"] == 3


def check_patrol_per_week(s, breach):
    detail, days = breach["detail"], set(week_days(breach["detail"]["week"]))
    sessions = [
        v
        for v in s["visits"]
        if v["assignment"] == detail["assignment"] and day_of(v) in days and hours(v) >= 3.5
    ]
    assert len(sessions) == detail["sessions"] == 1
    assert sum(is_workday(d) for d in days) >= 2


def check_patrol_half_day(s, breach):
    visit = by_id(s["visits"])[breach["detail"]["visit"]]
    assert visit["kind"] == "patrol" and visit["doctor"] == breach["doctor"]
    assert hours(visit) == 2.5


def check_visit_overlap(s, breach):
    visits = by_id(s["visits"])
    first, second = (visits[i] for i in breach["detail"]["visits"])
    assert first["doctor"] == second["doctor"] == breach["doctor"]
    assert first["place"] != second["place"]
    assert at(first["check_in"]) < at(second["check_out"])
    assert at(second["check_in"]) < at(first["check_out"])


def check_visit_off_site(s, breach):
    visit = by_id(s["visits"])[breach["detail"]["visit"]]
    place = by_id(s["places"])[visit["place"]]
    assert haversine_km(visit["lat"], visit["lon"], place["lat"], place["lon"]) > 5


def check_visit_implausible_patients(s, breach):
    visit = by_id(s["visits"])[breach["detail"]["visit"]]
    assert visit["patients"] == 200 and hours(visit) == 2
    assert visit["patients"] / hours(visit) > 30


def check_visit_late_entry(s, breach):
    visit = by_id(s["visits"])[breach["detail"]["visit"]]
    assert at(visit["recorded_at"]) - at(visit["check_out"]) >= timedelta(days=12)


def check_posting_min_duration(s, breach):
    a = by_id(s["assignments"])[breach["detail"]["assignment"]]
    assert a["kind"] == "posting"
    assert date.fromisoformat(a["end"]) < six_months_after(date.fromisoformat(a["start"]))
    assert a["end"] < s["meta"]["period"]["end"]
    assert all(v["check_in"][:10] <= a["end"] for v in s["visits"] if v["assignment"] == a["id"])


def check_patrol_fixed_schedule(s, breach):
    a = by_id(s["assignments"])[breach["detail"]["assignment"]]
    assert a["kind"] == "patrol" and a["slots"] == []
    sessions = sum(v["assignment"] == a["id"] for v in s["visits"])
    assert sessions >= 1.5 * s["meta"]["generated_for"]["weeks"]  # still patrols, at any time


def check_coverage_village(s, breach):
    place = by_id(s["places"])[breach["detail"]["place"]]
    assert not place["has_clinic"]
    assert any(place["code"] in a["places"] for a in s["assignments"] if a["kind"] == "patrol")
    last = max(day_of(v) for v in s["visits"] if v["place"] == place["code"])
    assert (date.fromisoformat(s["meta"]["period"]["end"]) - last).days > 14
    assert breach["detail"]["days"] > 14


CHECKS = {
    "posting.days_per_week": check_posting_days_per_week,
    "patrol.per_week": check_patrol_per_week,
    "patrol.half_day": check_patrol_half_day,
    "visit.overlap": check_visit_overlap,
    "visit.off_site": check_visit_off_site,
    "visit.implausible_patients": check_visit_implausible_patients,
    "visit.late_entry": check_visit_late_entry,
    "posting.min_duration": check_posting_min_duration,
    "patrol.fixed_schedule": check_patrol_fixed_schedule,
    "coverage.village": check_coverage_village,
}


def test_the_default_county_plants_every_kind_of_breach_once_on_different_doctors(county):
    planted = county["meta"]["breaches"]
    assert [b["kind"] for b in planted] == list(BREACH_KINDS) == list(CHECKS)
    assert len({b["doctor"] for b in planted}) == len(planted)


@pytest.mark.parametrize("kind", BREACH_KINDS)
def test_the_planted_breach_is_in_the_data(county, kind):
    (breach,) = [b for b in county["meta"]["breaches"] if b["kind"] == kind]
    CHECKS[kind](county, breach)


def test_a_small_county_lists_only_the_breaches_it_could_plant():
    small = generate_county(**SMALL)
    for breach in small["meta"]["breaches"]:
        CHECKS[breach["kind"]](small, breach)


def test_without_breaches_the_integrity_rules_all_hold():
    clean = generate_county(breaches=False, doctors=60, weeks=8)
    assert clean["meta"]["breaches"] == []
    places = by_id(clean["places"])
    by_doctor = defaultdict(list)
    for v in clean["visits"]:
        by_doctor[v["doctor"]].append(v)
        place = places[v["place"]]
        assert haversine_km(v["lat"], v["lon"], place["lat"], place["lon"]) < 1.0
        assert v["patients"] / hours(v) <= 30
        assert at(v["recorded_at"]) - at(v["check_out"]) < timedelta(days=7)
    for visits in by_doctor.values():
        visits.sort(key=lambda v: v["check_in"])
        for before, after in zip(visits, visits[1:], strict=False):
            assert at(before["check_out"]) <= at(after["check_in"])
    for a in clean["assignments"]:
        assert a["slots"]
        assert a["end"] is None or date.fromisoformat(a["end"]) >= six_months_after(
            date.fromisoformat(a["start"])
        )


# --- output ----------------------------------------------------------------------------------


def test_write_scenario_writes_readable_utf8_json(tmp_path):
    small = generate_county(**SMALL)
    path = write_scenario(tmp_path / "county.json", small)
    text = path.read_text(encoding="utf-8")
    assert small["county"]["name"] in text  # not \u-escaped
    assert json.loads(text) == small


def test_summarize_counts_what_the_scenario_holds():
    small = generate_county(**SMALL)
    counts = summarize(small)
    assert counts["visits"] == len(small["visits"])
    assert counts["patients"] == sum(v["patients"] for v in small["visits"])
    assert sum(counts["assignments"].values()) == len(small["assignments"]) == 5
    assert counts["leave"] == len(small["leave"])
    assert counts["trainings"] == len(small["trainings"])


def test_the_generator_loads_neither_flask_nor_a_database_through_any_import():
    code = (
        "import sys, demo_county\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'sqlalchemy', 'flask_sqlalchemy', 'psycopg', 'sqlite3', 'sqlite_utils', 'server')]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_generator_imports_neither_flask_nor_a_database():
    tree = ast.parse(Path(demo_county.generator.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {
        "flask",
        "sqlalchemy",
        "flask_sqlalchemy",
        "psycopg",
        "sqlite3",
        "sqlite_utils",
    }
