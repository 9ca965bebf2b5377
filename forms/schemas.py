"""marshmallow schemas built from the form definitions, and the one `validate` entry point.

Validation gives back the record normalised (datetimes in ISO 8601 with their offset,
numbers as numbers) so that two equal records compare equal however a device spelled them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields
from marshmallow import validate as mv

from forms.definitions import (
    CHOICE,
    DATE,
    DATE_BOUNDS_MESSAGE,
    DATETIME,
    ID,
    INTEGER,
    MAX_FUTURE_HOURS,
    MAX_VISIT_HOURS,
    NUMBER,
    TEXT,
    FieldDef,
    FormDef,
    UnknownForm,
    form_for,
    within_date_bounds,
)
from sync.protocol import VISITS

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class AwareDateTime(fields.DateTime):
    """An ISO 8601 datetime that must carry its UTC offset (RULES.md: times carry their
    offset; dates are local dates at that offset). Serialised back as given."""

    default_error_messages = {"naive": "must carry a UTC offset, e.g. 2026-03-02T08:00:00+08:00"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            raise self.make_error("naive")
        return result

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.isoformat()


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats with a fraction and numeric strings."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictNumber(fields.Float):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictString(fields.String):
    """A string with no NUL characters (they break PostgreSQL text and most tools)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        result = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in result:
            raise ValidationError("must not contain NUL characters")
        return result


def _field(defn: FieldDef) -> fields.Field:
    common: dict[str, Any] = {"required": defn.required, "allow_none": defn.allow_none}
    rng = None
    if defn.minimum is not None or defn.maximum is not None:
        rng = mv.Range(min=defn.minimum, max=defn.maximum)
    if defn.type == ID:
        return StrictString(
            validate=mv.Regexp(_ID_RE, error="must be 1-64 letters, digits, '_', '.', ':' or '-'"),
            **common,
        )
    if defn.type == TEXT:
        return StrictString(
            validate=mv.Length(max=defn.max_length) if defn.max_length else None, **common
        )
    if defn.type == INTEGER:
        return StrictInteger(strict=True, validate=rng, **common)
    if defn.type == NUMBER:
        return StrictNumber(allow_nan=False, validate=rng, **common)
    if defn.type == DATETIME:
        return AwareDateTime(format="iso", **common)
    if defn.type == DATE:
        return fields.Date(**common)
    if defn.type == CHOICE:
        return StrictString(validate=mv.OneOf(defn.choices), **common)
    raise ValueError(f"unknown field type {defn.type!r} in field {defn.name!r}")


@cache
def schema_for(form: FormDef) -> Schema:
    """The marshmallow schema of a form version (built once)."""
    attrs: dict[str, Any] = {f.name: _field(f) for f in form.fields}
    attrs["Meta"] = type("Meta", (), {"unknown": EXCLUDE})
    cls = type(f"{form.name.title()}V{form.version}Schema", (Schema,), attrs)
    return cls()


@dataclass(slots=True)
class ValidationResult:
    data: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, path))
    elif isinstance(messages, list):
        out[prefix or "_schema"] = [str(m) for m in messages]
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


def _cross_checks(collection: str, values: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    # Dates far from today (year 1, year 9999) are typing slips that would break week and
    # month arithmetic in every later evaluation, page and export (issue 13): a datetime's
    # local date at its own offset, and every date, within forms.definitions' bounds.
    errors: dict[str, list[str]] = {
        name: [DATE_BOUNDS_MESSAGE]
        for name, value in values.items()
        if isinstance(value, date) and not within_date_bounds(value)
    }
    if errors:
        return errors
    if collection == VISITS:
        check_in, check_out = values.get("check_in"), values.get("check_out")
        if isinstance(check_in, datetime) and isinstance(check_out, datetime):
            if check_out <= check_in:
                errors["check_out"] = ["must be after check_in"]
            elif check_out - check_in > timedelta(hours=MAX_VISIT_HOURS):
                errors["check_out"] = [
                    f"a visit lasts at most {MAX_VISIT_HOURS} hours; log a longer stay as "
                    "one record a day"
                ]
            if check_in - now > timedelta(hours=MAX_FUTURE_HOURS):
                errors["check_in"] = ["is in the future; check the device's date and time"]
    else:
        start, end = values.get("start"), values.get("end")
        if isinstance(start, date) and isinstance(end, date) and end < start:
            errors["end"] = ["must be on or after start"]
    return errors


def validate(
    collection: str,
    data: object,
    *,
    form_version: int | None = None,
    now: datetime | None = None,
) -> ValidationResult:
    """Validate one record of `collection` against its form; return it normalised.

    `now` is the validator's clock (the server's), for the "not in the future" check.
    """
    if not isinstance(data, dict):
        return ValidationResult({}, {"_schema": ["must be an object"]})
    version = form_version if form_version is not None else data.get("form_version")
    if isinstance(version, bool) or not isinstance(version, int | None):
        return ValidationResult({}, {"form_version": ["must be an integer"]})
    try:
        form = form_for(collection, version)
    except UnknownForm as exc:
        return ValidationResult({}, {"form_version": [str(exc)]})
    schema = schema_for(form)
    try:
        values = schema.load(data)
    except ValidationError as exc:
        return ValidationResult({}, _flatten(exc.messages))
    errors = _cross_checks(collection, values, now or datetime.now(UTC))
    if errors:
        return ValidationResult({}, errors)
    values.setdefault("form_version", form.version)
    normalised = schema.dump(values)
    return ValidationResult({k: v for k, v in normalised.items() if k in values})
