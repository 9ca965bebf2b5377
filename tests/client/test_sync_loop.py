"""The sync loop against a stand-in server: batches, lost answers, outages, convergence."""

from __future__ import annotations

import gzip
import json

import pytest

from offline_client.errors import ServerRefused, ServerUnreachable
from offline_client.local import open_store
from offline_client.sync_loop import IncompleteAnswer, SyncSummary, push, run_sync
from sync.protocol import VISITS
from tests.client.conftest import make_visit
from tests.client.fakes import FakeServer


@pytest.fixture
def server(tmp_path):
    authority = open_store(tmp_path / "server.sqlite")
    yield FakeServer(authority, bad_places=frozenset({"999"}))
    authority.close()


@pytest.fixture
def second_store(tmp_path):
    other = open_store(tmp_path / "other.sqlite")
    yield other
    other.close()


def visits_on(server: FakeServer) -> dict[str, dict]:
    return {r.id: r.data for r in server.authority.records(VISITS)}


def test_a_sync_pushes_the_outbox_and_pulls_back_the_servers_versions(store, server):
    store.save(VISITS, "v1", make_visit())
    summary = run_sync(store, server)
    assert (summary.sent, summary.accepted, summary.received) == (1, 1, 1)
    assert visits_on(server) == {"v1": make_visit()}
    assert store.get(VISITS, "v1").version == 1
    assert store.outbox() == []
    assert store.last_sync_at is not None


def test_a_new_record_goes_without_base_version_and_an_edit_names_it(store, server):
    """Issue 14, the wire: the server reads an absent base version as 0 (a new record)."""
    store.save(VISITS, "v1", make_visit())
    run_sync(store, server)
    store.save(VISITS, "v1", make_visit(patients=9))
    store.save(VISITS, "v2", make_visit())
    run_sync(store, server)
    assert ["base_version" in c for c in server.batches[0]] == [False]
    assert {c["id"]: c.get("base_version") for c in server.batches[1]} == {"v1": 1, "v2": None}
    assert visits_on(server)["v1"] == make_visit(patients=9)


def test_a_large_outbox_goes_in_batches_with_progress(store, server):
    for n in range(12):
        store.save(VISITS, f"v{n:02d}", make_visit(patients=n))
    messages: list[str] = []
    summary = run_sync(store, server, batch_size=5, pull_limit=4, progress=messages.append)
    assert [len(batch) for batch in server.batches] == [5, 5, 2]
    assert messages[:3] == ["pushed 5/12", "pushed 10/12", "pushed 12/12"]
    assert summary.received == 12
    assert store.cursor == server.authority.changes_since(None, 100).cursor


def test_a_lost_answer_is_resent_unchanged_and_answered_once(store, server):
    store.save(VISITS, "v1", make_visit())
    server.lose_next_answers = 1
    with pytest.raises(ServerUnreachable):
        run_sync(store, server)
    assert store.outbox()[0].in_flight, "the change stays until its answer is stored"

    summary = run_sync(store, server)

    assert server.batches[0] == server.batches[1], "the resend is the same change"
    assert summary.accepted == 1
    assert server.authority.get(VISITS, "v1").version == 1, "applied once"
    assert store.outbox() == []


def test_an_outage_before_the_push_loses_nothing(store, server):
    store.save(VISITS, "v1", make_visit())
    server.fail_next_pushes = 1
    with pytest.raises(ServerUnreachable):
        run_sync(store, server)
    run_sync(store, server)
    assert visits_on(server) == {"v1": make_visit()}


def test_an_outage_mid_pull_resumes_after_the_last_stored_page(store, server, second_store):
    for n in range(6):
        second_store.save(VISITS, f"v{n}", make_visit(patients=n))
    run_sync(second_store, server)
    first_page_cursor = server.authority.changes_since(None, 2).cursor
    real_pull = server.pull
    calls: list[str | None] = []

    def pull_then_fail(cursor, limit):
        calls.append(cursor)
        if len(calls) == 2:
            raise ServerUnreachable("ConnectionError", 1)
        return real_pull(cursor, limit)

    server.pull = pull_then_fail
    with pytest.raises(ServerUnreachable):
        run_sync(store, server, pull_limit=2)
    assert store.cursor == first_page_cursor
    run_sync(store, server, pull_limit=2)
    assert calls[2] == first_page_cursor
    assert {r.id for r in store.records(VISITS)} == {f"v{n}" for n in range(6)}


def test_a_rejected_record_does_not_block_the_others(store, server):
    store.save(VISITS, "bad", make_visit(place="999"))
    store.save(VISITS, "good", make_visit())
    summary = run_sync(store, server)
    assert [r.record_id for r in summary.rejected] == ["bad"]
    assert set(visits_on(server)) == {"good"}
    assert store.rejection(VISITS, "bad") is not None

    run_sync(store, server)
    assert len(server.batches) == 1, "a rejected change is not sent again unedited"

    store.save(VISITS, "bad", make_visit(place="450123101202"))
    run_sync(store, server)
    assert set(visits_on(server)) == {"good", "bad"}
    assert store.rejections() == []


def test_two_devices_converge_through_the_server(store, second_store, server):
    store.save(VISITS, "a", make_visit(patients=1))
    second_store.save(VISITS, "b", make_visit(patients=2))
    run_sync(store, server)
    run_sync(second_store, server)
    run_sync(store, server)
    for device in (store, second_store):
        assert {r.id: r.data for r in device.records(VISITS)} == visits_on(server)


def test_an_edit_on_a_stale_version_becomes_a_conflict_resolved_either_way(
    store, second_store, server
):
    store.save(VISITS, "v", make_visit(patients=1))
    run_sync(store, server)
    run_sync(second_store, server)
    store.save(VISITS, "v", make_visit(patients=10))
    second_store.save(VISITS, "v", make_visit(patients=20))
    run_sync(store, server)
    summary = run_sync(second_store, server)

    [conflict] = summary.conflicts
    assert second_store.get(VISITS, "v").data["patients"] == 10
    second_store.resolve(conflict.id, "mine")
    run_sync(second_store, server)
    assert server.authority.get(VISITS, "v").data["patients"] == 20
    assert server.authority.conflicts(status="open") == []

    run_sync(store, server)
    assert store.get(VISITS, "v").data["patients"] == 20


def test_push_stops_when_the_server_leaves_changes_unanswered(store):
    class Silent:
        def push(self, body, compressed=True):
            return {"results": []}

    store.save(VISITS, "v", make_visit())
    with pytest.raises(IncompleteAnswer, match="did not answer"):
        push(store, Silent(), SyncSummary(), batch_size=10)
    assert store.outbox()[0].in_flight


def test_a_batch_over_the_servers_limit_is_split_and_sent_again(store, server):
    real_push = server.push

    def push_at_most_four(body, compressed=True):
        if len(json.loads(gzip.decompress(body))["changes"]) > 4:
            raise ServerRefused(413, "batch_too_large", "a batch holds at most 4 changes")
        return real_push(body, compressed=compressed)

    server.push = push_at_most_four
    for n in range(10):
        store.save(VISITS, f"v{n}", make_visit(patients=n))
    summary = run_sync(store, server, batch_size=16)
    assert summary.accepted == 10
    assert all(len(batch) <= 4 for batch in server.batches)


def test_a_cursor_the_server_no_longer_knows_starts_the_pull_again(store, server):
    real_pull = server.pull

    def pull_forgetting_cursors(cursor, limit):
        if cursor == "bogus":
            raise ServerRefused(400, "invalid_cursor", "not a cursor this server issued")
        return real_pull(cursor, limit)

    server.pull = pull_forgetting_cursors
    server.authority.save(VISITS, "v1", make_visit())
    store.apply_pulled([], "bogus")
    summary = run_sync(store, server)
    assert summary.received == 1
    assert store.get(VISITS, "v1") is not None
