import json
from pathlib import Path

import pytest

from rules import ScenarioError, evaluate, load_scenario, preset
from tests.rules.builders import default_places, make_assignment, make_doctor, make_visit

DOCS = Path(__file__).resolve().parents[2] / "docs"


def scenario_dict(**sections):
    return {"places": default_places(), "doctors": [make_doctor()], **sections}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda s: s["visits"][1].pop("check_in"), "visits[1].check_in"),
        (lambda s: s["visits"][1].update(check_in="2026-03-02T08:00:00"), "visits[1].check_in"),
        (
            lambda s: s["visits"][1].update(check_out="2026-03-01T08:00:00+08:00"),
            "visits[1].check_out",
        ),
        (lambda s: s["visits"][0].update(patients=-1), "visits[0].patients"),
        (lambda s: s["visits"][0].update(place="NOWHERE"), "visits[0].place"),
        (lambda s: s["visits"][0].update(id=s["visits"][1]["id"]), "visits[1].id"),
        (lambda s: s["assignments"][0].update(kind="vacation"), "assignments[0].kind"),
        (
            lambda s: s["assignments"][0].update(slots=[{"weekday": 8, "slot": "am"}]),
            "assignments[0].slots[0].weekday",
        ),
        (lambda s: s["assignments"][0].update(end="2026-01-01"), "assignments[0].end"),
        (lambda s: s["doctors"][0].update(qualification="wizard"), "doctors[0].qualification"),
        (
            lambda s: s.update(
                leave=[
                    {"doctor": "D1", "start": "2026-03-02", "end": "2026-03-02", "status": "maybe"}
                ]
            ),
            "leave[0].status",
        ),
        (lambda s: s.update(places="none"), "places"),
    ],
)
def test_a_malformed_record_is_reported_with_its_path(change, path):
    obj = scenario_dict(assignments=[make_assignment()], visits=[make_visit(), make_visit()])
    change(obj)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(obj)
    assert path in [p for p, _ in caught.value.errors]
    assert path in str(caught.value)


def test_extra_keys_are_ignored_and_optional_ones_may_be_absent():
    visit = make_visit() | {"device": "tablet-7"}
    del visit["assignment"], visit["recorded_at"], visit["lat"], visit["lon"]
    scenario = load_scenario(scenario_dict(visits=[visit], extra_section=[1]))
    assert scenario.visits[0].assignment is None and scenario.visits[0].recorded_at is None


def test_the_documented_example_scenario_loads_and_evaluates():
    text = (DOCS / "scenario-format.md").read_text(encoding="utf-8")
    block = text.split("```json", 1)[1].split("```", 1)[0]
    scenario = load_scenario(json.loads(block))
    assert len(scenario.visits) >= 3 and scenario.leave and scenario.trainings
    from datetime import date

    flags = evaluate(scenario, as_of=date(2026, 3, 15), ruleset=preset("guangxi"))
    assert {f.rule for f in flags} >= {"posting.days_per_week"}
