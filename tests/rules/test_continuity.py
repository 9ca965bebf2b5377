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
