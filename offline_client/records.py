"""Building the device's records (visits, leave) and checking them against their forms.

Validation is the same form definition the server uses (`forms.validate`), so a record the
device accepts is one the server accepts too (except for what only the server knows:
unknown places or assignments, the server's clock).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from forms import validate
from offline_client.errors import InvalidRecord
from sync.protocol import VISITS
from sync.records import JSON

VISIT_FIELDS = (
    "place",
    "kind",
    "check_in",
    "check_out",
    "patients",
    "notes",
    "assignment",
    "lat",
    "lon",
    "accuracy_m",
)


def local_now() -> str:
    """Now on the device's clock at its own offset (when a person typed or sent it)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def parse_datetime(text: str, field: str) -> str:
    """ISO 8601; a time typed without an offset is taken at the device's own offset."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRecord(
            VISITS, {field: [f"not a date and time: {text!r} (use 2026-03-09T08:00+08:00)"]}
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.isoformat()


def parse_date(text: str, field: str, collection: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise InvalidRecord(
            collection, {field: [f"not a date: {text!r} (use 2026-03-09)"]}
        ) from None


def checked(collection: str, data: JSON) -> JSON:
    """The record normalised by its form, or InvalidRecord with the field errors."""
    result = validate(collection, data)
    if not result.ok:
        raise InvalidRecord(collection, result.errors)
    return result.data


def device_fields(doctor: str, device_id: str) -> JSON:
    return {"doctor": doctor, "device_id": device_id, "form_version": 1, "recorded_at": local_now()}


def with_changes(data: JSON, changes: dict[str, Any]) -> JSON:
    """`data` with the given fields set; a field given as None is left as it was."""
    merged = dict(data)
    merged.update({key: value for key, value in changes.items() if value is not None})
    return merged
