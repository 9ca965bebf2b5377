import json
from datetime import date

import pytest

from rules.workdays import (
    FALLBACK_SOURCE,
    LIBRARY_SOURCE,
    CalendarFileError,
    WorkCalendar,
    load_year_schedule,
    parse_year_schedule,
)


def test_national_day_2025_is_off_and_its_make_up_weekend_days_are_workdays():
    cal = WorkCalendar("cn")
    for day in range(1, 9):
        assert not cal.is_workday(date(2025, 10, day))
    assert cal.is_workday(date(2025, 9, 28))  # Sunday
    assert cal.is_workday(date(2025, 10, 11))  # Saturday
    assert not cal.is_workday(date(2025, 10, 12))  # an ordinary Sunday


def test_spring_festival_2026_follows_the_library_data():
    cal = WorkCalendar("cn")
    assert [cal.is_workday(date(2026, 2, d)) for d in range(14, 25)] == [
        True,  # Sat 14: 调休 make-up workday
        *[False] * 9,  # 15-23: Spring Festival
        True,  # Tue 24
    ]
    assert cal.is_workday(date(2026, 2, 28))  # Saturday make-up workday


def test_a_year_the_library_does_not_know_falls_back_to_weekdays_and_says_so():
    cal = WorkCalendar("cn")
    assert cal.source(2031) == FALLBACK_SOURCE
    assert cal.is_workday(date(2031, 1, 1))  # a Wednesday: the real holiday is unknown
    assert not cal.is_workday(date(2031, 1, 4))  # Saturday
    assert cal.source(2026) == LIBRARY_SOURCE
    assert (
        cal.sources(date(2026, 12, 28), date(2027, 1, 3)) == f"{LIBRARY_SOURCE} + {FALLBACK_SOURCE}"
    )


def test_weekdays_mode_ignores_holidays():
    cal = WorkCalendar("weekdays")
    assert cal.is_workday(date(2025, 10, 1))
    assert not cal.is_workday(date(2025, 9, 28))
    assert cal.source(2025) == "weekdays"


def test_an_override_file_wins_over_the_library(tmp_path):
    path = tmp_path / "cal-2026.json"
    path.write_text(
        json.dumps({"year": 2026, "holidays": ["2026-03-02"], "workdays": ["2026-03-07"]})
    )
    cal = WorkCalendar("cn", [load_year_schedule(path)])
    assert not cal.is_workday(date(2026, 3, 2))
    assert cal.is_workday(date(2026, 3, 7))
    assert cal.is_workday(date(2026, 2, 16))  # the file, not the library, decides 2026
    assert cal.source(2026) == "override:cal-2026.json"
    assert cal.source(2025) == LIBRARY_SOURCE


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"holidays": []}, "year"),
        ({"year": 2031, "holidays": ["2031-13-01"]}, "holidays[0]"),
        ({"year": 2031, "workdays": ["2030-01-01"]}, "not in 2031"),
        ({"year": 2031, "holidays": ["2031-01-01"], "workdays": ["2031-01-01"]}, "both"),
    ],
)
def test_a_malformed_override_names_the_bad_entry(obj, message):
    with pytest.raises(CalendarFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_year_schedule(obj, "override:x.json")
