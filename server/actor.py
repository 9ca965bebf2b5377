"""Roles, the `Actor` and its scope. Every read and write goes through an `Actor`, whose
scope says which records it may see and touch: a doctor their own records (and the county's
places), a township reviewer their township — the records of its places and of its doctors
—, a county admin their county.

Domain code: no Flask here (tests/test_architecture.py checks it). The HTTP side, which
turns a signed-in request into an `Actor`, is `server/api/auth.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from server.models import Doctor, OrgUnit, SyncRecord, User
from sync.protocol import PLACES

DOCTOR = "doctor"
TOWNSHIP_REVIEWER = "township_reviewer"
COUNTY_ADMIN = "county_admin"
ROLES = (DOCTOR, TOWNSHIP_REVIEWER, COUNTY_ADMIN)


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a request and what it may see."""

    username: str
    role: str
    doctor_id: str | None
    township_code: str | None
    county_code: str | None
    # A township reviewer's doctors: their records are in scope wherever they were made.
    # A visit at a village of another township is seen by both townships' reviewers: the
    # doctor's (attendance) and the place's (coverage) (issue 13).
    township_doctors: frozenset[str] = frozenset()

    @property
    def is_doctor(self) -> bool:
        return self.role == DOCTOR

    def owns(self, model: Any, doctor_column: Any = None) -> ColumnElement[bool]:
        """The rows of `model` (any table with doctor_id, township_code and county_code
        columns; `doctor_column` names another column for the doctor, e.g. Doctor.id) in
        this actor's scope: the SQL form of `may_see`."""
        if self.role == DOCTOR:
            column = model.doctor_id if doctor_column is None else doctor_column
            return column == self.doctor_id  # type: ignore[no-any-return]
        if self.role == TOWNSHIP_REVIEWER:
            township = model.township_code == self.township_code
            if not self.township_doctors:
                return township  # type: ignore[no-any-return]
            column = model.doctor_id if doctor_column is None else doctor_column
            return or_(township, column.in_(sorted(self.township_doctors)))
        return model.county_code == self.county_code  # type: ignore[no-any-return]

    def pull_filter(self) -> ColumnElement[bool]:
        """The sync records this actor receives on pull: their scope, and the county's
        places (reference data every role needs)."""
        if self.role == COUNTY_ADMIN:
            return self.owns(SyncRecord)
        places = and_(SyncRecord.collection == PLACES, SyncRecord.county_code == self.county_code)
        return or_(self.owns(SyncRecord), places)

    def may_see(self, doctor_id: str | None, township: str | None, county: str | None) -> bool:
        if self.role == DOCTOR:
            return doctor_id is not None and doctor_id == self.doctor_id
        if self.role == TOWNSHIP_REVIEWER:
            return (township is not None and township == self.township_code) or (
                doctor_id is not None and doctor_id in self.township_doctors
            )
        return county is not None and county == self.county_code

    def may_touch(self, row: SyncRecord) -> bool:
        return self.may_see(row.doctor_id, row.township_code, row.county_code)


def actor_for(session: Session, user: User) -> Actor:
    """The `Actor` of a user: a doctor's township and county come from the doctor, a
    reviewer's or an admin's from their unit."""
    township = county = None
    doctors: frozenset[str] = frozenset()
    if user.role == DOCTOR and user.doctor_id:
        doctor = session.get(Doctor, user.doctor_id)
        if doctor is not None:
            township, county = doctor.township_code, doctor.county_code
    elif user.unit_code:
        unit = session.get(OrgUnit, user.unit_code)
        if unit is not None:
            county = unit.county_code
            township = unit.code if unit.level == "township" else None
    if user.role == TOWNSHIP_REVIEWER and township is not None:
        doctors = frozenset(
            session.scalars(select(Doctor.id).where(Doctor.township_code == township))
        )
    return Actor(user.username, user.role, user.doctor_id, township, county, doctors)
