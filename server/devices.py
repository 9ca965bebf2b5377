"""The devices users sync from (issue 15): the registry of each one's first and last push
and pull, client version and records rejected and not yet sent again; revoking a device
(its tokens stop at once, its syncs are refused with `device_revoked`, what it sent stays);
and the sync health of a reviewer's or a county's doctors. Revoking is an audit entry.

Domain code, no Flask: server/api/auth.py and server/api/sync.py call `refuse_revoked` and
`record_sync`; server/api/admin.py, server/web/admin.py and `zhuxun devices` the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER, Actor
from server.errors import Forbidden, NotFound
from server.models import Device, Doctor, OrgUnit, SyncRecord
from server.records.sql_store import RecordScope
from server.review.workflow import Subject, audit
from sync.protocol import CONFLICTS, ErrorCode, Status

# A pull is recorded at most this often per device: a pull is otherwise read-only, and a
# write on every pull would put every device in the queue for SQLite's one writer.
PULL_RECORD_EVERY = timedelta(minutes=1)
DEFAULT_SILENT_DAYS = 3


class DeviceRevoked(Forbidden):
    """An administrator revoked this device: its tokens and syncs are refused."""

    code = ErrorCode.DEVICE_REVOKED


def refuse_revoked(session: Session, device_id: object) -> None:
    """Raise `DeviceRevoked` when `device_id` names a revoked device."""
    if isinstance(device_id, str) and is_revoked(session, device_id):
        raise DeviceRevoked(
            f"the device {device_id} has been revoked by an administrator; its tokens and "
            "syncs are refused. Ask the county for a new installation."
        )


def _who(actor: Actor | None, by: str | None = None) -> str:
    return by or (actor.username if actor else "cli")


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


# Statements every sync runs, built once (building one costs more than running it: issue 14).
_REVOKED_AT = select(Device.revoked_at).where(Device.id == bindparam("device"))
_LAST_SEEN = select(Device.username, Device.last_pull_at, Device.client_version).where(
    Device.id == bindparam("device")
)
_FIRSTS = select(Device.first_push_at, Device.first_pull_at, Device.rejected).where(
    Device.id == bindparam("device")
)


def is_revoked(session: Session, device_id: str | None) -> bool:
    if not device_id:
        return False
    revoked = session.connection().execute(_REVOKED_AT, {"device": device_id}).scalar()
    return revoked is not None


def devices(
    session: Session, actor: Actor, *, username: str | None = None, doctor: str | None = None
) -> list[dict[str, Any]]:
    """The devices in the actor's scope (a doctor: their own), newest sync first."""
    query = select(Device).where(actor.owns(Device))
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
    client version, the records it has had rejected), in a transaction of its own that the
    caller commits: call it after the sync's own work is committed, since it first ends
    whatever transaction the session holds."""
    now = now or datetime.now(UTC)
    # Plain statements, no ORM object: this runs after every push and pull (issue 14).
    seen = session.connection().execute(_LAST_SEEN, {"device": device_id}).first()
    if (
        seen is not None
        and kind == "pull"
        and seen.username == actor.username
        and seen.last_pull_at is not None
        and now - _aware(seen.last_pull_at) < PULL_RECORD_EVERY
        and (client_version is None or client_version == seen.client_version)
    ):
        return
    # End the reads (the request's too): the transaction that writes starts with a write,
    # so SQLite takes its write lock at once, waiting its busy timeout, rather than failing
    # to upgrade a read that another commit has made stale. The insert cannot collide with
    # the same device's other request (a retried push) either.
    session.rollback()
    connection = session.connection()
    connection.execute(
        _insert_if_missing(connection.dialect.name),
        {"device": device_id, "username": actor.username, "rejected": {}},
    )
    stored = connection.execute(_FIRSTS, {"device": device_id}).one()
    values: dict[str, Any] = {
        "username": actor.username,
        "doctor_id": actor.doctor_id,
        "township_code": actor.township_code,
        "county_code": actor.county_code,
    }
    if client_version:
        values["client_version"] = client_version[:100]
    if kind == "push":
        values["first_push_at"] = stored.first_push_at or now
        values["last_push_at"] = now
        rejected = dict(stored.rejected or {})
        for result in results or []:
            key = f"{result.get('collection')}/{result.get('id')}"
            if result.get("status") == Status.REJECTED:
                rejected[key] = result.get("code")
            else:
                rejected.pop(key, None)
        if rejected != (stored.rejected or {}):
            values["rejected"] = rejected
    else:
        values["first_pull_at"] = stored.first_pull_at or now
        values["last_pull_at"] = now
    connection.execute(update(Device).where(Device.id == device_id).values(values))
    # An ORM copy loaded earlier in this session (a page's) must not serve stale values.
    cached = session.identity_map.get(session.identity_key(Device, device_id))  # type: ignore[arg-type]
    if cached is not None:
        session.expire(cached)


@cache
def _insert_if_missing(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING of a device row, built once a dialect (it runs after
    every push: issue 14)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return (
        insert(Device)
        .values(
            id=bindparam("device"), username=bindparam("username"), rejected=bindparam("rejected")
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=[Device.id])
    )


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


def all_devices(session: Session, *, username: str | None = None) -> list[dict[str, Any]]:
    """Every device (of `username`), by id (the command line, which has no scope)."""
    query = select(Device).order_by(Device.id)
    if username:
        query = query.where(Device.username == username)
    return [device_json(d) for d in session.scalars(query)]
