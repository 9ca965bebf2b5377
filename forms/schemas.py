"""Validation of records against the form definitions: one `validate` entry point.

A record is checked and normalised in one pass (datetimes in ISO 8601 with their offset,
numbers as numbers, so that two equal records compare equal however a device spelled
them): each form version is compiled once into a list of field checks, cached by form
name and version (issue 14: marshmallow's `load` then `dump` of every visit, and hashing
the whole form definition to find its schema, were a third of a push). The messages are
marshmallow's, so an answer reads the same as before. The marshmallow schema of a form
(`schema_for`) stays for the OpenAPI document, built from the same definitions.

Records read back from the store were validated on the way in: they are trusted, and
`rules.scenario.trusted_scenario` parses them without checking again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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
_ID_MESSAGE = "must be 1-64 letters, digits, '_', '.', ':' or '-'"
_NAIVE_MESSAGE = "must carry a UTC offset, e.g. 2026-03-02T08:00:00+08:00"
_NUL_MESSAGE = "must not contain NUL characters"
# marshmallow's own messages, so that an answer reads the same whichever path checked it.
_REQUIRED = "Missing data for required field."
_NULL = "Field may not be null."


# --- marshmallow schemas (the OpenAPI document's view of a form) -----------------------


class AwareDateTime(fields.DateTime):
    """An ISO 8601 datetime that must carry its UTC offset (RULES.md: times carry their
    offset; dates are local dates at that offset). Serialised back as given."""

    default_error_messages = {"naive": _NAIVE_MESSAGE}

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
            raise ValidationError(_NUL_MESSAGE)
        return result


def _field(defn: FieldDef) -> fields.Field:
    common: dict[str, Any] = {"required": defn.required, "allow_none": defn.allow_none}
    rng = None
    if defn.minimum is not None or defn.maximum is not None:
        rng = mv.Range(min=defn.minimum, max=defn.maximum)
    if defn.type == ID:
        return StrictString(validate=mv.Regexp(_ID_RE, error=_ID_MESSAGE), **common)
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


def schema_for(form: FormDef) -> Schema:
    """The marshmallow schema of a form version (built once a name and version)."""
    return _schema(form.collection, form.version)


@cache
def _schema(collection: str, version: int) -> Schema:
    form = form_for(collection, version)
    attrs: dict[str, Any] = {f.name: _field(f) for f in form.fields}
    attrs["Meta"] = type("Meta", (), {"unknown": EXCLUDE})
    cls = type(f"{form.name.title()}V{form.version}Schema", (Schema,), attrs)
    return cls()


# --- the one-pass validator ---------------------------------------------------------------


class _Invalid(Exception):
    """One field's value is not valid; `message` says why."""

    def __init__(self, message: str) -> None:
        self.message = message


# A check takes the sent value (never None) and returns the value to store and compare:
# the normalised spelling. A datetime check also returns the parsed value for the cross
# checks (see _Check).
Normalise = Callable[[Any], Any]


def _range_check(defn: FieldDef) -> Callable[[float], None] | None:
    low, high = defn.minimum, defn.maximum
    if low is None and high is None:
        return None
    if low is not None and high is not None:
        message = f"Must be greater than or equal to {low} and less than or equal to {high}."
    elif low is not None:
        message = f"Must be greater than or equal to {low}."
    else:
        message = f"Must be less than or equal to {high}."

    def check(value: float) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Invalid(message)

    return check


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("Not a valid string.")
    if "\x00" in value:
        raise _Invalid(_NUL_MESSAGE)
    return value


def _normaliser(defn: FieldDef) -> Normalise:
    """The check of one field, compiled from its definition."""
    in_range = _range_check(defn)
    if defn.type == ID:

        def check_id(value: Any) -> str:
            text = _string(value)
            if _ID_RE.match(text) is None:
                raise _Invalid(_ID_MESSAGE)
            return text

        return check_id
    if defn.type == TEXT:
        longest = defn.max_length

        def check_text(value: Any) -> str:
            text = _string(value)
            if longest is not None and len(text) > longest:
                raise _Invalid(f"Longer than maximum length {longest}.")
            return text

        return check_text
    if defn.type == CHOICE:
        choices = frozenset(defn.choices)
        message = f"Must be one of: {', '.join(defn.choices)}."

        def check_choice(value: Any) -> str:
            text = _string(value)
            if text not in choices:
                raise _Invalid(message)
            return text

        return check_choice
    if defn.type == INTEGER:

        def check_integer(value: Any) -> int:
            if value is True or value is False or not isinstance(value, int):
                raise _Invalid("Not a valid integer.")
            if in_range is not None:
                in_range(value)
            return int(value)

        return check_integer
    if defn.type == NUMBER:

        def check_number(value: Any) -> float:
            if value is True or value is False or not isinstance(value, int | float):
                raise _Invalid("Not a valid number.")
            try:
                number = float(value)
            except OverflowError:
                raise _Invalid("Number too large.") from None
            if math.isnan(number) or math.isinf(number):
                raise _Invalid("Special numeric values (nan or infinity) are not permitted.")
            if in_range is not None:
                in_range(number)
            return number

        return check_number
    if defn.type == DATETIME:

        def check_datetime(value: Any) -> datetime:
            try:
                moment = datetime.fromisoformat(value)
            except (TypeError, AttributeError, ValueError):
                raise _Invalid("Not a valid datetime.") from None
            if moment.tzinfo is None:
                raise _Invalid(_NAIVE_MESSAGE)
            return moment

        return check_datetime
    if defn.type == DATE:

        def check_date(value: Any) -> date:
            try:
                return date.fromisoformat(value)
            except (TypeError, AttributeError, ValueError):
                raise _Invalid("Not a valid date.") from None

        return check_date
    raise ValueError(f"unknown field type {defn.type!r} in field {defn.name!r}")


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    required: bool
    allow_none: bool
    normalise: Normalise


@dataclass(frozen=True, slots=True)
class CompiledForm:
    """A form version compiled into its field checks."""

    form: FormDef
    checks: tuple[_Check, ...]
    # The date and datetime fields: the only ones the bounds check and the ISO spelling at
    # the end need to look at (issue 14: scanning every value cost a fifth of validation).
    temporal: tuple[str, ...] = ()


def compiled(collection: str, version: int | None) -> CompiledForm:
    """The checks of a form version (the latest for None), built once; cached by collection
    and version, never by hashing the definition."""
    form = form_for(collection, version)
    return _compiled(form.collection, form.version)


@cache
def _compiled(collection: str, version: int) -> CompiledForm:
    form = form_for(collection, version)
    return CompiledForm(
        form,
        tuple(_Check(f.name, f.required, f.allow_none, _normaliser(f)) for f in form.fields),
        tuple(f.name for f in form.fields if f.type in (DATE, DATETIME)),
    )


@dataclass(slots=True)
class ValidationResult:
    data: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _cross_checks(
    collection: str, values: dict[str, Any], now: datetime, temporal: tuple[str, ...]
) -> dict[str, list[str]]:
    # Dates far from today (year 1, year 9999) are typing slips that would break week and
    # month arithmetic in every later evaluation, page and export (issue 13): a datetime's
    # local date at its own offset, and every date, within forms.definitions' bounds.
    errors: dict[str, list[str]] = {}
    for name in temporal:
        value = values.get(name)
        if value is not None and not within_date_bounds(value):
            errors[name] = [DATE_BOUNDS_MESSAGE]
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
    Keys the form does not define are dropped; optional fields not sent stay absent.
    """
    if not isinstance(data, dict):
        return ValidationResult({}, {"_schema": ["must be an object"]})
    version = form_version if form_version is not None else data.get("form_version")
    if isinstance(version, bool) or not isinstance(version, int | None):
        return ValidationResult({}, {"form_version": ["must be an integer"]})
    try:
        form = compiled(collection, version)
    except UnknownForm as exc:
        return ValidationResult({}, {"form_version": [str(exc)]})
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for check in form.checks:
        name = check.name
        if name not in data:
            if check.required:
                errors[name] = [_REQUIRED]
            continue
        value = data[name]
        if value is None:
            if check.allow_none:
                values[name] = None
            else:
                errors[name] = [_NULL]
            continue
        try:
            values[name] = check.normalise(value)
        except _Invalid as invalid:
            errors[name] = [invalid.message]
    if errors:
        return ValidationResult({}, errors)
    errors = _cross_checks(collection, values, now or datetime.now(UTC), form.temporal)
    if errors:
        return ValidationResult({}, errors)
    values.setdefault("form_version", form.form.version)
    for name in form.temporal:
        value = values.get(name)
        if value is not None:  # a datetime or a date, back to ISO text
            values[name] = value.isoformat()
    return ValidationResult(values)
