"""The rules are total over every date the server accepts (issue 13): records at the first
and last accepted days (forms.definitions.EARLIEST_DATE, LATEST_DATE), and evaluations
"as of" those days, give flags, never an exception. Period arithmetic at the bounds reaches
a little beyond them (the ISO week of 2000-01-01 starts in 1999), far from Python's edges."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forms.definitions import EARLIEST_DATE, LATEST_DATE
from rules import DEFAULT_PRESET, PRESETS, evaluate, preset
from rules.periods import add_months, label_range, month_label, week_label, week_start
from tests.rules.builders import (
    make_assignment,
    make_leave,
    make_scenario,
    make_training,
    make_visit,
)

accepted_days = st.dates(min_value=EARLIEST_DATE, max_value=LATEST_DATE)


def _scenario_around(day: date) -> object:
    first, last = max(EARLIEST_DATE, day - timedelta(days=20)), day
    return make_scenario(
        assignments=[
            make_assignment(start=first.isoformat(), end=None),
            make_assignment(
                id="A2",
                kind="patrol",
                places=["V1", "V2"],
                start=first.isoformat(),
                end=last.isoformat(),
                slots=[{"weekday": 2, "slot": "am"}],
            ),
        ],
        visits=[make_visit(first), make_visit(day, kind="patrol", place="V2", hours=23)],
        leave=[make_leave(start=first.isoformat(), end=day.isoformat())],
        trainings=[make_training(start=day.isoformat(), end=day.isoformat())],
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("day", [EARLIEST_DATE, LATEST_DATE, date(2099, 12, 28)])
def test_every_rule_evaluates_records_at_the_date_bounds(name: str, day: date) -> None:
    scenario = _scenario_around(day)
    for as_of in {day, min(LATEST_DATE, day + timedelta(days=40))}:
        flags = evaluate(scenario, as_of=as_of, ruleset=preset(name))  # type: ignore[arg-type]
        for flag in flags:
            label_range(flag.period)


@settings(max_examples=60, deadline=None)
@given(accepted_days)
def test_period_labels_of_every_accepted_day_read_back(day: date) -> None:
    monday = week_start(day)
    assert label_range(week_label(monday))[0] == monday
    first = day.replace(day=1)
    assert label_range(month_label(first))[0] == first
    assert add_months(first, 1) > first


@settings(max_examples=15, deadline=None)
@given(accepted_days)
def test_the_default_rules_evaluate_around_any_accepted_day(day: date) -> None:
    evaluate(_scenario_around(day), as_of=day, ruleset=preset(DEFAULT_PRESET))  # type: ignore[arg-type]
