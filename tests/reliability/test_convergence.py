"""Convergence, as a property: three tablets of two doctors (D1 has two) run the real offline
client (offline_client.local + offline_client.sync_loop) against the live server, through the
fault proxy. They add, edit, delete and settle conflicts offline in any order; a township
reviewer corrects visits on the server (PUT /api/v1/visits/<id>); syncs lose answers, lose
requests, arrive twice. Then everyone syncs until quiet, and:

- every device holds exactly the server's live visits in its scope, at the same versions
  and with the same data;
- no visit is lost (every id a device sent is on the server, live or deleted) and none is
  held twice;
- every conflict the server reported is kept, on the server and on the doctor's devices;
- no tombstone is ever resurrected (checked after every step, from the reviewer's pulls).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline_client.errors import ClientError
from offline_client.local import LocalStore, open_store
from offline_client.server_api import ServerAPI
from offline_client.session import Session
from offline_client.sync_loop import run_sync
from sync.protocol import CONFLICTS, VISITS
from tests.builders import PASSWORD, VILLAGE_A1, VILLAGE_A2, visit_data
from tests.reliability.faults import (
    FaultProxy,
    cut_body,
    drop_request,
    drop_response,
    duplicate,
    truncate_body,
)
from tests.reliability.support import LONG, sqlite_unless_long

PUSH, PULL = "/api/v1/sync/push", "/api/v1/sync/pull"
# (tablet name, user); D1 works on two tablets, D2 on one. Both are in township A.
TABLETS = (("d1-a", "d1"), ("d1-b", "d1"), ("d2", "d2"))
FIELDS = {
    "d1": {"doctor": "D1", "assignment": "A1", "kind": "patrol"},
    "d2": {"doctor": "D2", "assignment": "A2", "kind": "posting"},
}
FAULTS = {
    "none": None,
    "answer lost in the headers": (PUSH, drop_response(40)),
    "answer lost in the body": (PUSH, cut_body(10)),
    "request cut off": (PUSH, drop_request(200)),
    "request sent twice": (PUSH, duplicate()),
    "body truncated": (PUSH, truncate_body(50)),
    "pull answer lost": (PULL, cut_body(10)),
}

tablet = st.integers(0, len(TABLETS) - 1)
pick = st.integers(0, 1000)
add = st.tuples(st.just("add"), tablet, st.integers(0, 60), st.booleans())
edit = st.tuples(st.just("edit"), tablet, pick, st.integers(0, 60))
delete = st.tuples(st.just("delete"), tablet, pick)
sync = st.tuples(st.just("sync"), tablet, st.sampled_from(sorted(FAULTS)))
review = st.tuples(st.just("review"), pick, st.integers(0, 60))
resolve = st.tuples(st.just("resolve"), tablet, pick, st.sampled_from(["mine", "theirs"]))
# Weighted towards edits and syncs, which is where conflicts come from.
step = st.one_of(add, edit, edit, edit, delete, sync, sync, sync, review, review, resolve)


def _visit(user: str, patients: int, village: bool) -> dict[str, Any]:
    return visit_data(
        **FIELDS[user], patients=patients, place=VILLAGE_A1 if village else VILLAGE_A2
    )


def _record_id(example: int, step: int, tablet: int) -> str:
    return f"x{example}-{step}-{tablet}"


def _doctor_of(record_id: str) -> str:
    """The doctor of a visit, from the tablet that created it (its id says which)."""
    return FIELDS[TABLETS[int(record_id.rsplit("-", 1)[1])][1]]["doctor"]


def _sign_in(url: str, username: str) -> Session:
    return ServerAPI.login(url, username, PASSWORD)


class Reviewer:
    """rev_a over plain HTTP: corrects visits, and pulls after every step to see tombstones."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        token = self.http.post(
            f"{url}/api/v1/auth/login", json={"username": "rev_a", "password": PASSWORD}, timeout=30
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.cursor = ""
        self.visits: dict[str, dict[str, Any]] = {}
        self.tombstones: set[str] = set()

    def catch_up(self) -> None:
        while True:
            page = self.http.get(
                f"{self.url}/api/v1/sync/pull",
                params={"cursor": self.cursor, "limit": 1000},
                timeout=30,
            ).json()
            for change in page["changes"]:
                if change["collection"] != VISITS:
                    continue
                assert not (change["id"] in self.tombstones and not change["deleted"]), (
                    f"tombstone of {change['id']} resurrected"
                )
                if change["deleted"]:
                    self.tombstones.add(change["id"])
                self.visits[change["id"]] = change
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return

    def correct(self, record_id: str, patients: int) -> None:
        current = self.http.get(f"{self.url}/api/v1/visits/{record_id}", timeout=30).json()
        if current["deleted"]:
            return
        data = dict(current["data"], patients=patients)
        answer = self.http.put(
            f"{self.url}/api/v1/visits/{record_id}",
            timeout=30,
            json={"base_version": current["version"], "data": data},
        )
        assert answer.status_code == 200, answer.text
        # The same data again is a duplicate, not a new version.
        grew = 0 if data == current["data"] else 1
        assert answer.json()["version"] == current["version"] + grew

    def conflicts(self) -> dict[str, dict[str, Any]]:
        items = self.http.get(
            f"{self.url}/api/v1/conflicts", params={"status": "all"}, timeout=30
        ).json()["items"]
        return {c["id"]: c for c in items}


def _live(store: LocalStore) -> dict[str, tuple[int, dict[str, Any]]]:
    return {r.id: (r.version, r.data) for r in store.records(VISITS)}


def _sync(store: LocalStore, api: ServerAPI, reported: set[str]) -> Any:
    summary = run_sync(store, api)
    reported.update(c.id for c in summary.conflicts)
    return summary


@sqlite_unless_long
@pytest.mark.timeout(2400 if LONG else 300)
def test_every_device_and_the_server_converge_whatever_the_faults(live: Any) -> None:
    proxy = FaultProxy(live.url)
    try:
        sessions = {user: _sign_in(proxy.url, user) for user in ("d1", "d2")}
        reviewer = Reviewer(live.url)
        _check_convergence(proxy, sessions, reviewer)
    finally:
        proxy.close()


def _check_convergence(proxy: FaultProxy, sessions: dict[str, Session], reviewer: Reviewer) -> None:
    counter = iter(range(10**9))
    created: set[str] = set()

    @settings(
        max_examples=40 if LONG else 6,
        deadline=None,
        derandomize=not LONG,
        suppress_health_check=list(HealthCheck),
    )
    @given(steps=st.lists(step, min_size=8, max_size=30 if LONG else 14))
    def run(steps: list[tuple[Any, ...]]) -> None:
        example = next(counter)
        with tempfile.TemporaryDirectory() as tmp:
            stores = [open_store(Path(tmp) / f"{name}.sqlite") for name, _ in TABLETS]
            try:
                _play(example, steps, stores, proxy, sessions, reviewer, created)
                # None duplicated: the server holds no visit a tablet did not create.
                assert set(reviewer.visits) <= created
            finally:
                for store in stores:
                    store.close()

    run()


def _play(
    example: int,
    steps: list[tuple[Any, ...]],
    stores: list[LocalStore],
    proxy: FaultProxy,
    sessions: dict[str, Session],
    reviewer: Reviewer,
    created: set[str],
) -> None:
    apis = [ServerAPI(sessions[user], sleep=lambda _s: None, max_attempts=3) for _, user in TABLETS]
    added: dict[str, int] = {}  # record id -> the tablet that created it
    reported: set[str] = set()
    # Each tablet records two visits and syncs twice, so all of a doctor's tablets start
    # from the same records (a fresh install also pulls everything the server holds).
    for who, (store, (_, user)) in enumerate(zip(stores, TABLETS, strict=True)):
        for n in range(2):
            record_id = _record_id(example, -1 - n, who)
            store.save(VISITS, record_id, _visit(user, n, bool(n)))
            added[record_id] = who
            created.add(record_id)
    for _ in range(2):
        for store, api in zip(stores, apis, strict=True):
            _sync(store, api, reported)
    reviewer.catch_up()
    for number, (action, *args) in enumerate(steps):
        if action == "review":
            candidates = sorted(
                v for v in added if v in reviewer.visits and v not in reviewer.tombstones
            )
            if candidates:
                reviewer.correct(candidates[args[0] % len(candidates)], args[1])
        else:
            who = args[0]
            store, user = stores[who], TABLETS[who][1]
            ids = sorted(set(_live(store)) & set(added))
            if action == "add":
                record_id = _record_id(example, number, who)
                store.save(VISITS, record_id, _visit(user, args[1], args[2]))
                added[record_id] = who
                created.add(record_id)
            elif action == "edit" and ids:
                record_id = ids[args[1] % len(ids)]
                data = dict(store.get(VISITS, record_id).data, patients=args[2])  # type: ignore[union-attr]
                store.save(VISITS, record_id, data)
            elif action == "delete" and ids:
                store.delete(VISITS, ids[args[1] % len(ids)])
            elif action == "resolve":
                open_conflicts = [c for c in store.conflicts(status="open") if c.record_id in added]
                if open_conflicts:
                    store.resolve(open_conflicts[args[1] % len(open_conflicts)].id, args[2])
            elif action == "sync":
                fault = FAULTS[args[1]]
                if fault is not None:
                    proxy.plan(fault[0], fault[1])
                with contextlib.suppress(ClientError, requests.RequestException):
                    _sync(store, apis[who], reported)
                proxy.clear()
        reviewer.catch_up()

    # Everyone syncs until quiet: a round in which nobody sends or receives anything.
    for _ in range(8):
        sent = received = 0
        for store, api in zip(stores, apis, strict=True):
            summary = _sync(store, api, reported)
            sent += summary.sent
            received += summary.received
        reviewer.catch_up()
        if sent == 0 and received == 0:
            break
    else:
        raise AssertionError("the devices did not settle in 8 rounds")

    server = {k: v for k, v in reviewer.visits.items() if k not in reviewer.tombstones}
    for (name, user), store in zip(TABLETS, stores, strict=True):
        assert store.outbox_count() == 0, name
        assert store.rejections() == [], (name, store.rejections())
        doctor = FIELDS[user]["doctor"]
        expected = {
            k: (v["version"], v["data"]) for k, v in server.items() if v["data"]["doctor"] == doctor
        }
        assert _live(store) == expected, name

    # No visit lost: every id a tablet created is on the server (live or deleted), unless
    # that tablet deleted it before it ever left (the client then forgets it).
    for record_id, who in added.items():
        if record_id not in reviewer.visits:
            assert stores[who].get(VISITS, record_id) is None, f"{record_id} lost"
            assert all(s.get(VISITS, record_id) is None for s in stores), record_id

    # Every conflict the server reported is kept, on the server and on the doctor's tablets.
    kept = reviewer.conflicts()
    assert reported <= set(kept), reported - set(kept)
    for (name, user), store in zip(TABLETS, stores, strict=True):
        doctor = FIELDS[user]["doctor"]
        theirs = {cid for cid, c in kept.items() if _doctor_of(c["data"]["record_id"]) == doctor}
        held = {c.id for c in store.conflicts(status=None)}
        assert theirs == held, (name, theirs ^ held)
        pulled_conflicts = list(store.db[CONFLICTS].rows_where("status = 'open'"))
        assert {c["id"] for c in pulled_conflicts} == {
            cid for cid in theirs if kept[cid]["data"]["status"] == "open"
        }, name
    import os

    if os.environ.get("CONV_STATS"):
        print(
            "STATS",
            len(steps),
            "added",
            len(added),
            "server",
            len(server),
            "tombstones",
            len(reviewer.tombstones),
            "conflicts",
            len(kept),
            "reported",
            len(reported),
            "faults",
            sum(1 for e in proxy.exchanges if e.fault.kind != "pass"),
        )


@sqlite_unless_long
def test_settling_keeping_theirs_after_a_newer_pull_converges(live: Any, tmp_path: Path) -> None:
    session = _sign_in(live.url, "d1")
    api = ServerAPI(session, sleep=lambda _s: None)
    first, second = open_store(tmp_path / "a.sqlite"), open_store(tmp_path / "b.sqlite")
    reviewer = Reviewer(live.url)
    try:
        first.save(VISITS, "R", _visit("d1", 1, True))
        run_sync(first, api)
        run_sync(second, api)
        reviewer.correct("R", 2)  # the server is at version 2
        second.save(VISITS, "R", _visit("d1", 5, True))  # an edit made on version 1
        [conflict] = run_sync(second, api).conflicts
        reviewer.correct("R", 3)  # version 3
        run_sync(second, api)  # the tablet pulls version 3 ...
        assert _live(second)["R"][0] == 3
        second.resolve(conflict.id, "theirs")  # ... and keeps the server's version
        run_sync(second, api)
        server = reviewer.http.get(f"{live.url}/api/v1/visits/R", timeout=30).json()
        assert _live(second)["R"] == (server["version"], server["data"])
    finally:
        first.close()
        second.close()
