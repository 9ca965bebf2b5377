"""User accounts: the checks a new user must pass, and finding a user by name. Domain code
(no Flask, no werkzeug): the caller passes the session and the password hasher
(`server.database.hash_password`, werkzeug's KDF with the app's method)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.actor import DOCTOR, ROLES, TOWNSHIP_REVIEWER
from server.errors import DomainError
from server.models import Doctor, OrgUnit, RevokedToken, User

# scrypt (werkzeug's default KDF), with its cost made explicit: memory-hard and strong.
PASSWORD_METHOD = "scrypt:32768:8:1"  # noqa: S105 - a KDF name, not a password


class UserError(DomainError, ValueError):
    """A user that cannot be created as asked; the message says why."""


def user_named(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    hash_password: Callable[[str], str],
) -> User:
    """Add and commit a user; `UserError` says why one cannot be made as asked."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < 8:
        raise UserError("the password must be at least 8 characters long")
    if user_named(session, username) is not None:
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
        password_hash=hash_password(password),
        role=role,
        doctor_id=doctor_id if role == DOCTOR else None,
        unit_code=unit_code if role != DOCTOR else None,
    )
    session.add(user)
    session.commit()
    return user


def revoke_token(session: Session, jti: str, expires: int | None) -> None:
    """Remember a signed-out token (by its id) until it expires; the caller commits."""
    if session.get(RevokedToken, jti) is None:
        expires_at = datetime.fromtimestamp(expires, UTC) if expires else None
        session.add(RevokedToken(jti=jti, expires_at=expires_at))


def token_revoked(session: Session, jti: str) -> bool:
    return session.get(RevokedToken, jti) is not None
