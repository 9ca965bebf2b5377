"""User accounts: the checks a new user must pass, and finding a user by name. Domain code
(no Flask, no werkzeug): the caller passes the session and the password hasher
(`server.database.hash_password`, werkzeug's KDF with the app's method)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from server.actor import COUNTY_ADMIN, DOCTOR, ROLES, TOWNSHIP_REVIEWER, Actor
from server.errors import DomainError, Forbidden, InvalidInput, NotFound
from server.models import AuditEntry, Doctor, OrgUnit, RevokedToken, User
from server.records.sql_store import RecordScope
from server.review.workflow import Subject, audit, audit_json
from sync.protocol import ErrorCode
from sync.records import valid_id

# scrypt (werkzeug's default KDF), with its cost made explicit: memory-hard and strong.
PASSWORD_METHOD = "scrypt:32768:8:1"  # noqa: S105 - a KDF name, not a password


class UserError(DomainError, ValueError):
    """A user that cannot be created as asked; the message says why."""


# Statements every request runs, built once: building one costs ~0.35 ms a call, more than
# running it (issue 14's push profile).
_USER_NAMED = select(User).where(User.username == bindparam("username"))


def user_named(session: Session, username: str) -> User | None:
    return session.scalar(_USER_NAMED, {"username": username})


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


# --- running a county (issue 15): accounts with one-time passwords ------------------------
#
# A county admin manages every account of their county (a doctor of the county, a reviewer
# of one of its townships, an admin of the county); a township reviewer the doctor accounts
# of their township and nothing else. An account outside the caller's scope is `NotFound`,
# the same as a missing one. Every change is an audit entry in the same transaction
# (server/review/workflow.py's audit log). Callers: server/api/admin.py, server/web/admin.py,
# `zhuxun users` (server/accounts_cli.py), the spreadsheet import (server/county_import.py).

MIN_PASSWORD = 8
# One-time passwords: no 0/o, 1/l/i, so one read out over the phone is typed right.
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ONE_TIME_LENGTH = 12


class PasswordChangeRequired(Forbidden):
    """The user signed in with a one-time password and must set their own first."""

    code = ErrorCode.PASSWORD_CHANGE_REQUIRED


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an account belongs: its scope for the audit log and for who manages it."""

    doctor_id: str | None
    township_code: str | None
    county_code: str | None

    def scope(self) -> RecordScope:
        return RecordScope(self.doctor_id, self.township_code, self.county_code)


def one_time_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(ONE_TIME_LENGTH))


def _placed(session: Session, role: str, doctor_id: str | None, unit_code: str | None) -> Placed:
    if role == DOCTOR:
        doctor = session.get(Doctor, doctor_id) if doctor_id else None
        if doctor is None:
            raise InvalidInput(
                f"a doctor's account needs a known doctor id, not {doctor_id!r}",
                {"doctor": ["must be the id of a doctor"]},
            )
        return Placed(doctor.id, doctor.township_code, doctor.county_code)
    wanted = "township" if role == TOWNSHIP_REVIEWER else "county"
    unit = session.get(OrgUnit, unit_code) if unit_code else None
    if unit is None or unit.level != wanted:
        raise InvalidInput(
            f"a {role} needs the code of a {wanted}, not {unit_code!r}",
            {"unit": [f"must be the code of a {wanted}"]},
        )
    return Placed(None, unit.code if wanted == "township" else None, unit.county_code)


def placed_of(session: Session, user: User) -> Placed:
    try:
        return _placed(session, user.role, user.doctor_id, user.unit_code)
    except InvalidInput:
        return Placed(user.doctor_id, None, None)


def _may_manage(actor: Actor | None, role: str, where: Placed) -> bool:
    if actor is None:  # the command line, run by whoever runs the server
        return True
    if actor.role == COUNTY_ADMIN:
        return where.county_code == actor.county_code
    if actor.role == TOWNSHIP_REVIEWER:
        return role == DOCTOR and where.township_code == actor.township_code
    return False


def _who(actor: Actor | None, by: str | None = None) -> str:
    return by or (actor.username if actor else "cli")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}, not {role!r}",
            {"role": [f"must be one of {', '.join(ROLES)}"]},
        )


def _check_username(session: Session, username: str) -> None:
    if not isinstance(username, str) or not valid_id(username):
        raise InvalidInput(
            "the username must be 1-64 letters, digits, '_', '.', ':' or '-'",
            {"username": ["must be 1-64 letters, digits, '_', '.', ':' or '-'"]},
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"a user named {username!r} exists already", {"username": ["is taken"]})


def account_json(session: Session, user: User) -> dict[str, Any]:
    where = placed_of(session, user)
    return {
        "username": user.username,
        "role": user.role,
        "doctor": user.doctor_id,
        "unit": user.unit_code,
        "township": where.township_code,
        "county": where.county_code,
        "active": user.active,
        "must_change_password": bool(user.must_change_password),
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "password_changed_at": (
            user.password_changed_at.isoformat() if user.password_changed_at else None
        ),
    }


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "doctor": user.doctor_id,
        "unit": user.unit_code,
        "active": user.active,
    }


# --- accounts ----------------------------------------------------------------------------


def create_account(
    session: Session,
    who: str,
    username: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    active: bool = True,
    actor: Actor | None = None,
    hash_password: Callable[[str], str],
) -> str:
    """Add an account with a one-time password, which it returns; the user must change
    it at the first sign-in. Audited; not committed."""
    _check_role(role)
    _check_username(session, username)
    where = _placed(session, role, doctor_id, unit_code)
    if not _may_manage(actor, role, where):
        raise Forbidden(f"you may not create a {role} account there")
    password = one_time_password()
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        doctor_id=doctor_id if role == DOCTOR else None,
        unit_code=unit_code if role != DOCTOR else None,
        active=active,
        must_change_password=True,
    )
    session.add(user)
    audit(
        session,
        who,
        "user.created",
        Subject("user", username, where.scope()),
        reason=None,
        before=None,
        after=_snapshot(user),
    )
    return password


def _account(session: Session, actor: Actor | None, username: str) -> tuple[User, Placed]:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    where = placed_of(session, user)
    if not _may_manage(actor, user.role, where):
        raise NotFound(f"no user {username!r}")
    return user, where


def update_account(
    session: Session,
    who: str,
    username: str,
    *,
    role: str,
    doctor_id: str | None,
    unit_code: str | None,
    active: bool | None = None,
    actor: Actor | None = None,
) -> User:
    """Change an account's role and unit (and its active state); audited, not committed.
    Changing nothing writes nothing."""
    _check_role(role)
    user, _old = _account(session, actor, username)
    where = _placed(session, role, doctor_id, unit_code)
    if not _may_manage(actor, role, where):
        raise Forbidden(f"you may not make {username!r} a {role} there")
    if actor is not None and actor.username == username and role != user.role:
        raise Forbidden("you may not change your own role")
    before = _snapshot(user)
    user.role = role
    user.doctor_id = doctor_id if role == DOCTOR else None
    user.unit_code = unit_code if role != DOCTOR else None
    if active is not None:
        user.active = active
    after = _snapshot(user)
    if after != before:
        audit(session, who, "user.changed", Subject("user", username, where.scope()),
              reason=None, before=before, after=after)  # fmt: skip
    return user


def set_active(
    session: Session, actor: Actor | None, username: str, active: bool, *, by: str | None = None
) -> dict[str, Any]:
    """Deactivate (signs every session and token of the account out at once: each request
    checks the account is active) or reactivate an account. Commits."""
    user, where = _account(session, actor, username)
    if actor is not None and actor.username == username and not active:
        raise Forbidden("you may not deactivate your own account")
    if user.active != active:
        before = _snapshot(user)
        user.active = active
        audit(session, _who(actor, by), "user.activated" if active else "user.deactivated",
              Subject("user", username, where.scope()), reason=None, before=before,
              after=_snapshot(user))  # fmt: skip
    session.commit()
    return account_json(session, user)


def change_role(
    session: Session,
    actor: Actor | None,
    username: str,
    *,
    role: str,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    user = update_account(
        session, _who(actor, by), username, role=role, doctor_id=doctor_id,
        unit_code=unit_code, actor=actor,
    )  # fmt: skip
    session.commit()
    return account_json(session, user)


def open_account(
    session: Session,
    actor: Actor | None,
    username: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    hash_password: Callable[[str], str],
    by: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new account and its one-time password. Commits."""
    password = create_account(
        session, _who(actor, by), username, role, doctor_id=doctor_id, unit_code=unit_code,
        actor=actor, hash_password=hash_password,
    )  # fmt: skip
    session.commit()
    user = session.scalar(select(User).where(User.username == username))
    assert user is not None
    return account_json(session, user), password


def reset_password(
    session: Session,
    actor: Actor | None,
    username: str,
    *,
    hash_password: Callable[[str], str],
    by: str | None = None,
) -> str:
    """A new one-time password, which it returns: the old one stops working at once (and
    every page session with it), and the user must change the new one at the next
    sign-in. Commits."""
    user, where = _account(session, actor, username)
    password = one_time_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    audit(session, _who(actor, by), "user.password_reset", Subject("user", username, where.scope()),
          reason=None, before=None, after={"must_change_password": True})  # fmt: skip
    session.commit()
    return password


def change_own_password(
    session: Session,
    username: str,
    old: str,
    new: str,
    *,
    hash_password: Callable[[str], str],
    check_password: Callable[[str, str], bool],
) -> User:
    """The user sets their own password (after a one-time one, or any time). Commits.
    `check_password(stored_hash, given)` is the KDF's check (werkzeug's, in the app)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}")
    errors: dict[str, list[str]] = {}
    if not check_password(user.password_hash, old):
        errors["old_password"] = ["is not your current password"]
    if not isinstance(new, str) or len(new) < MIN_PASSWORD:
        errors["new_password"] = [f"must be at least {MIN_PASSWORD} characters long"]
    elif new == old:
        errors["new_password"] = ["must differ from the current password"]
    if errors:
        raise InvalidInput("the password was not changed", errors)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_changed_at = datetime.now(UTC)
    audit(session, username, "user.password_changed",
          Subject("user", username, placed_of(session, user).scope()),
          reason=None, before=None, after=None)  # fmt: skip
    session.commit()
    return user


def accounts_in_scope(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The accounts the actor manages, by username."""
    query = select(User).order_by(User.username)
    if actor.role == TOWNSHIP_REVIEWER:
        query = query.join(Doctor, Doctor.id == User.doctor_id).where(
            User.role == DOCTOR, Doctor.township_code == actor.township_code
        )
    elif actor.role == COUNTY_ADMIN:
        units = select(OrgUnit.code).where(OrgUnit.county_code == actor.county_code)
        doctors = select(Doctor.id).where(Doctor.county_code == actor.county_code)
        query = query.where(or_(User.unit_code.in_(units), User.doctor_id.in_(doctors)))
    else:
        return []
    return [account_json(session, u) for u in session.scalars(query)]


def account_of(session: Session, actor: Actor | None, username: str) -> dict[str, Any]:
    user, _where = _account(session, actor, username)
    return account_json(session, user)


def audit_import(
    session: Session, who: str, counts: dict[str, dict[str, int]], actor: Actor | None
) -> None:
    """One audit entry for a spreadsheet import, with what it created and changed."""
    scope = RecordScope(None, None, actor.county_code if actor else None)
    audit(session, who, "import.applied", Subject("import", datetime.now(UTC).isoformat(), scope),
          reason=None, before=None, after=counts)  # fmt: skip


def account_trail(
    session: Session, actor: Actor, username: str, device_ids: list[str]
) -> list[dict[str, Any]]:
    """The audit entries of an account and its devices that the actor may see, oldest
    first; times with their zone (SQLite hands stored UTC back without it)."""
    subjects = {("user", username), *(("device", d) for d in device_ids)}
    rows = session.scalars(
        select(AuditEntry)
        .where(actor.owns(AuditEntry))
        .where(
            AuditEntry.subject_type.in_({s[0] for s in subjects}),
            AuditEntry.subject_id.in_({s[1] for s in subjects}),
        )
        .order_by(AuditEntry.id)
    )
    trail = []
    for row in rows:
        if (row.subject_type, row.subject_id) not in subjects:
            continue
        entry = audit_json(row)
        if row.at is not None and row.at.tzinfo is None:
            entry["at"] = row.at.replace(tzinfo=UTC).isoformat()
        trail.append(entry)
    return trail


def all_accounts(session: Session) -> list[dict[str, Any]]:
    """Every account, by username (the command line, which has no scope)."""
    return [account_json(session, u) for u in session.scalars(select(User).order_by(User.username))]
