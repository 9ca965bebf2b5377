"""Users and devices (issue 15): accounts a county admin (or a township reviewer, for the
doctors of their township) creates, deactivates, reactivates, re-roles and gives one-time
passwords; the registry of the devices each user syncs from, and revoking one; the sync
health of a reviewer's or a county's doctors. Every change is an audit entry written in
the same transaction (server/review.py's audit log).

No Flask here: server/accounts_api.py, the pages and `zhuxun users`/`zhuxun devices` call
these and translate `AccountError`s.

Scope: a county admin manages every account of their county (a doctor of the county, a
reviewer of one of its townships, an admin of the county); a township reviewer manages
the doctor accounts of their township and nothing else. An account outside the caller's
scope is `NotFound`, the same as a missing one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from server.auth import COUNTY_ADMIN, DOCTOR, PASSWORD_METHOD, ROLES, TOWNSHIP_REVIEWER, Actor
from server.models import Device, Doctor, OrgUnit, SyncRecord, User
from server.review import Subject, audit
from server.store import RecordScope
from sync.protocol import CONFLICTS, Status
from sync.records import valid_id

MIN_PASSWORD = 8
# One-time passwords: no 0/o, 1/l/i, so one read out over the phone is typed right.
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ONE_TIME_LENGTH = 12
# A pull is recorded at most this often per device: a pull is otherwise read-only, and a
# write on every pull would put every device in the queue for SQLite's one writer.
PULL_RECORD_EVERY = timedelta(minutes=1)
DEFAULT_SILENT_DAYS = 3


class AccountError(Exception):
    """An account or device operation that cannot be done; the message says why."""

    message_zh = "操作无法完成"


class NotFound(AccountError):
    """No such account or device, or one outside the caller's scope (the same answer)."""

    message_zh = "未找到"


class InvalidInput(AccountError):
    """Input that is not valid; `errors` maps each field to what is wrong."""

    message_zh = "数据校验未通过"

    def __init__(self, message: str, errors: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.errors = errors


class NotAllowed(AccountError):
    """The caller may not do this (a reviewer making an admin, an admin deactivating
    themselves)."""

    message_zh = "无权执行此操作"


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


def _hash(password: str, method: str | None) -> str:
    return generate_password_hash(password, method=method or PASSWORD_METHOD)


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
    password_method: str | None = None,
) -> str:
    """Add an account with a one-time password, which it returns; the user must change
    it at the first sign-in. Audited; not committed."""
    _check_role(role)
    _check_username(session, username)
    where = _placed(session, role, doctor_id, unit_code)
    if not _may_manage(actor, role, where):
        raise NotAllowed(f"you may not create a {role} account there")
    password = one_time_password()
    user = User(
        username=username,
        password_hash=_hash(password, password_method),
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
        raise NotAllowed(f"you may not make {username!r} a {role} there")
    if actor is not None and actor.username == username and role != user.role:
        raise NotAllowed("you may not change your own role")
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
        raise NotAllowed("you may not deactivate your own account")
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


def create_user(
    session: Session,
    actor: Actor | None,
    username: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
    password_method: str | None = None,
    by: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new account and its one-time password. Commits."""
    password = create_account(
        session, _who(actor, by), username, role, doctor_id=doctor_id, unit_code=unit_code,
        actor=actor, password_method=password_method,
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
    password_method: str | None = None,
    by: str | None = None,
) -> str:
    """A new one-time password, which it returns: the old one stops working at once (and
    every page session with it), and the user must change the new one at the next
    sign-in. Commits."""
    user, where = _account(session, actor, username)
    password = one_time_password()
    user.password_hash = _hash(password, password_method)
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
    password_method: str | None = None,
) -> User:
    """The user sets their own password (after a one-time one, or any time). Commits."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"no user {username!r}")
    errors: dict[str, list[str]] = {}
    if not check_password_hash(user.password_hash, old):
        errors["old_password"] = ["is not your current password"]
    if not isinstance(new, str) or len(new) < MIN_PASSWORD:
        errors["new_password"] = [f"must be at least {MIN_PASSWORD} characters long"]
    elif new == old:
        errors["new_password"] = ["must differ from the current password"]
    if errors:
        raise InvalidInput("the password was not changed", errors)
    user.password_hash = _hash(new, password_method)
    user.must_change_password = False
    user.password_changed_at = datetime.now(UTC)
    audit(session, username, "user.password_changed",
          Subject("user", username, placed_of(session, user).scope()),
          reason=None, before=None, after=None)  # fmt: skip
    session.commit()
    return user


def accounts(session: Session, actor: Actor) -> list[dict[str, Any]]:
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


def account(session: Session, actor: Actor | None, username: str) -> dict[str, Any]:
    user, _where = _account(session, actor, username)
    return account_json(session, user)


def audit_import(
    session: Session, who: str, counts: dict[str, dict[str, int]], actor: Actor | None
) -> None:
    """One audit entry for a spreadsheet import, with what it created and changed."""
    scope = RecordScope(None, None, actor.county_code if actor else None)
    audit(session, who, "import.applied", Subject("import", datetime.now(UTC).isoformat(), scope),
          reason=None, before=None, after=counts)  # fmt: skip


# --- devices -----------------------------------------------------------------------------


def device_json(device: Device, *, now: datetime | None = None) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return _aware(moment).isoformat() if moment else None

    last = last_sync(device)
    return {
        "id": device.id,
        "user": device.username,
        "doctor": device.doctor_id,
        "client_version": device.client_version,
        "first_push_at": iso(device.first_push_at),
        "last_push_at": iso(device.last_push_at),
        "first_pull_at": iso(device.first_pull_at),
        "last_pull_at": iso(device.last_pull_at),
        "last_sync_at": iso(last),
        "rejected_pending": len(device.rejected or {}),
        "revoked": device.revoked_at is not None,
        "revoked_at": iso(device.revoked_at),
        "revoked_by": device.revoked_by,
        "revoke_reason": device.revoke_reason,
    }


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes of what was stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_sync(device: Device) -> datetime | None:
    moments = [_aware(m) for m in (device.last_push_at, device.last_pull_at) if m]
    return max(moments) if moments else None


def is_revoked(session: Session, device_id: str | None) -> bool:
    if not device_id:
        return False
    revoked = session.scalar(select(Device.revoked_at).where(Device.id == device_id))
    return revoked is not None


def _device_scope(actor: Actor) -> Any:
    return actor.owns(Device)


def devices(
    session: Session, actor: Actor, *, username: str | None = None, doctor: str | None = None
) -> list[dict[str, Any]]:
    """The devices in the actor's scope (a doctor: their own), newest sync first."""
    query = select(Device).where(_device_scope(actor))
    if username:
        query = query.where(Device.username == username)
    if doctor:
        query = query.where(Device.doctor_id == doctor)
    rows = sorted(session.scalars(query), key=lambda d: (last_sync(d) is None, d.id))
    rows.sort(key=lambda d: last_sync(d) or datetime.min.replace(tzinfo=UTC), reverse=True)
    return [device_json(d) for d in rows]


def revoke_device(
    session: Session,
    actor: Actor | None,
    device_id: str,
    *,
    reason: str | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Revoke a device: every token it signed in with stops working at once, and its next
    push or pull is refused with `device_revoked`; what it sent already stays. Revoking a
    revoked device changes nothing. Commits."""
    device = session.get(Device, device_id)
    if device is None or (actor is not None and not actor.may_see(
        device.doctor_id, device.township_code, device.county_code
    )) or (actor is not None and actor.role not in (TOWNSHIP_REVIEWER, COUNTY_ADMIN)):  # fmt: skip
        raise NotFound(f"no device {device_id!r}")
    if device.revoked_at is None:
        device.revoked_at = datetime.now(UTC)
        device.revoked_by = _who(actor, by)
        device.revoke_reason = reason
        audit(session, _who(actor, by), "device.revoked",
              Subject("device", device_id, RecordScope(device.doctor_id, device.township_code,
                                                       device.county_code)),
              reason=reason, before={"revoked": False}, after={"revoked": True})  # fmt: skip
    session.commit()
    return device_json(device)


def record_sync(
    session: Session,
    actor: Actor,
    device_id: str,
    kind: str,
    *,
    client_version: str | None = None,
    results: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> None:
    """Note a successful push or pull of a device (the registry's last-seen times, its
    client version, the records it has had rejected). Flushes, does not commit: a push
    records itself in its own transaction, a pull in a short one of its own."""
    now = now or datetime.now(UTC)
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, username=actor.username, rejected={})
        session.add(device)
    elif (
        kind == "pull"
        and device.username == actor.username
        and device.last_pull_at is not None
        and now - _aware(device.last_pull_at) < PULL_RECORD_EVERY
        and (client_version is None or client_version == device.client_version)
    ):
        return
    device.username = actor.username
    device.doctor_id = actor.doctor_id
    device.township_code = actor.township_code
    device.county_code = actor.county_code
    if client_version:
        device.client_version = client_version[:100]
    if kind == "push":
        device.first_push_at = device.first_push_at or now
        device.last_push_at = now
        rejected = dict(device.rejected or {})
        for result in results or []:
            key = f"{result.get('collection')}/{result.get('id')}"
            if result.get("status") == Status.REJECTED:
                rejected[key] = result.get("code")
            else:
                rejected.pop(key, None)
        device.rejected = rejected
    else:
        device.first_pull_at = device.first_pull_at or now
        device.last_pull_at = now
    session.flush()


# --- sync health -------------------------------------------------------------------------


def sync_health(
    session: Session,
    actor: Actor,
    *,
    silent_days: int = DEFAULT_SILENT_DAYS,
    now: datetime | None = None,
    township: str | None = None,
) -> dict[str, Any]:
    """Each doctor in the actor's scope with their devices and last successful sync; the
    doctors silent for more than `silent_days` days (or never synced), so a missing week
    reads as "not synced" before it is judged "not on duty"; the devices with rejected
    records waiting; open conflicts per doctor."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=silent_days)
    query = select(Doctor).where(actor.owns(Doctor, Doctor.id)).order_by(Doctor.id)
    if township:
        query = query.where(Doctor.township_code == township)
    doctors = list(session.scalars(query))
    ids = [d.id for d in doctors]
    by_doctor: dict[str, list[Device]] = {}
    if ids:
        for device in session.scalars(select(Device).where(Device.doctor_id.in_(ids))):
            by_doctor.setdefault(device.doctor_id or "", []).append(device)
    conflicts: dict[str, int] = {}
    if ids:
        rows = session.execute(
            select(SyncRecord.doctor_id, SyncRecord.data).where(
                SyncRecord.collection == CONFLICTS,
                SyncRecord.doctor_id.in_(ids),
                SyncRecord.deleted.is_(False),
            )
        )
        for doctor_id, data in rows:
            if (data or {}).get("status") == "open":
                conflicts[doctor_id] = conflicts.get(doctor_id, 0) + 1
    townships = {d.township_code for d in doctors if d.township_code}
    names: dict[str, str] = {
        code: name
        for code, name in session.execute(
            select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(townships))
        )
    }
    items = []
    for doctor in doctors:
        own = by_doctor.get(doctor.id, [])
        live = [d for d in own if d.revoked_at is None]
        moments = [m for m in (last_sync(d) for d in live) if m]
        last = max(moments) if moments else None
        items.append(
            {
                "doctor": doctor.id,
                "name": doctor.name,
                "township": doctor.township_code,
                "township_name": names.get(doctor.township_code or ""),
                "last_sync_at": last.isoformat() if last else None,
                "days_silent": (now - last).days if last else None,
                "silent": last is None or last < cutoff,
                "devices": [device_json(d) for d in sorted(own, key=lambda d: d.id)],
                "rejected_pending": sum(len(d.rejected or {}) for d in own),
                "open_conflicts": conflicts.get(doctor.id, 0),
            }
        )
    return {
        "as_of": now.isoformat(),
        "silent_days": silent_days,
        "doctors": items,
        "silent": [i["doctor"] for i in items if i["silent"]],
        "devices_with_rejections": [
            {**d, "doctor": i["doctor"]}
            for i in items
            for d in i["devices"]
            if d["rejected_pending"]
        ],
        "open_conflicts": sum(conflicts.values()),
    }


def count_devices(session: Session) -> dict[str, int]:
    """Devices by state, for /metrics."""
    total = session.scalar(select(func.count()).select_from(Device)) or 0
    revoked = session.scalar(select(func.count()).where(Device.revoked_at.is_not(None))) or 0
    return {"active": total - revoked, "revoked": revoked}
