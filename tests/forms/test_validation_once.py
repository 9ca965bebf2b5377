"""forms.validate checks and normalises a record in one pass; it agrees with the marshmallow
schema's load-then-dump (the way it was done before issue 14) on any record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from forms import LEAVE_V1, TRAINING_V1, VISIT_V1, FormDef, form_for, validate
from forms.definitions import UnknownForm
from forms.schemas import _cross_checks, compiled, schema_for

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix or "_schema"] = [str(m) for m in messages]
    return out


def load_then_dump(form: FormDef, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reference: marshmallow load, the cross checks, then dump (before issue 14)."""
    version = data.get("form_version")
    if isinstance(version, bool) or not isinstance(version, int | None):
        return {}, {"form_version": ["must be an integer"]}
    try:
        form = form_for(form.collection, version)
    except UnknownForm as exc:
        return {}, {"form_version": [str(exc)]}
    schema = schema_for(form)
    try:
        values = schema.load(data)
    except ValidationError as exc:
        return {}, _flatten(exc.messages)
    # The reference looks at every value that is a date (as before issue 14), not only at
    # the fields the form types as dates.
    dated = tuple(name for name, value in values.items() if isinstance(value, date))
    errors = _cross_checks(form.collection, values, NOW, dated)
    if errors:
        return {}, errors
    values.setdefault("form_version", form.version)
    dumped = schema.dump(values)
    return {k: v for k, v in dumped.items() if k in values}, {}


def make_visit(**overrides: Any) -> dict[str, Any]:
    visit: dict[str, Any] = {
        "doctor": "D1",
        "place": "450999101201",
        "kind": "posting",
        "check_in": "2026-03-09T08:00:00+08:00",
        "check_out": "2026-03-09T16:30:00+08:00",
        "patients": 12,
    }
    visit.update(overrides)
    return {k: v for k, v in visit.items() if v is not ...}


ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "2026-03-09T08:00:00+08:00",
            "2026-03-09T08:00:00Z",
            "2026-03-09 08:00+0800",
            "2026-03-09T08:00:00",
            "2026-03-09",
            "2026-02-30",
            "posting",
            "patrol",
            "D1",
            "a b",
            "x\x00y",
            "长" * 501,
        ]
    ),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[FormDef, dict[str, Any]]:
    form = draw(st.sampled_from([VISIT_V1, LEAVE_V1, TRAINING_V1]))
    base = (
        make_visit()
        if form is VISIT_V1
        else {"doctor": "D1", "start": "2026-03-02", "end": "2026-03-04", "title": "t"}
    )
    names = [f.name for f in form.fields] + ["unknown_key"]
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        if draw(st.booleans()):
            base[name] = draw(ANY_JSON)
        else:
            base.pop(name, None)
    return form, base


@settings(max_examples=400, deadline=None)
@given(records())
def test_one_pass_validation_equals_marshmallow_load_then_dump(case: Any) -> None:
    form, data = case
    expected, expected_errors = load_then_dump(form, data)
    result = validate(form.collection, data, now=NOW)
    assert result.errors == expected_errors
    assert result.data == expected
    if result.ok:
        assert all(type(result.data[k]) is type(v) for k, v in expected.items())


def test_a_visit_is_normalised_once_times_as_iso_text_numbers_as_numbers() -> None:
    result = validate("visits", make_visit(lat=23, check_in="2026-03-09T08:00+08:00"), now=NOW)
    assert result.ok
    assert result.data["check_in"] == "2026-03-09T08:00:00+08:00"
    assert result.data["lat"] == 23.0 and isinstance(result.data["lat"], float)
    assert result.data["form_version"] == 1
    assert "notes" not in result.data  # an optional field not sent stays absent


def test_the_schema_cache_is_keyed_by_form_name_and_version_not_by_the_definition() -> None:
    assert compiled("visits", 1) is compiled("visits", 1) is compiled("visits", None)
    assert schema_for(VISIT_V1) is schema_for(VISIT_V1)
