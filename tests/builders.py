"""Builders for test data: small scenarios and records with overridable fields."""

from __future__ import annotations

import uuid
from typing import Any

COUNTY = "450999"
TOWNSHIP_A = "450999101"
TOWNSHIP_B = "450999102"
VILLAGE_A1 = "450999101201"
VILLAGE_A2 = "450999101202"
VILLAGE_B1 = "450999102201"
OTHER_COUNTY = "451888"
OTHER_TOWNSHIP = "451888101"
OTHER_VILLAGE = "451888101201"
PASSWORD = "correct-horse-battery"


def small_scenario() -> dict[str, Any]:
    """Two counties; county 450999 has townships A and B. Doctors D1, D2 work in A, D3 in B,
    D9 in the other county."""
    places = [
        {"code": COUNTY, "name": "示范县", "level": "county", "parent": None},
        {
            "code": TOWNSHIP_A,
            "name": "甲镇",
            "level": "township",
            "parent": COUNTY,
            "population": 12000,
            "has_clinic": True,
            "lat": 23.10,
            "lon": 108.30,
        },
        {
            "code": TOWNSHIP_B,
            "name": "乙乡",
            "level": "township",
            "parent": COUNTY,
            "population": 8000,
            "has_clinic": True,
            "lat": 23.20,
            "lon": 108.40,
        },
        {
            "code": VILLAGE_A1,
            "name": "石桥村",
            "level": "village",
            "parent": TOWNSHIP_A,
            "population": 850,
            "has_clinic": True,
            "lat": 23.11,
            "lon": 108.31,
        },
        {
            "code": VILLAGE_A2,
            "name": "高岭村",
            "level": "village",
            "parent": TOWNSHIP_A,
            "population": 160,
            "has_clinic": False,
            "lat": 23.12,
            "lon": 108.33,
        },
        {
            "code": VILLAGE_B1,
            "name": "河口村",
            "level": "village",
            "parent": TOWNSHIP_B,
            "population": 600,
            "has_clinic": True,
            "lat": 23.21,
            "lon": 108.41,
        },
        {"code": OTHER_COUNTY, "name": "邻县", "level": "county", "parent": None},
        {"code": OTHER_TOWNSHIP, "name": "丙镇", "level": "township", "parent": OTHER_COUNTY},
        {
            "code": OTHER_VILLAGE,
            "name": "远山村",
            "level": "village",
            "parent": OTHER_TOWNSHIP,
            "population": 300,
            "has_clinic": True,
        },
    ]
    doctors = [
        {"id": "D1", "name": "李明", "qualification": "physician", "home": TOWNSHIP_A},
        {"id": "D2", "name": "王芳", "qualification": "village_doctor", "home": VILLAGE_A1},
        {"id": "D3", "name": "张伟", "qualification": "assistant_physician", "home": TOWNSHIP_B},
        {"id": "D9", "name": "赵强", "qualification": "physician", "home": OTHER_TOWNSHIP},
    ]
    assignments = [
        {
            "id": "A1",
            "doctor": "D1",
            "kind": "patrol",
            "places": [VILLAGE_A1, VILLAGE_A2],
            "start": "2026-01-05",
            "end": None,
            "slots": [{"weekday": 2, "slot": "am"}, {"weekday": 4, "slot": "pm"}],
        },
        {
            "id": "A2",
            "doctor": "D2",
            "kind": "posting",
            "places": [VILLAGE_A1],
            "start": "2026-01-05",
            "end": "2026-07-04",
            "slots": [],
        },
        {
            "id": "A3",
            "doctor": "D3",
            "kind": "patrol",
            "places": [VILLAGE_B1],
            "start": "2026-01-05",
            "end": None,
            "slots": [{"weekday": 3, "slot": "am"}],
        },
        {
            "id": "A9",
            "doctor": "D9",
            "kind": "posting",
            "places": [OTHER_VILLAGE],
            "start": "2026-01-05",
            "end": None,
            "slots": [],
        },
    ]
    return {
        "places": places,
        "doctors": doctors,
        "assignments": assignments,
        "visits": [],
        "leave": [],
        "trainings": [],
    }


USERS = [
    # username, role, doctor, unit
    ("d1", "doctor", "D1", None),
    ("d2", "doctor", "D2", None),
    ("d3", "doctor", "D3", None),
    ("d9", "doctor", "D9", None),
    ("rev_a", "township_reviewer", None, TOWNSHIP_A),
    ("rev_b", "township_reviewer", None, TOWNSHIP_B),
    ("admin", "county_admin", None, COUNTY),
    ("admin_other", "county_admin", None, OTHER_COUNTY),
]


def visit_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "doctor": "D1",
        "assignment": "A1",
        "place": VILLAGE_A1,
        "kind": "patrol",
        "check_in": "2026-03-10T08:00:00+08:00",
        "check_out": "2026-03-10T12:00:00+08:00",
        "patients": 9,
        "lat": 23.11,
        "lon": 108.31,
        "device_id": "tab-1",
        "form_version": 1,
        "recorded_at": "2026-03-10T12:05:00+08:00",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP  # visit_data(lat=DROP) leaves the field out


def posting_day(day: int) -> dict[str, Any]:
    """A morning of D2's posting at VILLAGE_A1 on 2026-01-`day` (2026-W02 from the 5th)."""
    return visit_data(
        doctor="D2",
        assignment="A2",
        place=VILLAGE_A1,
        kind="posting",
        check_in=f"2026-01-{day:02d}T08:00:00+08:00",
        check_out=f"2026-01-{day:02d}T12:30:00+08:00",
        recorded_at=f"2026-01-{day:02d}T12:40:00+08:00",
    )


def new_id() -> str:
    return uuid.uuid4().hex


def make_change(
    data: dict[str, Any] | None = None,
    *,
    collection: str = "visits",
    record_id: str | None = None,
    op: str = "upsert",
    base_version: int = 0,
    change_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    change: dict[str, Any] = {
        "collection": collection,
        "id": record_id or new_id(),
        "op": op,
        "change_id": change_id or new_id(),
        "base_version": base_version,
    }
    if op == "upsert":
        change["data"] = data if data is not None else visit_data()
    change.update(extra)
    return change
