"""Conflicts on the device (offline_client/local/conflicts.py)."""

from __future__ import annotations

import pytest

from sync.protocol import VISITS, Op
from tests.client.conftest import make_visit


def test_a_conflict_answer_keeps_both_versions_and_mirrors_the_server(store, record_id):
    store.save(VISITS, record_id, make_visit(patients=2))
    [sent] = store.take_batch(500)
    answer = {
        "collection": VISITS,
        "id": record_id,
        "change_id": sent.change_id,
        "status": "conflict",
        "version": 3,
        "conflict_id": "k1",
        "code": "stale_version",
        "current": {"version": 3, "deleted": False, "data": make_visit(patients=30)},
    }
    store.store_answers([answer], [sent])
    [view] = store.conflict_views()
    assert view.conflict.incoming_data["patients"] == 2
    assert view.theirs["data"]["patients"] == 30
    assert store.get(VISITS, record_id).data["patients"] == 30


@pytest.mark.parametrize("keep", ["mine", "theirs"])
def test_resolving_a_conflict_queues_the_decision_on_the_servers_version(store, record_id, keep):
    store.save(VISITS, record_id, make_visit(patients=2))
    [sent] = store.take_batch(500)
    answer = {
        "collection": VISITS,
        "id": record_id,
        "change_id": sent.change_id,
        "status": "conflict",
        "version": 3,
        "conflict_id": "k1",
        "code": "stale_version",
        "current": {"version": 3, "deleted": False, "data": make_visit(patients=30)},
    }
    store.store_answers([answer], [sent])
    change = store.resolve("k1", keep)
    assert change.resolves == "k1"
    assert change.base_version == 3
    if keep == "mine":
        assert change.op is Op.UPSERT
        assert store.get(VISITS, record_id).data["patients"] == 2
    else:
        assert change.op is Op.RESOLVE
        assert store.get(VISITS, record_id).data["patients"] == 30
    assert store.conflicts(status="open") == []
