from datetime import datetime, timedelta

from rules import VIOLATION
from tests.rules.builders import flags_of, make_scenario, make_visit


def test_overlapping_visits_at_two_places_are_flagged_on_the_later_one():
    first = make_visit("2026-03-02", start="08:00", hours=4)
    second = make_visit("2026-03-02", start="11:00", hours=2, place="V2")
    [flag] = flags_of("visit.overlap", make_scenario(visits=[first, second]), "2026-03-31")
    assert flag.subject == {"type": "visit", "id": second["id"]}
    assert flag.evidence == (first["id"], second["id"])


def test_touching_visits_or_overlap_at_the_same_place_are_not_flagged():
    touching = [
        make_visit("2026-03-02", start="08:00"),
        make_visit("2026-03-02", start="12:00", place="V2"),
    ]
    same_place = [make_visit("2026-03-02", start="08:00"), make_visit("2026-03-02", start="10:00")]
    for visits in (touching, same_place):
        assert flags_of("visit.overlap", make_scenario(visits=visits), "2026-03-31") == []


def test_a_visit_overlapping_one_across_midnight_is_flagged():
    night = make_visit("2026-03-02", start="22:00", hours=4)
    morning = make_visit("2026-03-03", start="01:00", hours=2, place="V2")
    [flag] = flags_of("visit.overlap", make_scenario(visits=[night, morning]), "2026-03-31")
    assert flag.period == "2026-03-03"


def test_a_visit_recorded_more_than_one_km_away_is_off_site():
    # 0.009 degrees of latitude is about 1.0 km; 0.0089 is within, 0.0091 beyond.
    near = make_visit("2026-03-02", lat=23.0089)
    far = make_visit("2026-03-02", lat=23.0091)
    assert flags_of("visit.off_site", make_scenario(visits=[near]), "2026-03-31") == []
    [flag] = flags_of("visit.off_site", make_scenario(visits=[far]), "2026-03-31")
    assert flag.status == VIOLATION and flag.measured > 1.0


def test_a_visit_without_a_position_is_not_judged_off_site():
    assert (
        flags_of(
            "visit.off_site", make_scenario(visits=[make_visit(lat=None, lon=None)]), "2026-03-31"
        )
        == []
    )


def test_thirty_patients_an_hour_pass_and_more_fail():
    ok = make_visit(hours=2, patients=60)
    busy = make_visit(hours=2, patients=61)
    instant = make_visit(hours=0, patients=1)
    assert flags_of("visit.implausible_patients", make_scenario(visits=[ok]), "2026-03-31") == []
    flagged = flags_of(
        "visit.implausible_patients", make_scenario(visits=[busy, instant]), "2026-03-31"
    )
    assert sorted(f.measured or 0 for f in flagged) == [0, 30.5]


def test_a_record_entered_within_seven_days_passes_and_later_fails():
    visit = make_visit("2026-03-02")
    check_out = datetime.fromisoformat(visit["check_out"])
    on_time = visit | {"recorded_at": (check_out + timedelta(days=7)).isoformat()}
    late = visit | {"recorded_at": (check_out + timedelta(days=7, minutes=1)).isoformat()}
    assert flags_of("visit.late_entry", make_scenario(visits=[on_time]), "2026-03-31") == []
    [flag] = flags_of("visit.late_entry", make_scenario(visits=[late]), "2026-03-31")
    assert flag.measured == 7.0 and flag.required == 7.0
