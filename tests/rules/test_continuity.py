"""posting.continuity (rules/continuity.py)."""

from tests.rules.builders import (
    flags_of,
    make_assignment,
    make_leave,
    make_scenario,
    make_visit,
)


def test_a_gap_of_thirteen_days_passes_and_fourteen_fails():
    rule = "posting.continuity"
    thirteen = [make_visit("2026-03-02"), make_visit("2026-03-16")]  # 3-15 March: 13 days
    fourteen = [make_visit("2026-03-02"), make_visit("2026-03-17")]
    assert (
        flags_of(
            rule, make_scenario(assignments=[make_assignment()], visits=thirteen), "2026-03-17"
        )
        == []
    )
    [flag] = flags_of(
        rule, make_scenario(assignments=[make_assignment()], visits=fourteen), "2026-03-17"
    )
    assert (flag.period, flag.measured, flag.required) == ("2026-03-03", 14, 13)
    assert flag.scope[0].isoformat() == "2026-03-02" and flag.scope[1].isoformat() == "2026-03-17"


def test_approved_leave_inside_a_gap_breaks_it():
    rule = "posting.continuity"
    visits = [make_visit("2026-03-02"), make_visit("2026-03-20")]
    leave = [make_leave(start="2026-03-10", end="2026-03-10")]
    assert (
        flags_of(
            rule,
            make_scenario(assignments=[make_assignment()], visits=visits, leave=leave),
            "2026-03-20",
        )
        == []
    )
    pending = [make_leave(start="2026-03-10", end="2026-03-10", status="pending")]
    assert (
        len(
            flags_of(
                rule,
                make_scenario(assignments=[make_assignment()], visits=visits, leave=pending),
                "2026-03-20",
            )
        )
        == 1
    )


def test_a_gap_running_to_the_end_of_a_finished_posting_is_not_called_open():
    rule = "posting.continuity"
    scenario = make_scenario(
        assignments=[make_assignment(end="2026-03-31")], visits=[make_visit("2026-03-02")]
    )
    [ended] = flags_of(rule, scenario, "2026-04-30")
    assert ended.measured == 29 and "still open" not in ended.explanation_en
    [running] = flags_of(rule, scenario, "2026-03-20")
    assert running.measured == 18 and "still open on 2026-03-20" in running.explanation_en
    assert running.key == ended.key  # the same gap, keyed by its first date


def test_a_scoped_evaluation_finds_the_gaps_whose_scope_just_reaches_its_period():
    """A scoped evaluation walks only the days around its period (issue 14); a gap whose
    scope (a day past each end) touches the period at either end is still its flag, and
    so is one that began long before it."""
    from datetime import date, timedelta

    from rules import evaluate
    from tests.rules.builders import only

    rule = "posting.continuity"
    # Duty on 2 March, then gaps 3-16 March (14 days), duty on 17 March, gap 18 March to
    # 6 April (20 days), duty on 7 April, then a gap still open on 30 April.
    visits = [make_visit(day) for day in ("2026-03-02", "2026-03-17", "2026-04-07")]
    scenario = make_scenario(assignments=[make_assignment()], visits=visits)
    as_of, ruleset = date(2026, 4, 30), only(rule)
    full = [f for f in evaluate(scenario, as_of=as_of, ruleset=ruleset) if f.rule == rule]
    assert [f.period for f in full] == ["2026-03-03", "2026-03-18", "2026-04-08"]
    for first in (date(2026, 2, 20) + timedelta(days=n) for n in range(0, 75, 1)):
        for length in (0, 1, 6):
            period = (first, first + timedelta(days=length))
            scoped = evaluate(scenario, as_of=as_of, ruleset=ruleset, period=period)
            assert [f for f in scoped if f.rule == rule] == [
                f for f in full if f.in_scope(None, period)
            ], period
