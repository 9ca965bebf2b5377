import json
from datetime import date

import pytest

from rules import PRESETS, RULE_IDS, RuleSetError, evaluate, load_ruleset, parse_ruleset, preset
from tests.rules.builders import daily, make_assignment, make_scenario

ALWAYS = {"coverage.village", "staffing.qualified_share", "visit.overlap", "visit.off_site",
          "visit.implausible_patients", "visit.late_entry"}  # fmt: skip
POSTING_PATROL = {r for r in RULE_IDS if r.startswith(("posting.", "patrol."))}


def rules_on(name):
    return set(preset(name).versions[0].rules)


def test_presets_turn_on_the_rules_rules_md_lists():
    assert rules_on("national") == ALWAYS | POSTING_PATROL
    assert rules_on("guangxi") == ALWAYS | POSTING_PATROL | {"staffing.doctors_per_1000"}
    assert rules_on("shanxi") == rules_on("national") | {"staffing.doctors_per_1000"}
    assert rules_on("sichuan") == rules_on("national") | {
        "training.sessions_per_year",
        "training.days_per_year",
    }
    assert rules_on("laiyang") == rules_on("national") | {
        "sitin.days_per_week", "sitin.min_service", "staffing.doctors_per_1000"
    }  # fmt: skip
    assert set(PRESETS) == {"national", "guangxi", "shanxi", "sichuan", "laiyang"}


def test_preset_parameters_follow_the_rule_book():
    laiyang = preset("laiyang").versions[0]
    assert laiyang.param("staffing.qualified_share", "min_share") == 0.5
    assert laiyang.param("staffing.doctors_per_1000", "max_per_1000") == 1.5
    guangxi = preset("guangxi").versions[0]
    assert guangxi.param("posting.days_per_week", "min_days") == 5
    assert guangxi.param("patrol.fixed_schedule", "min_on_schedule_ratio") == 0.75
    assert guangxi.definition("half_day_hours") == 3.5
    assert "to confirm" in preset("national").versions[0].sources["posting.days_per_week"]


def test_a_county_file_overrides_parameters_of_its_base(tmp_path):
    path = tmp_path / "county.json"
    path.write_text(json.dumps({
        "name": "bama", "base": "guangxi",
        "versions": [{"version": "2026.1", "effective": "2026-01-01",
                      "rules": {"posting.days_per_week": {"min_days": 4}, "visit.off_site": {"enabled": False}}}],
    }))  # fmt: skip
    ruleset = load_ruleset(str(path))
    version = ruleset.version_at(date(2026, 3, 2))
    assert version.param("posting.days_per_week", "min_days") == 4
    assert not version.enabled("visit.off_site")
    assert version.enabled("posting.continuity")


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ({"name": "x", "base": "atlantis"}, "base"),
        ({"name": "x", "versions": [{"rules": {"posting.days": {}}}]}, "posting.days"),
        (
            {"name": "x", "versions": [{"rules": {"posting.days_per_week": {"min_dayz": 4}}}]},
            "min_dayz",
        ),
        ({"name": "x", "versions": [{"calendar": "lunar"}]}, "calendar"),
        ({"name": "x", "versions": [{"effective": "soon"}]}, "effective"),
    ],
)
def test_a_bad_rule_set_names_what_is_wrong(obj, where):
    with pytest.raises(RuleSetError, match=where):
        parse_ruleset(obj)


def test_an_unknown_rule_set_name_is_an_error():
    with pytest.raises(RuleSetError, match="unknown rule set"):
        load_ruleset("atlantis")


def test_a_version_change_mid_period_judges_each_week_by_the_version_in_force_at_its_start():
    # From Wednesday 11 March, four duty days are enough; W11 started on Monday 9 March under
    # the old version, so it still needs five; W12 needs four.
    ruleset = parse_ruleset({
        "name": "county", "base": "guangxi",
        "versions": [{"version": "1", "effective": "2026-01-01"},
                     {"version": "2", "effective": "2026-03-11", "rules": {"posting.days_per_week": {"min_days": 4}}}],
    })  # fmt: skip
    visits = daily("2026-03-09", "2026-03-12") + daily("2026-03-16", "2026-03-19")
    scenario = make_scenario(assignments=[make_assignment(start="2026-03-09")], visits=visits)
    flags = [
        f
        for f in evaluate(scenario, as_of=date(2026, 3, 22), ruleset=ruleset)
        if f.rule == "posting.days_per_week"
    ]
    assert [(f.period, f.required, f.ruleset) for f in flags] == [("2026-W11", 5, ("county", "1"))]


def test_a_version_may_switch_the_calendar_to_weekdays():
    ruleset = parse_ruleset({"name": "c", "versions": [{"calendar": "weekdays"}]})
    scenario = make_scenario(assignments=[make_assignment(start="2025-09-29", end="2025-12-31")])
    [flag] = [
        f
        for f in evaluate(scenario, as_of=date(2025, 10, 5), ruleset=ruleset)
        if f.period == "2025-W40" and f.rule == "posting.days_per_week"
    ]
    assert (flag.required, flag.calendar) == (5, "weekdays")


def test_a_rule_set_file_can_carry_a_calendar_override_for_an_unknown_year(tmp_path):
    (tmp_path / "cal-2031.json").write_text(
        json.dumps({"year": 2031, "holidays": ["2031-01-01"], "workdays": []})
    )
    path = tmp_path / "county.json"
    path.write_text(json.dumps({"name": "c", "calendar_overrides": ["cal-2031.json"]}))
    ruleset = load_ruleset(path)
    scenario = make_scenario(assignments=[make_assignment(start="2030-12-29", end="2031-12-31")])
    flags = {
        f.period: f
        for f in evaluate(scenario, as_of=date(2031, 1, 5), ruleset=ruleset)
        if f.rule == "posting.days_per_week"
    }
    assert flags["2031-W01"].required == 4
    assert flags["2031-W01"].calendar == "fallback:weekdays + override:cal-2031.json"
