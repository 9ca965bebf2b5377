"""The durable evaluation queue (issue 14): a push records the doctor-weeks it made stale in
its own transaction; they are judged after the commit, coalesced, by whoever finds them —
a later request, a pull for the caller's own, or `zhuxun worker` — never lost, never judged
on data older than the write."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from tests.builders import make_change, posting_day, visit_data

AS_OF = "2026-01-11"  # the Sunday that ends 2026-W02, the first week of D2's posting
WEEK = date(2026, 1, 5)
POSTING_WEEK_KEY = "posting.days_per_week|assignment|A2|2026-W02"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    # Out of the requests: only a pull (for the caller's own) or the worker settles.
    return {"ZHUXUN_RULES_AS_OF": AS_OF, "ZHUXUN_EVALUATION": "worker"}


def queue(app: Any) -> list[tuple[str, date, int]]:
    from server.extensions import db
    from server.models import EvaluationEntry

    with app.app_context():
        rows = db.session.execute(
            select(EvaluationEntry.doctor_id, EvaluationEntry.week, EvaluationEntry.generation)
        ).all()
        db.session.rollback()
    return sorted((d, w, g) for d, w, g in rows)


def flag_keys(app: Any, doctor: str) -> set[str]:
    from server.extensions import db
    from server.models import FlagRecord

    with app.app_context():
        keys = set(
            db.session.scalars(
                select(FlagRecord.key).where(
                    FlagRecord.doctor_id == doctor, FlagRecord.state == "open"
                )
            )
        )
        db.session.rollback()
    return keys


def settle(app: Any, judge: Any = None, **kwargs: Any) -> Any:
    from server import evaluation_queue
    from server.extensions import db
    from server.flags import judge_entries

    with app.app_context():
        settings = evaluation_queue.settings_from(app.config)
        return evaluation_queue.settle(db.session, settings, judge or judge_entries, **kwargs)


def test_a_push_leaves_its_doctor_weeks_in_the_queue_and_the_worker_judges_them(
    api: Any, app: Any, monkeypatch: Any
) -> None:
    api("d2").push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    assert queue(app) == [("D2", WEEK, 1)]
    assert POSTING_WEEK_KEY not in flag_keys(app, "D2")

    from server.cli import cli

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    connect_args = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args")
    if connect_args:  # the test's PostgreSQL schema, in the URL the CLI reads
        url += "?options=" + quote(connect_args["options"].replace(" ", ""))
    monkeypatch.setenv("ZHUXUN_DATABASE_URL", url)
    monkeypatch.setenv("ZHUXUN_ENV", "development")
    monkeypatch.setenv("ZHUXUN_RULES_AS_OF", AS_OF)
    result = CliRunner().invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 doctor-week" in result.output
    assert queue(app) == []
    assert POSTING_WEEK_KEY in flag_keys(app, "D2")


def test_a_push_then_a_pull_returns_the_pushs_flags(api: Any, app: Any) -> None:
    d2 = api("d2")
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    pulled, _ = d2.pull_all()
    flags = {c["id"]: c["data"] for c in pulled if c["collection"] == "flags"}
    assert flags[POSTING_WEEK_KEY]["measured"] == 4
    assert queue(app) == []


def test_pushes_of_several_doctors_are_judged_once_together(api: Any, app: Any) -> None:
    api("d2").push(make_change(posting_day(5)))
    api("d1").push(
        make_change(
            visit_data(
                check_in="2026-01-06T08:00:00+08:00",
                check_out="2026-01-06T12:00:00+08:00",
                recorded_at="2026-01-06T12:05:00+08:00",
            )
        )
    )
    api("d2").push(make_change(posting_day(6)))  # the same doctor-week again: coalesced
    assert [(d, w) for d, w, _ in queue(app)] == [("D1", WEEK), ("D2", WEEK)]
    calls: list[list[str]] = []

    from server.flags import judge_entries

    def spy(session: Any, doctors: list[str], period: Any, **kwargs: Any) -> int:
        calls.append(doctors)
        return judge_entries(session, doctors, period, **kwargs)

    report = settle(app, spy)
    assert calls == [["D1", "D2"]]
    assert (report.entries, report.groups) == (2, 1)
    assert queue(app) == []


def test_a_doctor_week_written_again_while_it_is_judged_stays_for_the_next_round(
    api: Any, app: Any
) -> None:
    d2 = api("d2")
    d2.push(make_change(posting_day(5)))
    from server.flags import judge_entries

    def meanwhile(session: Any, doctors: list[str], period: Any, **kwargs: Any) -> int:
        d2.push(make_change(posting_day(6)))  # commits while this judgement runs
        return judge_entries(session, doctors, period, **kwargs)

    settle(app, meanwhile)
    assert queue(app) == [("D2", WEEK, 2)]
    settle(app)
    assert queue(app) == []


def test_a_failed_evaluation_keeps_its_entries_due(api: Any, app: Any) -> None:
    api("d2").push(make_change(posting_day(5)))

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the database went away")

    report = settle(app, broken)
    assert report.failed == ["D2"] and report.entries == 0
    assert queue(app) == [("D2", WEEK, 1)]
    assert settle(app).entries == 1  # due again at once, not after the lease
    assert queue(app) == []


def test_a_lease_that_ran_out_is_taken_over(api: Any, app: Any) -> None:
    from server.extensions import db
    from server.models import EvaluationEntry

    api("d2").push(make_change(posting_day(5)))

    def killed(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt  # the settler's process dies while it judges

    with pytest.raises(KeyboardInterrupt):
        settle(app, killed)
    assert settle(app).entries == 0  # still leased to the dead settler
    with app.app_context():
        db.session.rollback()
        db.session.execute(
            update(EvaluationEntry).values(leased_until=datetime.now(UTC) - timedelta(seconds=1))
        )  # its lease runs out
        db.session.commit()
    assert settle(app).entries == 1
    assert queue(app) == []


def test_a_visit_moved_to_another_week_leaves_both_weeks_to_judge(api: Any, app: Any) -> None:
    d2 = api("d2")
    change = make_change(posting_day(5))
    d2.push(change)
    settle(app)
    moved = posting_day(13)
    d2.push(make_change(moved, record_id=change["id"], base_version=1))
    assert [w for _, w, _ in queue(app)] == [WEEK, WEEK + timedelta(days=7)]


def test_a_correction_and_a_leave_decision_go_through_the_queue(api: Any, app: Any) -> None:
    d2 = api("d2")
    change = make_change(posting_day(5))
    d2.push(change)
    settle(app)
    admin = api("admin")
    corrected = admin.put(
        f"/visits/{change['id']}", {"base_version": 1, "data": {**change["data"], "patients": 2}}
    )
    assert corrected.status_code == 200, corrected.text
    assert queue(app) == [("D2", WEEK, 1)]
    settle(app)
    leave = make_change(
        {"doctor": "D2", "start": "2026-01-07", "end": "2026-01-07", "reason": "病"},
        collection="leave",
    )
    d2.push(leave)
    settle(app)
    approved = admin.http.post(
        admin.url(f"/review/leave/{leave['id']}/approve"), json={}, timeout=30
    )
    assert approved.status_code == 200, approved.text
    assert queue(app) == [("D2", WEEK, 1)]


def test_a_correction_that_gives_a_visit_to_another_doctor_leaves_both_doctors_weeks(
    api: Any, app: Any
) -> None:
    d2 = api("d2")
    change = make_change(posting_day(5))
    d2.push(change)
    settle(app)
    data = {k: v for k, v in change["data"].items() if k != "assignment"}
    corrected = api("admin").put(
        f"/visits/{change['id']}", {"base_version": 1, "data": {**data, "doctor": "D1"}}
    )
    assert corrected.status_code == 200, corrected.text
    # D2's week lost a visit: its flags are as stale as D1's, which gained one.
    assert queue(app) == [("D1", WEEK, 1), ("D2", WEEK, 1)]


def _judge(app: Any, doctors: list[str], first: date, last: date) -> int:
    """Judge `doctors` over [first, last] as a settler does, outside the queue."""
    from server import evaluation_queue
    from server.extensions import db
    from server.flags import judge_entries

    with app.app_context():
        settings = evaluation_queue.settings_from(app.config)
        changes = judge_entries(
            db.session, doctors, (first, last), county=None, cause="test", settings=settings
        )
        db.session.remove()
    return changes


def flag_row(app: Any, key: str) -> tuple[str, datetime] | None:
    from server.extensions import db
    from server.models import FlagRecord

    with app.app_context():
        row = db.session.get(FlagRecord, key)
        found = (row.state, row.updated_at) if row is not None else None
        db.session.remove()
    return found


def test_a_judgement_leaves_flags_outside_its_weeks_untouched_and_clears_its_own(
    api: Any, app: Any
) -> None:
    """Only the stored flags whose scope reaches the judged weeks are compared (issue 14):
    a flag of another week stays as it was even when the data no longer holds it, and a
    flag of a judged week that the data no longer holds is resolved."""
    d1 = api("d1")
    late = make_change(
        visit_data(
            check_in="2026-01-02T08:00:00+08:00",  # 2026-W01
            check_out="2026-01-02T12:00:00+08:00",
            recorded_at="2026-01-11T09:00:00+08:00",
        )
    )
    d1.push(late)
    settle(app)
    late_key = next(k for k in flag_keys(app, "D1") if k.startswith("visit.late_entry|"))
    opened = flag_row(app, late_key)
    assert opened is not None and opened[0] == "open"

    d1.push(make_change(record_id=late["id"], op="delete", base_version=1))  # only queued
    _judge(app, ["D1"], WEEK, WEEK + timedelta(days=6))  # 2026-W02: not the late visit's
    assert flag_row(app, late_key) == opened, "a flag outside the judged weeks is untouched"

    previous_monday = WEEK - timedelta(days=7)
    assert _judge(app, ["D1"], previous_monday, previous_monday + timedelta(days=6)) >= 1
    resolved = flag_row(app, late_key)
    assert resolved is not None and resolved[0] == "resolved"


def test_a_judgement_that_changes_no_flag_writes_only_the_removal_of_its_entries(
    api: Any, app: Any
) -> None:
    """Most judgements after a push change nothing: they must not take the counter lock
    every push waits for, nor write a flag, its history or a sync record (issue 14)."""
    from sqlalchemy import event

    from server import evaluation_queue
    from server.extensions import db
    from server.models import FlagHistory, SyncCounter

    api("d2").push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    assert settle(app).flag_changes >= 1
    assert POSTING_WEEK_KEY in flag_keys(app, "D2")
    before = flag_row(app, POSTING_WEEK_KEY)
    with app.app_context():
        counter = db.session.scalar(select(SyncCounter.value))
        history = db.session.query(FlagHistory).count()
        # The same doctor-week again, with no new data: nothing to change.
        evaluation_queue.enqueue(
            db.session, [evaluation_queue.Stale("D2", WEEK, None, None)], cause="test"
        )
        db.session.commit()
        db.session.remove()
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "PRAGMA")):
            writes.append(statement.split("(")[0].strip())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)
    try:
        report = settle(app)
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", seen)
    assert (report.entries, report.flag_changes) == (1, 0)
    assert queue(app) == []
    assert flag_row(app, POSTING_WEEK_KEY) == before
    with app.app_context():
        assert db.session.scalar(select(SyncCounter.value)) == counter
        assert db.session.query(FlagHistory).count() == history
        db.session.remove()
    touched = " ".join(writes).lower()
    assert "sync_counter" not in touched, writes
    assert not any(table in touched for table in ("flags", "flag_history", "sync_records")), writes
