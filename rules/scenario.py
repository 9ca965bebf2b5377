"""The scenario format (docs/scenario-format.md): validate a plain dict and build a Scenario.

Shared with the server's `zhuxun import` and the demo generator. Every error names where it
is, as a path like `visits[3].check_in`; extra keys are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from rules.model import (
    DUTY_KINDS,
    LEAVE_STATUSES,
    PLACE_LEVELS,
    QUALIFICATIONS,
    SLOTS,
    Assignment,
    Doctor,
    Leave,
    Place,
    Scenario,
    Slot,
    Training,
    Visit,
)

T = TypeVar("T")
_MISSING = object()
MAX_ERRORS = 20


class ScenarioError(ValueError):
    """A scenario that does not validate; `errors` lists (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"{path}: {message}" for path, message in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(shown + more)

    @property
    def path(self) -> str:
        return self.errors[0][0]


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        self.path, self.message = path, message


class _Reader:
    """Reads one record, raising _Invalid with the field's path."""

    def __init__(self, obj: Any, path: str) -> None:
        if not isinstance(obj, Mapping):
            raise _Invalid(path, f"expected an object, got {type(obj).__name__}")
        self.obj, self.path = obj, path

    def _get(self, key: str, required: bool) -> Any:
        value = self.obj.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise _Invalid(f"{self.path}.{key}", "missing")
            return None
        return value

    def text(self, key: str, *, required: bool = True, choices: tuple[str, ...] = ()) -> Any:
        value = self._get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise _Invalid(f"{self.path}.{key}", f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise _Invalid(
                f"{self.path}.{key}", f"expected one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def integer(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _Invalid(f"{self.path}.{key}", f"expected an integer >= 0, got {value!r}")
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Invalid(f"{self.path}.{key}", f"expected a number or null, got {value!r}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _Invalid(f"{self.path}.{key}", f"expected true or false, got {value!r}")
        return value

    def day(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None and not required:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise _Invalid(
                f"{self.path}.{key}", f"expected a date YYYY-MM-DD, got {value!r}"
            ) from None

    def moment(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None and not required:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise _Invalid(
                f"{self.path}.{key}",
                f"expected a time like 2026-03-02T08:00:00+08:00, got {value!r}",
            ) from None
        if parsed.utcoffset() is None:
            raise _Invalid(f"{self.path}.{key}", f"must carry a UTC offset, got {value!r}")
        return parsed


def _place(r: _Reader) -> Place:
    return Place(
        code=r.text("code"),
        name=r.text("name", required=False) or "",
        level=r.text("level", choices=PLACE_LEVELS),
        parent=r.text("parent", required=False),
        population=r.integer("population", required=False),
        has_clinic=r.flag("has_clinic", False),
        lat=r.number("lat"),
        lon=r.number("lon"),
    )


def _doctor(r: _Reader) -> Doctor:
    return Doctor(
        id=r.text("id"),
        name=r.text("name", required=False) or "",
        qualification=r.text("qualification", choices=QUALIFICATIONS),
        home=r.text("home"),
    )


def _slots(r: _Reader) -> tuple[Slot, ...]:
    raw = r.obj.get("slots") or []
    if not isinstance(raw, list):
        raise _Invalid(f"{r.path}.slots", "expected a list of {weekday, slot}")
    slots = []
    for i, item in enumerate(raw):
        s = _Reader(item, f"{r.path}.slots[{i}]")
        weekday = s.integer("weekday")
        if not 1 <= weekday <= 7:
            raise _Invalid(f"{s.path}.weekday", f"expected 1 (Monday) to 7 (Sunday), got {weekday}")
        slots.append(Slot(weekday, s.text("slot", choices=SLOTS)))
    return tuple(slots)


def _assignment(r: _Reader) -> Assignment:
    places = r.obj.get("places")
    if not isinstance(places, list) or not places:
        raise _Invalid(f"{r.path}.places", "expected a non-empty list of place codes")
    for i, code in enumerate(places):
        if not isinstance(code, str) or not code:
            raise _Invalid(f"{r.path}.places[{i}]", f"expected a place code, got {code!r}")
    start, end = r.day("start"), r.day("end", required=False)
    if end is not None and end < start:
        raise _Invalid(f"{r.path}.end", f"{end} is before start {start}")
    return Assignment(
        id=r.text("id"),
        doctor=r.text("doctor"),
        kind=r.text("kind", choices=DUTY_KINDS),
        places=tuple(places),
        start=start,
        end=end,
        slots=_slots(r),
    )


def _visit(r: _Reader) -> Visit:
    check_in, check_out = r.moment("check_in"), r.moment("check_out")
    if check_out < check_in:
        raise _Invalid(f"{r.path}.check_out", f"{check_out.isoformat()} is before check_in")
    return Visit(
        id=r.text("id"),
        doctor=r.text("doctor"),
        assignment=r.text("assignment", required=False),
        place=r.text("place"),
        kind=r.text("kind", choices=DUTY_KINDS),
        check_in=check_in,
        check_out=check_out,
        patients=r.integer("patients", required=False) or 0,
        lat=r.number("lat"),
        lon=r.number("lon"),
        recorded_at=r.moment("recorded_at", required=False),
    )


def _dates(r: _Reader) -> tuple[date, date]:
    start, end = r.day("start"), r.day("end")
    if end < start:
        raise _Invalid(f"{r.path}.end", f"{end} is before start {start}")
    return start, end


def _leave(r: _Reader) -> Leave:
    start, end = _dates(r)
    return Leave(
        doctor=r.text("doctor"),
        start=start,
        end=end,
        status=r.text("status", choices=LEAVE_STATUSES),
        id=r.text("id", required=False),
        reason=r.text("reason", required=False),
    )


def _training(r: _Reader) -> Training:
    start, end = _dates(r)
    return Training(
        doctor=r.text("doctor"),
        start=start,
        end=end,
        title=r.text("title", required=False) or "",
        id=r.text("id", required=False),
    )


def _section(
    obj: Mapping[str, Any],
    key: str,
    build: Callable[[_Reader], T],
    errors: list[tuple[str, str]],
) -> list[tuple[int, T]]:
    raw = obj.get(key, [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        errors.append((key, f"expected a list, got {type(raw).__name__}"))
        return []
    built = []
    for i, item in enumerate(raw):
        if len(errors) >= MAX_ERRORS:
            break
        try:
            built.append((i, build(_Reader(item, f"{key}[{i}]"))))
        except _Invalid as invalid:
            errors.append((invalid.path, invalid.message))
    return built


def load_scenario(obj: Any) -> Scenario:
    """Validate and parse a scenario dict; raise ScenarioError naming every bad field."""
    if not isinstance(obj, Mapping):
        raise ScenarioError([("$", f"expected a JSON object, got {type(obj).__name__}")])
    errors: list[tuple[str, str]] = []
    places = _section(obj, "places", _place, errors)
    doctors = _section(obj, "doctors", _doctor, errors)
    assignments = _section(obj, "assignments", _assignment, errors)
    visits = _section(obj, "visits", _visit, errors)
    leave = _section(obj, "leave", _leave, errors)
    trainings = _section(obj, "trainings", _training, errors)

    def unique(section: str, items: list[tuple[int, Any]], attr: str) -> set[str]:
        seen: set[str] = set()
        for i, item in items:
            value = getattr(item, attr)
            if value in seen:
                errors.append((f"{section}[{i}].{attr}", f"duplicate {attr} {value!r}"))
            seen.add(value)
        return seen

    place_codes = unique("places", places, "code")
    doctor_ids = unique("doctors", doctors, "id")
    assignment_ids = unique("assignments", assignments, "id")
    unique("visits", visits, "id")

    def known(path: str, value: str | None, pool: set[str], what: str) -> None:
        if value is not None and value not in pool:
            errors.append((path, f"unknown {what} {value!r}"))

    for i, p in places:
        known(f"places[{i}].parent", p.parent, place_codes, "place")
    for i, d in doctors:
        known(f"doctors[{i}].home", d.home, place_codes, "place")
    for i, a in assignments:
        known(f"assignments[{i}].doctor", a.doctor, doctor_ids, "doctor")
        for j, code in enumerate(a.places):
            known(f"assignments[{i}].places[{j}]", code, place_codes, "place")
    for i, v in visits:
        known(f"visits[{i}].doctor", v.doctor, doctor_ids, "doctor")
        known(f"visits[{i}].place", v.place, place_codes, "place")
        known(f"visits[{i}].assignment", v.assignment, assignment_ids, "assignment")
    for section, items in (("leave", leave), ("trainings", trainings)):
        for i, item in items:
            known(f"{section}[{i}].doctor", item.doctor, doctor_ids, "doctor")
    if errors:
        raise ScenarioError(errors[:MAX_ERRORS])
    return Scenario(
        places=tuple(p for _, p in places),
        doctors=tuple(d for _, d in doctors),
        assignments=tuple(a for _, a in assignments),
        visits=tuple(v for _, v in visits),
        leave=tuple(item for _, item in leave),
        trainings=tuple(t for _, t in trainings),
    )


# --- trusted records ----------------------------------------------------------------------


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def trusted_scenario(obj: Mapping[str, Any]) -> Scenario:
    """Build a Scenario from records that were validated when they were stored (the server's
    tables, issue 14): the same objects as `load_scenario`, without checking every field
    again. A malformed record raises whatever its conversion raises; never use this on what
    a person or a device sent."""
    return Scenario(
        places=tuple(
            Place(
                code=p["code"],
                name=p.get("name") or "",
                level=p["level"],
                parent=p.get("parent"),
                population=p.get("population"),
                has_clinic=bool(p.get("has_clinic") or False),
                lat=_number(p.get("lat")),
                lon=_number(p.get("lon")),
            )
            for p in obj.get("places") or ()
        ),
        doctors=tuple(
            Doctor(
                id=d["id"],
                name=d.get("name") or "",
                qualification=d["qualification"],
                home=d["home"],
            )
            for d in obj.get("doctors") or ()
        ),
        assignments=tuple(
            Assignment(
                id=a["id"],
                doctor=a["doctor"],
                kind=a["kind"],
                places=tuple(a["places"]),
                start=date.fromisoformat(a["start"]),
                end=date.fromisoformat(a["end"]) if a.get("end") else None,
                slots=tuple(Slot(s["weekday"], s["slot"]) for s in a.get("slots") or ()),
            )
            for a in obj.get("assignments") or ()
        ),
        visits=tuple(
            Visit(
                id=v["id"],
                doctor=v["doctor"],
                place=v["place"],
                kind=v["kind"],
                check_in=datetime.fromisoformat(v["check_in"]),
                check_out=datetime.fromisoformat(v["check_out"]),
                patients=v.get("patients") or 0,
                assignment=v.get("assignment"),
                lat=_number(v.get("lat")),
                lon=_number(v.get("lon")),
                recorded_at=_moment(v.get("recorded_at")),
            )
            for v in obj.get("visits") or ()
        ),
        leave=tuple(
            Leave(
                doctor=item["doctor"],
                start=date.fromisoformat(item["start"]),
                end=date.fromisoformat(item["end"]),
                # A leave request stored without a status is pending (forms: status optional).
                status=item.get("status") or "pending",
                id=item.get("id"),
                reason=item.get("reason"),
            )
            for item in obj.get("leave") or ()
        ),
        trainings=tuple(
            Training(
                doctor=t["doctor"],
                start=date.fromisoformat(t["start"]),
                end=date.fromisoformat(t["end"]),
                title=t.get("title") or "",
                id=t.get("id"),
            )
            for t in obj.get("trainings") or ()
        ),
    )
