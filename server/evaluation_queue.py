"""The durable evaluation queue (issue 14): the doctor-weeks a write left to re-evaluate.

A push (or a reviewer's correction, or a leave decision) records, in its own transaction,
one `evaluation_queue` row a doctor-week it touched: the flags of that week are stale
exactly when the write committed, and nothing is lost if the process or the database goes
away before they are judged again. After the commit, the entries are *settled*:

- by the request that finds work waiting (the push that wrote them, after it answered, and
  any later push): it leases every due entry, so several pushes of one doctor, or of many
  doctors, are judged once together;
- by a pull, which first settles the caller's own entries (and waits for those another
  process holds), so a device that pushes and then pulls gets its fresh flags in the same
  sync;
- by `zhuxun worker`, for a deployment that wants the evaluation out of the requests.

Any number of processes share the queue, as they share the webhook outbox
(server/webhooks.py): an entry is leased with one `UPDATE … RETURNING` (PostgreSQL skips
rows another transaction has locked), for long enough to evaluate it; a crashed settler's
lease runs out and another takes the entry. An entry written again while it was being
judged (a later push of the same doctor-week) has a higher `generation` and is kept for
the next round: the settler removes only the generation it judged, in the transaction that
stores the flags (which holds the counter lock, as every push does), so a change is never
judged on data older than itself.

No Flask here: the caller passes the settings.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import EvaluationEntry
from server.records import bulk
from sync.protocol import LEAVE, TRAININGS, VISITS

log = logging.getLogger(__name__)

# Why an entry was written (the history of the flags it changes says so too).
PUSH, CORRECTION, LEAVE_DECISION = "push", "correction", "leave decision"

_QUEUE = EvaluationEntry.__table__
ONE_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Settings:
    """How entries are judged: the rule set, the evaluation date (None: today in China,
    with today still open), how long a lease lasts, how many entries one round takes, and
    whether requests settle what they find (else only pulls, for the caller, and
    `zhuxun worker`)."""

    ruleset: str
    as_of: date | None = None
    lease: timedelta = timedelta(minutes=2)
    batch: int = 2000
    in_requests: bool = True


def settings_from(config: Mapping[str, Any]) -> Settings:
    """The settings of an app's configuration (ZHUXUN_RULESET, ZHUXUN_RULES_AS_OF,
    ZHUXUN_EVALUATION)."""
    as_of = config.get("ZHUXUN_RULES_AS_OF")
    return Settings(
        ruleset=str(config.get("ZHUXUN_RULESET") or "guangxi"),
        as_of=date.fromisoformat(as_of) if as_of else None,
        in_requests=config.get("ZHUXUN_EVALUATION", "request") == "request",
    )


@dataclass
class Settled:
    """What a round of settling did."""

    entries: int = 0
    groups: int = 0
    flag_changes: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, other: Settled) -> None:
        self.entries += other.entries
        self.groups += other.groups
        self.flag_changes += other.flag_changes
        self.failed += other.failed


# --- writing entries (inside the writer's transaction) ---------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weeks_of(collection: str, data: dict[str, Any] | None) -> list[date]:
    """The Mondays of the ISO weeks a visit, leave or training record's flags depend on:
    the dates it covers (a visit also the day its check-out falls on)."""
    if not data:
        return []
    try:
        if collection == VISITS:
            first = datetime.fromisoformat(data["check_in"]).date()
            last = datetime.fromisoformat(data["check_out"]).date()
        elif collection in (LEAVE, TRAININGS):
            first, last = date.fromisoformat(data["start"]), date.fromisoformat(data["end"])
        else:
            return []
    except (KeyError, TypeError, ValueError):
        return []
    out, week = [], monday(first)
    while week <= last:
        out.append(week)
        week += ONE_WEEK
    return out


@dataclass(frozen=True, slots=True)
class Stale:
    """A doctor-week whose flags a write made stale."""

    doctor_id: str
    week: date
    township_code: str | None = None
    county_code: str | None = None


def stale_weeks(rows: Iterable[Any]) -> list[Stale]:
    """The doctor-weeks written records touch, before and after the write: a visit moved
    to another week leaves its old week to judge again too, and a visit a reviewer gave to
    another doctor leaves its old doctor's week. `rows` have the attributes of
    `server.records.sql_store.WrittenRecord`."""
    found: dict[tuple[str, date], Stale] = {}
    for row in rows:
        if row.collection not in (VISITS, LEAVE, TRAININGS) or not row.doctor_id:
            continue
        for week in weeks_of(row.collection, row.data):
            found[(row.doctor_id, week)] = Stale(
                row.doctor_id, week, row.township_code, row.county_code
            )
        before = row.previous.get("doctor") if isinstance(row.previous, dict) else None
        if not isinstance(before, str) or before == row.doctor_id:
            before, township = row.doctor_id, row.township_code
        else:
            # The old doctor's township is not the record's any more; the county is (places
            # and doctors of a push are checked to be the caller's county).
            township = None
        for week in weeks_of(row.collection, row.previous):
            found.setdefault((before, week), Stale(before, week, township, row.county_code))
    return list(found.values())


@cache
def _upsert(dialect: str) -> Any:
    # Built once a dialect: building it each push showed in the push profile (issue 14).
    """INSERT an entry, or raise the generation of the one already there (coalescing)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_QUEUE)
    return statement.on_conflict_do_update(
        index_elements=[_QUEUE.c.doctor_id, _QUEUE.c.week],
        set_={
            "generation": _QUEUE.c.generation + 1,
            "enqueued_at": statement.excluded.enqueued_at,
            "cause": statement.excluded.cause,
        },
    )


def enqueue(session: Session, stale: Iterable[Stale], *, cause: str) -> int:
    """Add doctor-weeks to the caller's transaction; they count only if it commits."""
    now = datetime.now(UTC)
    rows = [
        {
            "doctor_id": s.doctor_id,
            "week": s.week,
            "township_code": s.township_code,
            "county_code": s.county_code,
            "generation": 1,
            "cause": cause,
            "enqueued_at": now,
            "leased_until": None,
            "lease": None,
        }
        for s in stale
    ]
    if rows:
        bulk.executemany(session, _upsert(session.get_bind().dialect.name), rows)
    return len(rows)


# --- settling -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Leased:
    doctor_id: str
    week: date
    generation: int
    county_code: str | None
    cause: str


def _lease(
    session: Session, settings: Settings, where: ColumnElement[bool] | None, limit: int
) -> tuple[str, list[_Leased]]:
    """Claim up to `limit` due entries (never leased, or their lease ran out) with one
    UPDATE … RETURNING; another settler skips them until the lease ends."""
    now = datetime.now(UTC)
    due = (
        select(_QUEUE.c.doctor_id, _QUEUE.c.week)
        .where(or_(_QUEUE.c.leased_until.is_(None), _QUEUE.c.leased_until < now))
        .order_by(_QUEUE.c.enqueued_at)
        .limit(limit)
    )
    if where is not None:
        due = due.where(where)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    token = uuid.uuid4().hex
    rows = session.execute(
        update(_QUEUE)
        .where(
            tuple_(_QUEUE.c.doctor_id, _QUEUE.c.week).in_(due),
            or_(_QUEUE.c.leased_until.is_(None), _QUEUE.c.leased_until < now),
        )
        .values(leased_until=now + settings.lease, lease=token)
        .returning(
            _QUEUE.c.doctor_id,
            _QUEUE.c.week,
            _QUEUE.c.generation,
            _QUEUE.c.county_code,
            _QUEUE.c.cause,
        )
    ).all()
    session.commit()
    return token, [_Leased(*row) for row in rows]


def _release(session: Session, token: str) -> None:
    """Give leased entries back at once (their evaluation failed): due again now."""
    session.rollback()
    session.execute(
        update(_QUEUE).where(_QUEUE.c.lease == token).values(leased_until=None, lease=None)
    )
    session.commit()


_REMOVE = delete(_QUEUE).where(
    _QUEUE.c.doctor_id == bindparam("d"),
    _QUEUE.c.week == bindparam("w"),
    _QUEUE.c.generation == bindparam("g"),
)


def _groups(leased: list[_Leased]) -> list[tuple[str | None, tuple[date, date], list[_Leased]]]:
    """Leased entries in groups judged together: one county, one run of consecutive weeks;
    the doctors with the same run share one read and one store."""
    weeks_of_doctor: dict[tuple[str | None, str], list[_Leased]] = defaultdict(list)
    for entry in leased:
        weeks_of_doctor[(entry.county_code, entry.doctor_id)].append(entry)
    groups: dict[tuple[str | None, date, date], list[_Leased]] = defaultdict(list)
    for (county, _), entries in weeks_of_doctor.items():
        entries.sort(key=lambda e: e.week)
        run = [entries[0]]
        for entry in entries[1:]:
            if entry.week - run[-1].week > ONE_WEEK:
                groups[(county, run[0].week, run[-1].week)] += run
                run = []
            run.append(entry)
        groups[(county, run[0].week, run[-1].week)] += run
    return [
        (county, (first, last + timedelta(days=6)), entries)
        for (county, first, last), entries in sorted(
            groups.items(), key=lambda item: (item[0][0] or "", item[0][1], item[0][2])
        )
    ]


# Judges `doctors` over `period` (keywords: county, cause, settings, before_commit) and
# stores their flags, running `before_commit(session)` in the storing transaction; returns
# the number of flag changes (server/rules_window.py).
Judge = Callable[..., int]


def settle(
    session: Session,
    settings: Settings,
    judge: Judge,
    *,
    where: ColumnElement[bool] | None = None,
    limit: int | None = None,
) -> Settled:
    """Lease the due entries (those `where` selects), judge them coalesced, remove them."""
    report = Settled()
    if not _any_due(session, where):  # a read: finding nothing writes nothing
        return report
    token, leased = _lease(session, settings, where, limit or settings.batch)
    if not leased:
        return report
    for county, period, entries in _groups(leased):
        doctors = sorted({e.doctor_id for e in entries})
        cause = ", ".join(sorted({e.cause for e in entries}))
        params = [{"d": e.doctor_id, "w": e.week, "g": e.generation} for e in entries]
        weeks = (min(e.week for e in entries), max(e.week for e in entries))

        def remove(
            session: Session,
            params: list[dict[str, Any]] = params,
            doctors: list[str] = doctors,
            weeks: tuple[date, date] = weeks,
        ) -> None:
            session.execute(_REMOVE, params)
            # Entries written again while they were judged stay, due at once for the next
            # round (in this transaction: no commit of its own). The group's doctors and
            # run of weeks select exactly its entries among the lease's (a doctor's runs
            # of weeks are apart, `_groups`), without a (doctor, week) pair a parameter.
            session.execute(
                update(_QUEUE)
                .where(
                    _QUEUE.c.lease == token,
                    _QUEUE.c.doctor_id.in_(doctors),
                    _QUEUE.c.week.between(*weeks),
                )
                .values(leased_until=None, lease=None)
            )

        try:
            report.flag_changes += judge(
                session,
                doctors,
                period,
                county=county,
                cause=cause,
                settings=settings,
                before_commit=remove,
            )
        except Exception:  # noqa: BLE001 - derived data: the entries stay for the next round
            log.exception("evaluating %s over %s failed; kept in the queue", doctors, period)
            report.failed += doctors
            _release(session, token)
            return report
        report.entries += len(entries)
        report.groups += 1
    return report


def settle_own(
    session: Session,
    settings: Settings,
    judge: Judge,
    where: ColumnElement[bool],
    *,
    wait: float = 30.0,
    poll: float = 0.05,
) -> Settled:
    """Settle the entries `where` selects (a caller's own, before a pull), and wait up to
    `wait` seconds for those another process holds: when this returns, the caller's flags
    are judged on every write committed before it began, unless that took longer."""
    report = Settled()
    deadline = time.monotonic() + wait
    while pending(session, where):
        round_ = settle(session, settings, judge, where=where)
        report.add(round_)
        if round_.failed or not pending(session, where) or time.monotonic() >= deadline:
            break  # a failure is logged and left for the next settler, not retried here
        time.sleep(poll)  # held by another settler: wait for it
    session.rollback()
    return report


def _any_due(session: Session, where: ColumnElement[bool] | None) -> bool:
    now = datetime.now(UTC)
    query = select(_QUEUE.c.doctor_id).where(
        or_(_QUEUE.c.leased_until.is_(None), _QUEUE.c.leased_until < now)
    )
    if where is not None:
        query = query.where(where)
    found = session.execute(query.limit(1)).first() is not None
    session.rollback()
    return found


def pending(session: Session, where: ColumnElement[bool] | None = None) -> int:
    """Entries waiting (leased or not)."""
    query = select(func.count()).select_from(_QUEUE)
    if where is not None:
        query = query.where(where)
    count = int(session.execute(query).scalar_one())
    session.rollback()  # a read, ended: the caller's next transaction starts afresh
    return count


def of_doctors(doctor_ids: Iterable[str]) -> ColumnElement[bool]:
    return _QUEUE.c.doctor_id.in_(list(doctor_ids))


def in_scope(
    doctor_id: str | None, township_code: str | None, county_code: str | None
) -> ColumnElement[bool] | None:
    """The entries a caller's pull depends on: a doctor's own, a township's, a county's."""
    if doctor_id:
        return _QUEUE.c.doctor_id == doctor_id
    if township_code:
        return _QUEUE.c.township_code == township_code
    if county_code:
        return _QUEUE.c.county_code == county_code
    return None


def run_worker(
    sessions: Callable[[], Session],
    settings: Settings,
    judge: Judge,
    *,
    stop: threading.Event,
    idle: float = 1.0,
    once: bool = False,
    on_round: Callable[[Settled], None] | None = None,
) -> Settled:
    """`zhuxun worker`: settle due entries until `stop` is set (or, with `once`, until the
    queue has nothing due)."""
    total = Settled()
    while not stop.is_set():
        session = sessions()
        try:
            report = settle(session, settings, judge)
        finally:
            session.close()
        total.add(report)
        if on_round is not None and report.entries:
            on_round(report)
        if not report.entries:
            if once:
                break
            stop.wait(idle)
    return total


__all__ = [
    "CORRECTION",
    "LEAVE_DECISION",
    "PUSH",
    "Settings",
    "Settled",
    "Stale",
    "enqueue",
    "in_scope",
    "of_doctors",
    "pending",
    "run_worker",
    "settle",
    "settle_own",
    "settings_from",
    "stale_weeks",
    "weeks_of",
]
