"""User accounts: creating a user and hashing its password. Domain code (no Flask): the
caller passes the session and, where it differs from production, the password method."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from server.actor import DOCTOR, ROLES, TOWNSHIP_REVIEWER
from server.errors import DomainError
from server.models import Doctor, OrgUnit, User

# scrypt (werkzeug's default KDF), with its cost made explicit: memory-hard and strong.
PASSWORD_METHOD = "scrypt:32768:8:1"  # noqa: S105 - a KDF name, not a password


class UserError(DomainError, ValueError):
    """A user that cannot be created as asked; the message says why."""


def hash_password(password: str, method: str | None = None) -> str:
    # Tests lower the cost (ZHUXUN_PASSWORD_METHOD) to stay fast; production keeps it.
    return generate_password_hash(password, method=method or PASSWORD_METHOD)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    password_method: str | None = None,
) -> User:
    """Add and commit a user; `UserError` says why one cannot be made as asked."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < 8:
        raise UserError("the password must be at least 8 characters long")
    if session.scalar(select(User).where(User.username == username)):
        raise UserError(f"a user named {username!r} exists already")
    if role == DOCTOR:
        doctor = session.get(Doctor, doctor_id) if doctor_id else None
        if doctor is None:
            raise UserError(
                f"a doctor user needs --doctor with a known doctor id, not {doctor_id!r}"
            )
    else:
        unit = session.get(OrgUnit, unit_code) if unit_code else None
        wanted = "township" if role == TOWNSHIP_REVIEWER else "county"
        if unit is None or unit.level != wanted:
            raise UserError(f"a {role} needs --unit with a known {wanted} code, not {unit_code!r}")
    user = User(
        username=username,
        password_hash=hash_password(password, password_method),
        role=role,
        doctor_id=doctor_id if role == DOCTOR else None,
        unit_code=unit_code if role != DOCTOR else None,
    )
    session.add(user)
    session.commit()
    return user
