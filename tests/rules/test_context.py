"""The evaluation context (rules/context.py): the scope of a scoped evaluation, the rule set
version in force on a date, and the flags it builds."""

from datetime import date

from rules import VIOLATION, Index, preset
from rules.context import EvaluationContext
from tests.rules.builders import make_scenario

AS_OF = date(2026, 3, 15)


def context(doctors=None, period=None) -> EvaluationContext:
    scenario = make_scenario()
    return EvaluationContext(Index(scenario, AS_OF), preset("guangxi"), AS_OF, doctors, period)


def test_an_unscoped_context_takes_every_doctor_and_every_date():
    ctx = context()
    assert ctx.doctor_in_scope("anyone")
    assert ctx.touches(date(2001, 1, 1), date(2001, 1, 7))


def test_a_scoped_context_takes_its_doctors_and_the_dates_overlapping_its_period():
    ctx = context({"D1"}, (date(2026, 3, 9), date(2026, 3, 15)))
    assert ctx.doctor_in_scope("D1") and not ctx.doctor_in_scope("D2")
    assert ctx.touches(date(2026, 3, 15), date(2026, 3, 21))
    assert not ctx.touches(date(2026, 3, 16), date(2026, 3, 22))


def test_the_version_in_force_on_a_date_comes_with_its_calendar():
    ctx = context()
    version, calendar = ctx.version(date(2026, 3, 2))
    assert version is ctx.ruleset.version_at(date(2026, 3, 2))
    assert not calendar.is_workday(date(2026, 10, 1))  # National Day
    assert ctx.version(date(2026, 3, 2))[0] is version  # the same answer, once looked up


def test_a_flag_names_the_rule_set_and_the_calendar_and_lists_evidence_once():
    ctx = context()
    version, _ = ctx.version(date(2026, 3, 9))
    flag = ctx.flag(
        "posting.days_per_week", VIOLATION, ("assignment", "A1"), "2026-W11", 3, 5,
        ["v1", "v2", "v1"], "中文", "English", version, "D1",
        (date(2026, 3, 9), date(2026, 3, 15)),
    )  # fmt: skip
    assert flag.evidence == ("v1", "v2")
    assert flag.ruleset == (ctx.ruleset.name, version.version)
    assert flag.calendar and (flag.subject_type, flag.subject_id) == ("assignment", "A1")
