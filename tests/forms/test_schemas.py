"""The schemas built from the definitions and `validate` (forms/schemas.py): a bad value is
refused under its field path, a good record comes back normalised, and a record written on
an older form version still validates after a newer one ships."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

import forms.definitions as definitions
from forms import validate
from forms.definitions import INTEGER, VISIT_V1, FieldDef
from sync.protocol import LEAVE, TRAININGS, VISITS
from tests.builders import visit_data

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 14:00 in China, after the visit below


def leave_data(**overrides):
    return {"doctor": "D1", "start": "2026-03-16", "end": "2026-03-17", **overrides}


def training_data(**overrides):
    return {
        "doctor": "D1",
        "start": "2026-04-01",
        "end": "2026-04-02",
        "title": "培训",
        **overrides,
    }


def test_a_good_visit_validates():
    result = validate(VISITS, visit_data(), now=NOW)
    assert result.ok and result.errors == {}
    assert result.data["patients"] == 9 and result.data["kind"] == "patrol"


def test_datetimes_are_normalised_so_two_spellings_compare_equal():
    short = validate(VISITS, visit_data(check_in="2026-03-10T08:00+08:00"), now=NOW)
    long = validate(VISITS, visit_data(check_in="2026-03-10T08:00:00+08:00"), now=NOW)
    assert short.data == long.data
    assert short.data["check_in"] == "2026-03-10T08:00:00+08:00"


def test_unknown_keys_are_dropped_and_the_form_version_is_filled_in():
    data = visit_data(temperature=37.2)
    del data["form_version"]
    result = validate(VISITS, data, now=NOW)
    assert result.ok
    assert "temperature" not in result.data and result.data["form_version"] == 1


@pytest.mark.parametrize(
    ("collection", "data", "path", "message"),
    [
        (VISITS, visit_data(patients="9"), "patients", "Not a valid integer."),
        (VISITS, visit_data(patients=True), "patients", "Not a valid integer."),
        (VISITS, visit_data(patients=2.5), "patients", "Not a valid integer."),
        (VISITS, visit_data(patients=-1), "patients", "greater than or equal to 0"),
        (VISITS, visit_data(patients=10_001), "patients", "less than or equal to 10000"),
        (VISITS, visit_data(lat=91), "lat", "less than or equal to 90"),
        (VISITS, visit_data(lon="108.3"), "lon", "Not a valid number."),
        (VISITS, visit_data(accuracy_m=-5), "accuracy_m", "greater than or equal to 0"),
        (VISITS, visit_data(kind="holiday"), "kind", "Must be one of"),
        (VISITS, visit_data(place="450 999"), "place", "must be 1-64 letters"),
        (VISITS, visit_data(notes="x" * 501), "notes", "Longer than maximum length 500."),
        (VISITS, visit_data(notes="a\x00b"), "notes", "must not contain NUL characters"),
        (VISITS, visit_data(check_in="2026-03-10T08:00:00"), "check_in", "UTC offset"),
        (VISITS, visit_data(doctor=None), "doctor", "Field may not be null."),
        (VISITS, visit_data(check_out="2026-03-10T07:00:00+08:00"), "check_out", "after check_in"),
        (VISITS, visit_data(check_out="2026-03-11T09:00:00+08:00"), "check_out", "at most 24"),
        (
            VISITS,
            visit_data(check_in="2026-03-12T08:00:00+08:00", check_out="2026-03-12T12:00:00+08:00"),
            "check_in",
            "in the future",
        ),
        (VISITS, visit_data(form_version="1"), "form_version", "must be an integer"),
        (VISITS, visit_data(form_version=7), "form_version", "no version 7"),
        (LEAVE, leave_data(end="2026-03-15"), "end", "on or after start"),
        (LEAVE, leave_data(status="maybe"), "status", "Must be one of"),
        (LEAVE, leave_data(start="16/03/2026"), "start", "Not a valid date."),
        (TRAININGS, training_data(title="课" * 201), "title", "Longer than maximum length 200."),
        (
            TRAININGS,
            {k: v for k, v in training_data().items() if k != "title"},
            "title",
            "required",
        ),
    ],
)
def test_each_bad_value_is_refused_under_its_field_path(collection, data, path, message):
    result = validate(collection, data, now=NOW)
    assert not result.ok and result.data == {}
    assert path in result.errors, result.errors
    assert any(message in m for m in result.errors[path]), result.errors[path]


def test_a_record_that_is_not_an_object_is_refused_as_a_whole():
    assert validate(VISITS, ["not", "a", "visit"]).errors == {"_schema": ["must be an object"]}


def test_every_bad_field_of_one_record_is_reported_at_once():
    result = validate(VISITS, visit_data(patients=-1, lat=200, kind="x"), now=NOW)
    assert set(result.errors) == {"patients", "lat", "kind"}


def test_a_record_of_an_older_form_version_still_validates_after_a_new_version(monkeypatch):
    # Version 2 of the visit log asks for a temperature; a tablet not yet updated still
    # records version 1, and what it recorded must sync.
    v2 = replace(
        VISIT_V1,
        version=2,
        fields=(*VISIT_V1.fields, FieldDef("temperature", INTEGER, "体温", "Temperature")),
    )
    monkeypatch.setitem(definitions.FORMS, (VISITS, 2), v2)
    monkeypatch.setitem(definitions.LATEST, VISITS, v2)

    old = validate(VISITS, visit_data(form_version=1), now=NOW)
    assert old.ok and old.data["form_version"] == 1

    unversioned = visit_data()
    del unversioned["form_version"]
    assert validate(VISITS, unversioned, now=NOW).errors == {
        "temperature": ["Missing data for required field."]
    }
    new = validate(VISITS, visit_data(form_version=2, temperature=37), now=NOW)
    assert new.ok and new.data["temperature"] == 37
