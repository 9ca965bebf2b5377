"""Rules on a window (issue 14): for random histories and random pushes, judging the pushed
doctors' weeks on the windowed data gives exactly the full evaluation's flags."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import PRESETS, Index, Scenario, evaluate, load_ruleset, load_scenario
from rules.model import Visit
from rules.window import CONTINUITY_LOOKBACK, base_window, windowed_index
from tests.rules.builders import default_places, make_doctor, make_place

START = date(2026, 1, 5)  # a Monday
SPAN = 56  # eight weeks of history, and three before
TZ = timezone(timedelta(hours=8))
PLACES = ["V1", "V2"]
EXAMPLES = 300 if os.environ.get("ZHUXUN_LONG_TESTS") else 60


@st.composite
def assignments_of(draw: st.DrawFn, doctor: str) -> list[dict[str, Any]]:
    out = []
    for n in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["posting", "posting", "patrol", "sitin"]))
        start = START + timedelta(days=draw(st.integers(-14, 40)))
        end = draw(st.one_of(st.none(), st.integers(5, 120)))
        slots = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"weekday": st.integers(1, 7), "slot": st.sampled_from(["am", "pm"])}
                ),
                max_size=3,
            )
        )
        out.append(
            {
                "id": f"A-{doctor}-{n}",
                "doctor": doctor,
                "kind": kind,
                "places": draw(st.lists(st.sampled_from(PLACES), min_size=1, max_size=2)),
                "start": start.isoformat(),
                "end": None if end is None else (start + timedelta(days=end)).isoformat(),
                "slots": slots if kind == "patrol" else [],
            }
        )
    return out


@st.composite
def visits_of(
    draw: st.DrawFn, doctor: str, assignments: list[str], first: int, last: int, tag: str
) -> list[dict[str, Any]]:
    out = []
    for n in range(draw(st.integers(0, 60))):
        day = START + timedelta(days=draw(st.integers(first, last)))
        # Most visits in the day; some late ones cross midnight (at most 24 h: forms).
        hour = draw(st.sampled_from([7, 8, 13, 20, 22, 23]))
        minutes = draw(st.sampled_from([30, 180, 240, 390, 480, 600, 720, 1440]))
        check_in = datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
        check_out = check_in + timedelta(minutes=minutes)
        out.append(
            {
                "id": f"V-{doctor}-{tag}-{n}",
                "doctor": doctor,
                "assignment": draw(st.one_of(st.none(), st.sampled_from(assignments))),
                "place": draw(st.sampled_from(PLACES)),
                "kind": draw(st.sampled_from(["posting", "patrol", "sitin"])),
                "check_in": check_in.isoformat(),
                "check_out": check_out.isoformat(),
                "patients": draw(st.integers(0, 60)),
                "lat": draw(st.sampled_from([23.0, 23.5, None])),
                "lon": 108.0,
                "recorded_at": (check_out + timedelta(hours=draw(st.integers(0, 200)))).isoformat(),
            }
        )
    return out


@st.composite
def spans(draw: st.DrawFn, doctor: str, kind: str) -> list[dict[str, Any]]:
    out = []
    for n in range(draw(st.integers(0, 3))):
        first = START + timedelta(days=draw(st.integers(-10, SPAN)))
        record = {
            "id": f"{kind}-{doctor}-{n}",
            "doctor": doctor,
            "start": first.isoformat(),
            "end": (first + timedelta(days=draw(st.integers(0, 6)))).isoformat(),
        }
        if kind == "leave":
            record["status"] = draw(st.sampled_from(["approved", "pending", "refused"]))
        else:
            record["title"] = "培训"
        out.append(record)
    return out


@st.composite
def histories_and_a_push(draw: st.DrawFn) -> dict[str, Any]:
    doctors = ["D1", "D2", "D3"]
    obj: dict[str, Any] = {
        "places": [*default_places(), make_place(code="V3", name="三村", population=90, lat=23.4)],
        "doctors": [make_doctor(id=d, home=draw(st.sampled_from(["V1", "T1"]))) for d in doctors],
        "assignments": [],
        "visits": [],
        "leave": [],
        "trainings": [],
    }
    for d in doctors:
        own = draw(assignments_of(d))
        obj["assignments"] += own
        ids = [a["id"] for a in own]
        obj["visits"] += draw(visits_of(d, ids, -21, SPAN, "old"))
        obj["leave"] += draw(spans(d, "leave"))
        obj["trainings"] += draw(spans(d, "training"))
    pushers = draw(st.lists(st.sampled_from(doctors), min_size=1, max_size=2, unique=True))
    week = draw(st.integers(-3, SPAN // 7 - 1))
    pushed: list[dict[str, Any]] = []
    for d in pushers:
        ids = [a["id"] for a in obj["assignments"] if a["doctor"] == d]
        weeks = draw(st.integers(0, 2))
        pushed += draw(visits_of(d, ids, week * 7, week * 7 + 7 * weeks + 6, "new"))
    obj["visits"] += pushed
    return {
        "scenario": obj,
        "doctors": pushers,
        "pushed_days": [date.fromisoformat(v["check_in"][:10]) for v in pushed]
        or [START + timedelta(days=week * 7)],
        "as_of": START + timedelta(days=draw(st.integers(7, SPAN + 7))),
        "ruleset": draw(st.sampled_from(PRESETS)),
        "today_open": draw(st.booleans()),
    }


def _doctor_flags(flags: list[Any]) -> list[Any]:
    return [f for f in flags if f.doctor is not None]


@settings(max_examples=EXAMPLES, deadline=None)
@given(histories_and_a_push())
def test_the_windowed_evaluation_of_pushed_weeks_equals_the_full_one(case: dict[str, Any]) -> None:
    scenario: Scenario = load_scenario(case["scenario"])
    as_of, doctors = case["as_of"], set(case["doctors"])
    ruleset = load_ruleset(case["ruleset"])
    first, last = min(case["pushed_days"]), max(case["pushed_days"])
    period = (first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday()))
    live = case["today_open"]
    full = evaluate(
        scenario, as_of=as_of, ruleset=ruleset, doctors=doctors, period=period, today_open=live
    )

    reads: list[tuple[date, date]] = []

    def load(first: date, last: date) -> list[Visit]:
        reads.append((first, last))
        return [v for v in scenario.visits if v.doctor in doctors and first <= v.day <= last]

    named = {d.home for d in scenario.doctors} | {c for a in scenario.assignments for c in a.places}
    facts = Scenario(
        # Only the places the facts name, and above them: the visits' come with the window.
        places=tuple(p for p in scenario.places if p.code in named or p.level != "village"),
        doctors=tuple(d for d in scenario.doctors if d.id in doctors),
        assignments=tuple(a for a in scenario.assignments if a.doctor in doctors),
        leave=tuple(x for x in scenario.leave if x.doctor in doctors),
        trainings=tuple(t for t in scenario.trainings if t.doctor in doctors),
    )

    def places(codes: set[str]) -> list[Any]:
        return [p for p in scenario.places if p.code in codes]

    index = windowed_index(
        facts,
        load,
        doctors=doctors,
        period=period,
        as_of=as_of,
        ruleset=ruleset,
        first_day=Index(scenario, as_of).first_day,
        load_places=places,
    )
    windowed = evaluate(
        facts,
        as_of=as_of,
        ruleset=ruleset,
        doctors=doctors,
        period=period,
        index=index,
        today_open=live,
    )
    assert _doctor_flags(windowed) == _doctor_flags(full)
    # Reads never overlap: each widening reads only the days it adds.
    days_read = sorted(reads)
    for (_, a_last), (b_first, _) in zip(days_read, days_read[1:], strict=False):
        assert a_last < b_first


def test_the_base_window_is_the_weeks_a_day_on_each_side_and_the_months_for_patrols() -> None:
    week = (date(2026, 3, 9), date(2026, 3, 15))
    assert base_window(week, date(2026, 12, 31), monthly=False) == (
        date(2026, 3, 8),
        date(2026, 3, 16),
    )
    assert base_window(week, date(2026, 12, 31), monthly=True) == (
        date(2026, 2, 28),
        date(2026, 4, 1),
    )
    # Never past the evaluation date: later visits are not facts yet.
    assert base_window(week, date(2026, 3, 11), monthly=False)[1] == date(2026, 3, 11)


def _posting_judged(duty_days: list[date]) -> tuple[list[tuple[date, date]], Any, Any]:
    """D1 posted to V1 since START with a visit on each of `duty_days`, judged for the week
    of 2026-03-09 on 2026-03-12 windowed and in full: the window's reads and both flags."""
    posting = {
        "id": "A1", "doctor": "D1", "kind": "posting", "places": ["V1"],
        "start": "2026-01-05", "end": None, "slots": [],
    }  # fmt: skip

    def visit(day: date, n: int) -> dict[str, Any]:
        check_in = datetime(day.year, day.month, day.day, 8, tzinfo=TZ)
        return {
            "id": f"V{n}", "doctor": "D1", "assignment": "A1", "place": "V1", "kind": "posting",
            "check_in": check_in.isoformat(), "check_out": (check_in + timedelta(hours=8)).isoformat(),
        }  # fmt: skip

    scenario = load_scenario(
        {
            "places": default_places(),
            "doctors": [make_doctor()],
            "assignments": [posting],
            "visits": [visit(d, n) for n, d in enumerate(duty_days)],
        }
    )
    reads: list[tuple[date, date]] = []

    def load(first: date, last: date) -> list[Visit]:
        reads.append((first, last))
        return [v for v in scenario.visits if first <= v.day <= last]

    ruleset = load_ruleset("guangxi")
    index = windowed_index(
        Scenario(places=scenario.places, doctors=scenario.doctors, assignments=scenario.assignments),
        load, doctors={"D1"}, period=JUDGED_WEEK, as_of=JUDGED_ON, ruleset=ruleset,
    )  # fmt: skip
    full = evaluate(scenario, as_of=JUDGED_ON, ruleset=ruleset, doctors={"D1"}, period=JUDGED_WEEK)
    windowed = evaluate(scenario, as_of=JUDGED_ON, ruleset=ruleset, doctors={"D1"},
                        period=JUDGED_WEEK, index=index)  # fmt: skip
    return reads, full, windowed


JUDGED_ON, JUDGED_WEEK = date(2026, 3, 12), (date(2026, 3, 9), date(2026, 3, 15))


def test_a_long_gap_widens_the_window_back_to_the_last_duty_day_and_no_further() -> None:
    duty_days = [START + timedelta(days=i) for i in range(0, 10)] + [date(2026, 3, 10)]
    reads, full, windowed = _posting_judged(duty_days)
    assert min(first for first, _ in reads) <= date(2026, 1, 14)  # the last duty day before
    assert min(first for first, _ in reads) > date(2025, 12, 1)  # not the whole history
    assert [f.key for f in windowed] == [f.key for f in full]
    assert any(f.rule == "posting.continuity" for f in full)


def test_a_posting_that_works_every_week_is_judged_on_one_read_reaching_a_week_back() -> None:
    """The week before the period holds the last duty day `posting.continuity` looks back
    to: it is read with the window, not in a second round (issue 14)."""
    duty_days = [d for d in (START + timedelta(days=i) for i in range(70)) if d.weekday() < 3]
    reads, full, windowed = _posting_judged(duty_days)
    assert reads == [(JUDGED_WEEK[0] - CONTINUITY_LOOKBACK, JUDGED_ON)]
    assert windowed == full


def _both(
    obj: dict[str, Any],
    doctors: set[str],
    period: Any,
    as_of: date,
    rules: str = "guangxi",
    **kw: Any,
) -> Any:
    """The full evaluation's flags of `doctors` over `period`, and the windowed one's."""
    scenario = load_scenario(
        {"places": default_places(), "assignments": [], "leave": [], "trainings": []} | obj
    )
    ruleset = load_ruleset(rules)
    full = evaluate(scenario, as_of=as_of, ruleset=ruleset, doctors=doctors, period=period)
    facts = Scenario(
        places=scenario.places,
        doctors=tuple(d for d in scenario.doctors if d.id in doctors),
        assignments=tuple(a for a in scenario.assignments if a.doctor in doctors),
        leave=tuple(x for x in scenario.leave if x.doctor in doctors),
        trainings=tuple(t for t in scenario.trainings if t.doctor in doctors),
    )

    def load(first: date, last: date) -> list[Visit]:
        return [v for v in scenario.visits if v.doctor in doctors and first <= v.day <= last]

    index = windowed_index(
        facts, load, doctors=doctors, period=period, as_of=as_of, ruleset=ruleset, **kw
    )
    windowed = evaluate(
        facts, as_of=as_of, ruleset=ruleset, doctors=doctors, period=period, index=index
    )
    return _doctor_flags(full), _doctor_flags(windowed), Index(scenario, as_of).first_day


def test_a_visit_from_sunday_night_counts_for_monday_in_the_window() -> None:
    posting = {
        "id": "A1", "doctor": "D1", "kind": "posting", "places": ["V1"],
        "start": "2026-01-05", "end": None, "slots": [],
    }  # fmt: skip

    def visit(n: int, check_in: datetime, hours: int) -> dict[str, Any]:
        return {
            "id": f"V{n}", "doctor": "D1", "assignment": "A1", "place": "V1", "kind": "posting",
            "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(hours=hours)).isoformat(),
        }  # fmt: skip

    visits = [visit(0, datetime(2026, 3, 8, 22, tzinfo=TZ), 12)]  # Sunday 22:00 to Monday 10:00
    visits += [visit(n, datetime(2026, 3, 8 + n, 8, tzinfo=TZ), 9) for n in range(2, 5)]
    period, as_of = (date(2026, 3, 9), date(2026, 3, 15)), date(2026, 3, 15)
    full, windowed, _ = _both(
        {"doctors": [make_doctor()], "assignments": [posting], "visits": visits},
        {"D1"}, period, as_of,
    )  # fmt: skip
    weekly = [f for f in full if f.rule == "posting.days_per_week"]
    assert weekly and weekly[0].measured == 4  # Monday counts, from Sunday night's visit
    assert windowed == full


def test_the_window_keeps_the_first_day_of_the_whole_data_for_the_training_years() -> None:
    other = {
        "id": "V-other", "doctor": "D2", "assignment": None, "place": "V1", "kind": "posting",
        "check_in": "2025-06-02T08:00:00+08:00", "check_out": "2025-06-02T16:00:00+08:00",
    }  # fmt: skip
    leave = {"id": "L1", "doctor": "D1", "start": "2025-12-30", "end": "2025-12-31",
             "status": "approved"}  # fmt: skip
    obj = {
        "doctors": [make_doctor(home="V1"), make_doctor(id="D2")],
        "visits": [other],
        "leave": [leave],
    }
    period, as_of = (date(2025, 12, 29), date(2026, 1, 4)), date(2026, 1, 20)
    full, _, first_day = _both(obj, {"D1"}, period, as_of, "sichuan")
    assert any(f.rule.startswith("training.") and f.period == "2025" for f in full)
    _, windowed, _ = _both(obj, {"D1"}, period, as_of, "sichuan", first_day=first_day)
    assert windowed == full
    _, blind, _ = _both(obj, {"D1"}, period, as_of, "sichuan")
    assert blind != full  # without it, the year 2025 would not be judged
