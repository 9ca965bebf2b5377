"""A scoped evaluation equals the full evaluation filtered to that scope: the contract the
server's incremental re-evaluation after a push relies on."""

import random
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Index, evaluate, preset
from tests.rules.builders import (
    default_places,
    make_assignment,
    make_doctor,
    make_leave,
    make_scenario,
    make_visit,
)

START = date(2026, 1, 26)


def random_county(seed):
    rng = random.Random(seed)
    doctors = [make_doctor(id=f"D{i}", home=rng.choice(["V1", "V2", "T1"]),
                           qualification=rng.choice(["physician", "village_doctor"])) for i in range(4)]  # fmt: skip
    assignments, visits, leave = [], [], []
    for i, doctor in enumerate(doctors):
        kind = rng.choice(["posting", "patrol", "sitin"])
        place = {"posting": "V1", "patrol": "V2", "sitin": "T1"}[kind]
        start = START + timedelta(days=rng.randrange(0, 20))
        end = start + timedelta(days=rng.randrange(20, 200))
        slots = (
            [{"weekday": rng.randrange(1, 6), "slot": rng.choice(["am", "pm"])}]
            if rng.random() < 0.7
            else []
        )
        assignments.append(make_assignment(id=f"A{i}", doctor=doctor["id"], kind=kind, places=[place],
                                           start=start.isoformat(), end=end.isoformat(), slots=slots))  # fmt: skip
        for _ in range(rng.randrange(5, 40)):
            day = START + timedelta(days=rng.randrange(0, 70))
            visits.append(make_visit(day, doctor=doctor["id"], place=rng.choice([place, place, "V1", "V2"]), kind=kind,
                                     start=f"{rng.randrange(6, 23):02d}:{rng.choice(['00', '30'])}",
                                     hours=rng.choice([1, 3.5, 4, 5, 8]), patients=rng.randrange(0, 150),
                                     lat=23.0 + rng.choice([0, 0, 0.05])))  # fmt: skip
        if rng.random() < 0.5:
            first = START + timedelta(days=rng.randrange(0, 60))
            leave.append(make_leave(id=f"L{i}", doctor=doctor["id"], start=first.isoformat(),
                                    end=(first + timedelta(days=rng.randrange(0, 6))).isoformat(),
                                    status=rng.choice(["approved", "pending"])))  # fmt: skip
    return make_scenario(
        places=default_places(),
        doctors=doctors,
        assignments=assignments,
        visits=visits,
        leave=leave,
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    as_of_offset=st.integers(0, 90),
    doctors=st.one_of(st.none(), st.sets(st.sampled_from(["D0", "D1", "D2", "D3"]))),
    window=st.one_of(st.none(), st.tuples(st.integers(-10, 100), st.integers(0, 20))),
)
def test_a_scoped_evaluation_equals_the_full_evaluation_filtered_to_that_scope(
    seed, as_of_offset, doctors, window
):
    scenario = random_county(seed)
    as_of = START + timedelta(days=as_of_offset)
    period = (
        None
        if window is None
        else (START + timedelta(days=window[0]), START + timedelta(days=window[0] + window[1]))
    )
    ruleset = preset("guangxi")
    full = evaluate(scenario, as_of=as_of, ruleset=ruleset)
    scoped = evaluate(scenario, as_of=as_of, ruleset=ruleset, doctors=doctors, period=period)
    assert scoped == [f for f in full if f.in_scope(doctors, period)]


def test_flag_keys_are_unique_within_an_evaluation():
    scenario = random_county(7)
    flags = evaluate(scenario, as_of=date(2026, 4, 30), ruleset=preset("laiyang"))
    assert flags  # the random county breaks some rules
    assert len({f.key for f in flags}) == len(flags)


def test_a_prebuilt_index_gives_the_same_flags():
    scenario = random_county(3)
    as_of = date(2026, 4, 1)
    index = Index(scenario, as_of)
    ruleset = preset("guangxi")
    assert evaluate(
        scenario, as_of=as_of, ruleset=ruleset, index=index, doctors={"D1"}
    ) == evaluate(scenario, as_of=as_of, ruleset=ruleset, doctors={"D1"})
