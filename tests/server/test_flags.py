"""Flags on the server: re-evaluated after each push for the doctor-weeks it touched,
kept with their history, served scoped at /api/v1/flags and pulled to the device."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.builders import make_change, posting_day, visit_data

AS_OF = "2026-01-11"  # the Sunday that ends 2026-W02, the first week of D2's posting
WEEK = "2026-W02"
POSTING_WEEK_KEY = f"posting.days_per_week|assignment|A2|{WEEK}"


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"ZHUXUN_RULES_AS_OF": AS_OF}


def flag(client: Any, key: str) -> dict[str, Any] | None:
    items = client.get("/flags", params={"doctor": "D2"}).json()["items"]
    return next((f for f in items if f["key"] == key), None)


def test_a_week_one_duty_day_short_is_flagged_then_resolved_by_the_missing_day(
    api: Any, app: Any
) -> None:
    d2 = api("d2")
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    short = flag(d2, POSTING_WEEK_KEY)
    assert short is not None and short["state"] == "open" and short["status"] == "violation"
    assert (short["measured"], short["required"]) == (4, 5)
    assert short["explanation"]["zh"] and short["explanation"]["en"]

    _, cursor = d2.pull_all()
    d2.push(make_change(posting_day(9)))
    assert flag(d2, POSTING_WEEK_KEY)["state"] == "resolved"  # type: ignore[index]

    pulled = [c for c in d2.pull_all(cursor)[0] if c["collection"] == "flags"]
    assert any(c["id"] == POSTING_WEEK_KEY and c["data"]["state"] == "resolved" for c in pulled)

    from server.extensions import db
    from server.models import FlagHistory

    with app.app_context():
        history = [
            h.change
            for h in db.session.scalars(
                select(FlagHistory)
                .where(FlagHistory.key == POSTING_WEEK_KEY)
                .order_by(FlagHistory.id)
            )
        ]
    assert history == ["opened", "resolved"], "a re-evaluation records what changed"


def test_deleting_a_duty_day_reopens_the_flag(api: Any) -> None:
    d2 = api("d2")
    changes = [make_change(posting_day(day)) for day in (5, 6, 7, 8, 9)]
    d2.push(*changes)
    assert flag(d2, POSTING_WEEK_KEY) is None
    d2.push(make_change(record_id=changes[0]["id"], op="delete", base_version=1))
    reopened = flag(d2, POSTING_WEEK_KEY)
    assert reopened is not None and reopened["state"] == "open" and reopened["measured"] == 4


def test_flags_are_scoped_like_the_records(api: Any) -> None:
    api("d2").push(make_change(posting_day(5)))
    assert flag(api("rev_a"), POSTING_WEEK_KEY) is not None
    assert flag(api("admin"), POSTING_WEEK_KEY) is not None
    assert api("rev_b").get("/flags").json()["items"] == []
    assert api("d1").get("/flags", params={"doctor": "D2"}).json()["items"] == []
    assert api("admin_other").get("/flags").json()["items"] == []


def test_a_push_re_evaluates_only_the_pushing_doctors_flags(api: Any, app: Any) -> None:
    from server.extensions import db
    from server.models import FlagRecord

    api("d2").push(make_change(posting_day(5)))
    with app.app_context():
        before = {r.key: r.updated_at for r in db.session.scalars(select(FlagRecord))}
    api("d1").push(
        make_change(
            visit_data(
                check_in="2026-01-06T08:00:00+08:00",
                check_out="2026-01-06T12:00:00+08:00",
                recorded_at="2026-01-06T12:10:00+08:00",
            )
        )
    )
    with app.app_context():
        after = {r.key: (r.updated_at, r.doctor_id) for r in db.session.scalars(select(FlagRecord))}
    for key, stamp in before.items():
        assert after[key][0] == stamp, f"{key} was touched by another doctor's push"
    assert any(doctor == "D1" for _, doctor in after.values())


def test_flags_can_be_filtered_by_rule_and_period(api: Any) -> None:
    d2 = api("d2")
    d2.push(make_change(posting_day(5)))
    items = d2.get("/flags", params={"rule": "posting.days_per_week", "period": WEEK}).json()[
        "items"
    ]
    assert [f["key"] for f in items] == [POSTING_WEEK_KEY]
    assert d2.get("/flags", params={"rule": "patrol.per_week"}).json()["items"] == []


def test_a_flag_on_a_visit_with_a_64_character_id_is_stored(api: Any) -> None:
    # The flag's key (rule|visit|<id>|<date>) is longer than any device id: it must fit.
    d1 = api("d1")
    visit_id = "v" + "0" * 63
    late = visit_data(
        check_in="2026-01-02T08:00:00+08:00",
        check_out="2026-01-02T12:00:00+08:00",
        recorded_at="2026-01-11T09:00:00+08:00",
    )
    assert d1.push(make_change(late, record_id=visit_id))["results"][0]["status"] == "accepted"
    items = d1.get("/flags", params={"rule": "visit.late_entry"}).json()["items"]
    assert [f["subject"]["id"] for f in items] == [visit_id]


def test_a_push_judges_its_doctors_on_their_own_data_as_the_whole_county_would(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """After a push only the pushing doctors' assignments, records and the places these
    name are read (flags.scenario_for with doctor ids); their flags must equal those of the
    whole county's scenario, doctor for doctor."""
    from datetime import date

    from demo_county import generate_county
    from rules import evaluate, load_scenario
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db
    from server.flags import ruleset_named, scenario_for
    from server.records.importer import import_scenario
    from tests.conftest import app_config

    scenario = generate_county(
        seed=11, doctors=12, villages=12, townships=2, start=date(2025, 3, 3), weeks=8
    )
    app = create_app(app_config(backend, tmp_path, request))
    as_of, weeks = date(2025, 4, 27), (date(2025, 3, 31), date(2025, 4, 13))
    ruleset = ruleset_named("guangxi")
    try:
        with app.app_context():
            init_db()
            import_scenario(db.session, scenario)
            whole = load_scenario(scenario_for(db.session, {scenario["county"]["code"]}, None))
            judged = 0
            for doctor in sorted(d["id"] for d in scenario["doctors"]):
                own = load_scenario(scenario_for(db.session, set(), {doctor}))
                assert len(own.places) < len(whole.places)
                expected = [
                    f
                    for f in evaluate(
                        whole, as_of=as_of, ruleset=ruleset, doctors={doctor}, period=weeks
                    )
                    if f.doctor is not None
                ]
                got = [
                    f
                    for f in evaluate(
                        own, as_of=as_of, ruleset=ruleset, doctors={doctor}, period=weeks
                    )
                    if f.doctor is not None
                ]
                assert got == expected, doctor
                judged += len(expected)
            assert judged > 0, "the county must give some doctor flags to compare"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_window_reads_visits_from_the_doctor_day_index_not_every_stored_visit(
    tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """Without table statistics, SQLite planned the window's join of `visits` and
    `sync_records` for 50 doctors as a scan of every stored visit record (0.1 s of a 0.3 s
    judgement on 160k visits, issue 14): the plan must start from (doctor, day)."""
    from datetime import date

    from sqlalchemy import event

    from server.extensions import db
    from server.flags import visit_loader
    from tests.conftest import app_config, make_app

    app = make_app(app_config("sqlite", tmp_path, request))
    statements: list[tuple[str, Any]] = []
    with app.app_context():
        engine = db.engine

        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "sync_records" in statement:  # not the connection's own pragmas
                statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", seen)
        try:
            doctors = [f"D{n:04d}" for n in range(50)]
            visit_loader(db.session, doctors)(date(2026, 1, 4), date(2026, 1, 12))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        [(statement, parameters)] = statements
        plan = [
            row[-1]
            for row in db.session.connection().exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            )
        ]
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()
    assert any("ix_visits_doctor_day" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert not any("sync_records" in step and "(collection=?)" in step for step in plan), (
        f"every stored visit record is read: {plan}"
    )


def test_a_judgement_reads_back_its_doctors_flags_by_the_scope_index(
    tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """The stored flags a judgement compares are found through (doctor, scope end): a
    doctor's flags of past weeks are not read to judge this one (issue 14)."""
    from datetime import date

    from sqlalchemy import event

    from server.extensions import db
    from server.flags import judge
    from tests.conftest import app_config, make_app

    app = make_app(app_config("sqlite", tmp_path, request))
    statements: list[tuple[str, Any]] = []
    with app.app_context():
        engine = db.engine

        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FROM flags" in statement and "WHERE flags.doctor_id IN" in statement:
                statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", seen)
        try:
            judge(db.session, ["D1", "D2"], (date(2026, 1, 5), date(2026, 1, 11)),
                  county=None, ruleset="guangxi", as_of=date(2026, 1, 11), cause="test")  # fmt: skip
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert statements, "the judgement reads its stored flags"
        plans = [
            [row[-1] for row in db.session.connection().exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters)]
            for statement, parameters in statements
        ]  # fmt: skip
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()
    for plan in plans:
        assert any("ix_flags_doctor_scope" in step and "scope_end" in step for step in plan), plan


def test_judging_the_weeks_a_push_touched_stores_the_full_evaluations_flags(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """The queue's judgement on the stored data (the window's visits, the places read once,
    the flags read back by scope, nothing written when nothing changes; issue 14) leaves
    the pushing doctors' flags of those weeks equal, field for field, to a full evaluation
    of the data with the push, and every other flag as it was."""
    from datetime import date, datetime, timedelta

    from demo_county import generate_county
    from rules import evaluate, load_scenario
    from rules.periods import CHINA_TZ as CHINA
    from server import evaluation_queue
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db
    from server.flags import evaluate_all, judge_entries, ruleset_named
    from server.models import FlagRecord, SyncRecord
    from server.records.importer import import_scenario
    from server.records.projections import BatchProjection
    from server.records.sql_store import RecordScope, SqlSyncStore, WriteContext
    from sync.protocol import Op
    from sync.records import Change
    from tests.conftest import app_config

    scenario = generate_county(
        seed=5, doctors=12, villages=12, townships=2, start=date(2025, 3, 3), weeks=8
    )
    county = scenario["county"]["code"]
    as_of = date(2025, 4, 27)
    townships = {p["code"]: p["parent"] for p in scenario["places"]}
    postings = [a for a in scenario["assignments"] if a["kind"] == "posting"][:4]
    pushers = {a["doctor"] for a in postings}
    # New evening visits in the last fortnight, and some of the pushers' visits deleted.
    added = []
    for n, a in enumerate(postings * 3):
        day = as_of - timedelta(days=1 + (n * 5) % 13)
        check_in = datetime(day.year, day.month, day.day, 19, tzinfo=CHINA)
        added.append({
            "id": f"T-{n:03d}", "doctor": a["doctor"], "assignment": a["id"],
            "place": a["places"][0], "kind": "posting", "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(hours=2)).isoformat(), "patients": 2,
            "device_id": "t", "form_version": 1,
            "recorded_at": (check_in + timedelta(hours=3)).isoformat(),
        })  # fmt: skip
    removed = [
        v for v in scenario["visits"]
        if v["doctor"] in pushers and v["check_in"][:10] >= str(as_of - timedelta(days=9))
    ][::3]  # fmt: skip
    assert added and removed

    app = create_app({**app_config(backend, tmp_path, request), "ZHUXUN_RULES_AS_OF": str(as_of)})
    try:
        with app.app_context():
            session = db.session
            init_db()
            import_scenario(session, scenario)
            evaluate_all(session, ruleset="guangxi", as_of=as_of, cause="test", counties=[county])
            before = dict(session.execute(select(FlagRecord.key, FlagRecord.updated_at)).all())
            versions = dict(
                session.execute(
                    select(SyncRecord.id, SyncRecord.version).where(
                        SyncRecord.id.in_([v["id"] for v in removed])
                    )
                ).all()
            )
            session.rollback()
            items = [
                (Change("visits", v["id"], Op.UPSERT, f"c-{v['id']}", 0,
                        {k: x for k, x in v.items() if k != "id"}),
                 RecordScope(v["doctor"], townships[v["place"]], county))
                for v in added
            ] + [
                (Change("visits", v["id"], Op.DELETE, f"d-{v['id']}", versions[v["id"]]),
                 RecordScope(v["doctor"], townships[v["place"]], county))
                for v in removed
            ]  # fmt: skip
            store = SqlSyncStore(session, projector=BatchProjection())
            store.apply_batch(
                items, WriteContext(origin="t", device_id="t"), stale=evaluation_queue.PUSH
            )
            stale = evaluation_queue.stale_weeks(store.written)
            settings = evaluation_queue.settings_from(app.config)
            settled = evaluation_queue.settle(session, settings, judge_entries)
            assert settled.entries == len(stale) and not settled.failed
            first = min(s.week for s in stale)
            last = max(s.week for s in stale) + timedelta(days=6)

            gone = {v["id"] for v in removed}
            scenario["visits"] = [v for v in scenario["visits"] if v["id"] not in gone] + added
            expected = {
                f.key: f.to_dict()
                for f in evaluate(load_scenario(scenario), as_of=as_of,
                                  ruleset=ruleset_named("guangxi"), doctors=pushers,
                                  period=(first, last))
                if f.doctor is not None
            }  # fmt: skip
            rows = session.execute(
                select(FlagRecord.key, FlagRecord.body, FlagRecord.state, FlagRecord.updated_at,
                       FlagRecord.doctor_id, FlagRecord.scope_start, FlagRecord.scope_end)
            ).all()  # fmt: skip
            session.rollback()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    judged = {
        r.key: r.body
        for r in rows
        if r.doctor_id in pushers and r.state == "open"
        and r.scope_start <= last and r.scope_end >= first
    }  # fmt: skip
    assert judged == expected
    assert settled.flag_changes > 0, "the push must change some flags to compare"
    for r in rows:
        if r.doctor_id not in pushers or r.scope_end < first or r.scope_start > last:
            assert r.updated_at == before.get(r.key, r.updated_at), f"{r.key} was touched"


@pytest.mark.parametrize("lang", [None, "zh"])
def test_a_compact_pull_expands_to_exactly_the_full_pull_and_is_smaller(
    api: Any, lang: str | None
) -> None:
    """Issue 14, the wire: `pull?compact=1` (sync/compact.py) brings the same records."""
    from sync.compact import expand_page
    from sync.protocol import F_FLAG, P_FLAGS_SHARED, Q_COMPACT, Q_LANG

    d2 = api("d2")
    d2.push(*(make_change(posting_day(day)) for day in (5, 6, 7, 8)))
    params: dict[str, Any] = {"limit": 5000} | ({Q_LANG: lang} if lang else {})
    full = d2.get("/sync/pull", params=params)
    compact = d2.get("/sync/pull", params=params | {Q_COMPACT: "1"})
    assert full.status_code == compact.status_code == 200, compact.text
    sent = compact.json()
    assert any(F_FLAG in c for c in sent["changes"]) and P_FLAGS_SHARED in sent
    assert all("seq" not in c and "meta" not in c for c in sent["changes"])
    assert len(compact.content) < len(full.content)
    expected = full.json()
    for change in expected["changes"]:
        del change["seq"], change["meta"]
    assert expand_page(sent) == expected
    assert d2.get("/sync/pull", params={Q_COMPACT: "0"}).json()["changes"][0]["meta"]


def test_a_compact_pull_asked_for_with_another_value_is_refused_naming_the_parameter(
    api: Any,
) -> None:
    answer = api("d2").get("/sync/pull", params={"compact": "yes"})
    assert answer.status_code == 400
    assert "compact" in answer.json()["error"]["errors"]
