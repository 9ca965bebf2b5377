"""Rules on a window: the visits judging some doctors' weeks needs, and no more (issue 14).

Re-evaluating the doctor-weeks a push touched used to read, parse and index each doctor's
whole history to judge two weeks. A doctor's own flags whose scope overlaps a period need
only these visits (each is the flag's `scope`, rules/engine.py):

- the ISO weeks of the period, a day on each side: a visit across midnight credits the next
  date (`split_by_date`), and `visit.overlap` compares a visit with the one before it (the
  stored visits last at most 24 hours: forms.definitions.MAX_VISIT_HOURS);
- the calendar months of the period when a doctor has a patrol (`patrol.fixed_schedule`
  judges a month);
- for `posting.continuity`, the days back to the last covered day before the period (a duty
  day, approved leave or training: a gap that overlaps the period starts after it) and on
  to the first covered day after it. Found by widening the window until each posting has
  such a day inside it (or the window holds the posting's start, or reaches the evaluation
  date), doubling each time, so a long gap costs a few reads, not the whole history. The
  first read already reaches a week before the period (`CONTINUITY_LOOKBACK`), which
  nearly always holds that day: one read and one index, not two (issue 14).

Leave, trainings, assignments, places and doctors are few and are read whole. The caller
also passes the first day of the whole data (`first_day`): `training.*` judges the years
from there, and a window must not move it.

`windowed_index` returns an `Index` for `evaluate(..., index=...)`; the property test
(tests/rules/test_window.py) holds its doctor-level flags equal to the full evaluation's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta

from rules.index import Index
from rules.model import PATROL, POSTING, Place, Scenario, Visit
from rules.periods import ONE_DAY, DateRange, days, month_end, month_start
from rules.ruleset import RuleSet

# The visits of the judged doctors whose check-in falls on a local date in [first, last]
# (the date at the check-in's own UTC offset, as `Visit.day`); more is harmless.
VisitLoader = Callable[[date, date], Iterable[Visit]]

# The places (with the places above them) of these codes: the visits of a window may name
# places the facts do not hold yet.
PlaceLoader = Callable[[set[str]], Iterable[Place]]

# How far a stored visit reaches past its check-in date (at most 24 hours on site).
VISIT_REACH = ONE_DAY
# The first widening step of the continuity search; each next step doubles the window.
FIRST_STEP = timedelta(days=14)
# Read with the base window for a posting that began before the period: a posting asks for
# duty days every week (`posting.days_per_week`), so the week before the period nearly
# always holds the last covered day `posting.continuity` looks back to.
CONTINUITY_LOOKBACK = timedelta(days=7)


def base_window(period: DateRange, as_of: date, *, monthly: bool) -> DateRange:
    """The visits any doctor-level rule needs for flags whose scope overlaps `period`,
    before `posting.continuity` asks for more. Never past `as_of` (later visits are not
    facts yet)."""
    first = period[0] - timedelta(days=period[0].weekday())
    last = period[1] + timedelta(days=6 - period[1].weekday())
    if monthly:
        first, last = month_start(first), month_end(last)
    first, last = first - VISIT_REACH, last + VISIT_REACH
    return first, max(first, min(last, as_of))


def continuity_window(
    index: Index, ruleset: RuleSet, doctors: Iterable[str], window: DateRange, period: DateRange
) -> DateRange:
    """`window`, or a wider one when a posting of `doctors` may have a gap overlapping
    `period` that runs out of it. `index` holds the visits of `window` only."""
    as_of = index.as_of
    first, last = window
    wider_first, wider_last = first, last

    def covered(a_id: str, excused: set[date], day: date) -> bool:
        if day in excused:
            return True
        hours = index.assignment_data(index_assignments[a_id]).hours.get(day)
        need = ruleset.version_at(day).definition("min_hours_per_day")
        return hours is not None and max(hours.values()) >= need - 1e-9

    index_assignments = {a.id: a for d in doctors for a in index.assignments_of.get(d, ())}
    for a in index_assignments.values():
        if a.kind != POSTING or a.start > as_of:
            continue
        excused = index.excused.get(a.doctor, set())
        end = min(a.end or as_of, as_of)
        # Back: a covered day between the window's start and the period, unless the window
        # holds the posting's whole start (a day before it, for a visit across midnight).
        if a.start <= first and period[0] > a.start:
            before = days(max(first, a.start), min(period[0] - ONE_DAY, end))
            if not any(covered(a.id, excused, day) for day in before):
                step = max(FIRST_STEP, period[0] - first)
                wider_first = min(wider_first, max(first - step, a.start - ONE_DAY))
        # On: a covered day after the period, unless the window reaches the posting's end.
        if period[1] < end and last < end:
            after = days(max(period[1] + ONE_DAY, a.start), last)
            if not any(covered(a.id, excused, day) for day in after):
                step = max(FIRST_STEP, last - period[1])
                wider_last = max(wider_last, min(last + step, as_of))
    return wider_first, wider_last


def windowed_index(
    facts: Scenario,
    load_visits: VisitLoader,
    *,
    doctors: Iterable[str],
    period: DateRange,
    as_of: date,
    ruleset: RuleSet,
    first_day: date | Callable[[], date] | None = None,
    load_places: PlaceLoader | None = None,
) -> Index:
    """An Index of `facts` (everything but visits) and the visits judging `doctors` over
    `period` needs, read with `load_visits`; `first_day` is the earliest day of the whole
    data the full evaluation would see (its earliest visit, assignment or training), or a
    function that reads it, called only when it matters: when the window's own first day
    is in a later year than the period's start (`training.*` judges the years from it).
    `load_places` reads the places the visits name that `facts` does not hold."""
    wanted = set(doctors)
    monthly = any(a.kind == PATROL and a.doctor in wanted for a in facts.assignments)
    window = base_window(period, as_of, monthly=monthly)
    if any(
        a.kind == POSTING and a.doctor in wanted and a.start < period[0] for a in facts.assignments
    ):
        # `posting.continuity` looks back to the last covered day before the period, which
        # the base window (a day before it) almost never holds: read a week more with the
        # window, not in a second round that indexes everything again (issue 14). More
        # visits than needed is harmless; a longer gap still widens the window below.
        window = (min(window[0], period[0] - CONTINUITY_LOOKBACK), window[1])
    visits: dict[str, Visit] = {v.id: v for v in load_visits(*window)}
    places = {p.code: p for p in facts.places}
    while True:
        if load_places is not None:
            missing = {v.place for v in visits.values()} - places.keys()
            if missing:
                places.update((p.code, p) for p in load_places(missing))
        data = replace(facts, places=tuple(places.values()), visits=tuple(visits.values()))
        index = Index(data, as_of)
        wider = continuity_window(index, ruleset, wanted, window, period)
        if wider == window:
            break
        if wider[0] < window[0]:
            visits.update((v.id, v) for v in load_visits(wider[0], window[0] - ONE_DAY))
        if wider[1] > window[1]:
            visits.update((v.id, v) for v in load_visits(window[1] + ONE_DAY, wider[1]))
        window = wider
    if first_day is not None and index.first_day.year > period[0].year:
        whole = first_day() if callable(first_day) else first_day
        index.first_day = min(index.first_day, whole)
    return index


__all__ = [
    "CONTINUITY_LOOKBACK",
    "PlaceLoader",
    "VisitLoader",
    "base_window",
    "continuity_window",
    "windowed_index",
]
