"""Pushes through the fault proxy over real HTTP: cut connections, delays, duplicated and
truncated requests. Whatever breaks, each visit is held exactly once and nothing is lost."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest
import requests

from offline_client.errors import ServerUnreachable
from offline_client.sync_loop import run_sync
from sync.batch import encode
from sync.protocol import VISITS
from tests.builders import make_change, visit_data
from tests.reliability.faults import (
    Exchange,
    FaultProxy,
    cut_body,
    delay,
    drop_request,
    drop_response,
    duplicate,
    truncate_body,
)
from tests.reliability.support import sqlite_unless_long

pytestmark = sqlite_unless_long

PUSH = "/api/v1/sync/push"


def batch_of(api: Any, count: int) -> dict[str, Any]:
    return {
        "device_id": api.device_id,
        "batch_id": uuid.uuid4().hex,
        "changes": [make_change(visit_data(patients=n)) for n in range(count)],
    }


def post_push(
    url: str, api: Any, body: dict[str, Any], *, timeout: float = 30
) -> requests.Response:
    return requests.post(
        f"{url}{PUSH}",
        data=encode(body),
        headers={
            "Authorization": api.http.headers["Authorization"],
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
        timeout=timeout,
    )


def usable_answer(url: str, api: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """The push answer, or None when the connection broke or the answer is unreadable."""
    try:
        return post_push(url, api, body).json()
    except (requests.RequestException, ValueError):
        return None


def server_visits(api: Any) -> dict[str, dict[str, Any]]:
    changes, _ = api.pull_all()
    visits = [c for c in changes if c["collection"] == VISITS]
    ids = [c["id"] for c in visits]
    assert len(ids) == len(set(ids)), "a record pulled twice"
    return {c["id"]: c for c in visits}


def change_ids_sent(exchange: Exchange) -> list[str]:
    body = exchange.request.body
    if exchange.request.header("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    # The offline client lets a change's HLC stamp stand for its change id when it can.
    return [c.get("change_id") or c["hlc"] for c in json.loads(body)["changes"]]


@pytest.mark.parametrize("cut_at", ["in the status line", "in the headers", "in the body"])
def test_an_answer_cut_off_is_answered_again_the_same_when_the_batch_is_resent(
    api: Any, fault_proxy: FaultProxy, cut_at: str
) -> None:
    d1 = api("d1")
    body = batch_of(d1, 20)
    fault_proxy.plan(
        PUSH,
        {"in the status line": drop_response(5), "in the headers": drop_response(40)}.get(
            cut_at, cut_body(10)
        ),
    )
    # Cut in the status line or the body, requests raises; cut in the headers, http.client
    # takes EOF as the end of the headers and hands over a 200 with an empty body.
    assert usable_answer(fault_proxy.url, d1, body) is None
    [lost] = fault_proxy.exchanges_to(PUSH)
    assert Exchange.status_of(lost.answers[0]) == 200, "the server answered; the client lost it"

    again = post_push(fault_proxy.url, d1, body)
    assert again.status_code == 200
    # The answer the client lost and the one it gets now are the same, byte for byte.
    assert json.loads(Exchange.body_of(lost.answers[0]))["results"] == again.json()["results"]
    assert {r["status"] for r in again.json()["results"]} == {"accepted"}

    held = server_visits(d1)
    assert set(held) == {c["id"] for c in body["changes"]}
    assert {c["version"] for c in held.values()} == {1}


def test_a_request_cut_off_mid_body_changes_nothing_and_the_resend_is_applied_once(
    api: Any, fault_proxy: FaultProxy
) -> None:
    d1 = api("d1")
    body = batch_of(d1, 20)
    fault_proxy.plan(PUSH, drop_request(300))
    with pytest.raises(requests.RequestException):
        post_push(fault_proxy.url, d1, body)
    assert server_visits(d1) == {}
    answer = post_push(fault_proxy.url, d1, body)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 20
    assert len(server_visits(d1)) == 20


def test_a_truncated_gzip_body_gets_a_4xx_in_the_envelope_and_changes_nothing(
    api: Any, fault_proxy: FaultProxy
) -> None:
    d1 = api("d1")
    body = batch_of(d1, 20)
    size = len(encode(body))
    fault_proxy.plan(PUSH, truncate_body(size // 2))
    answer = post_push(fault_proxy.url, d1, body)
    assert 400 <= answer.status_code < 500
    assert answer.json()["error"]["code"] == "invalid_json"
    assert server_visits(d1) == {}


def test_a_truncated_plain_json_body_gets_a_4xx_and_changes_nothing(
    api: Any, fault_proxy: FaultProxy
) -> None:
    d1 = api("d1")
    body = json.dumps(batch_of(d1, 5)).encode()
    fault_proxy.plan(PUSH, truncate_body(len(body) - 7))
    answer = requests.post(
        f"{fault_proxy.url}{PUSH}",
        data=body,
        timeout=30,
        headers={
            "Authorization": d1.http.headers["Authorization"],
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"
    assert server_visits(d1) == {}


def test_a_request_delivered_twice_is_applied_once_and_answered_the_same_twice(
    api: Any, fault_proxy: FaultProxy
) -> None:
    d1 = api("d1")
    body = batch_of(d1, 10)
    fault_proxy.plan(PUSH, duplicate())
    answer = post_push(fault_proxy.url, d1, body)
    assert answer.status_code == 200
    [exchange] = fault_proxy.exchanges_to(PUSH)
    first, second = (json.loads(Exchange.body_of(a)) for a in exchange.answers)
    assert first["results"] == second["results"]
    assert {r["status"] for r in second["results"]} == {"accepted"}
    held = server_visits(d1)
    assert len(held) == 10 and {c["version"] for c in held.values()} == {1}


def test_the_offline_client_resends_the_same_change_ids_after_a_lost_answer(
    api: Any, fault_proxy: FaultProxy, device: Any
) -> None:
    tablet = device(fault_proxy.url, "d1")
    ids = [uuid.uuid4().hex for _ in range(30)]
    for n, record_id in enumerate(ids):
        tablet.store.save(VISITS, record_id, visit_data(patients=n))
    # The first push's answer is cut in the headers, the second's in the body; the client
    # retries both within one sync (3 attempts), and the third push is answered.
    fault_proxy.plan(PUSH, drop_response(40), cut_body(10))
    summary = run_sync(tablet.store, tablet.api)
    pushes = fault_proxy.exchanges_to(PUSH)
    assert len(pushes) == 3
    sent = [change_ids_sent(e) for e in pushes]
    assert sent[0] == sent[1] == sent[2], "a resend must carry the same change ids"
    answers = [json.loads(Exchange.body_of(e.answers[0]))["results"] for e in pushes]
    assert answers[0] == answers[1] == answers[2]
    assert tablet.store.outbox_count() == 0 and summary.pending == 0 and not summary.rejected
    held = server_visits(api("d1"))
    assert set(held) == set(ids)
    assert {c["version"] for c in held.values()} == {1}
    assert {r.id: r.version for r in tablet.store.records(VISITS)} == dict.fromkeys(ids, 1)


def test_an_answer_slower_than_the_client_timeout_is_retried_and_applied_once(
    api: Any, fault_proxy: FaultProxy, device: Any
) -> None:
    tablet = device(fault_proxy.url, "d1", timeout_s=0.5)
    ids = [uuid.uuid4().hex for _ in range(5)]
    for record_id in ids:
        tablet.store.save(VISITS, record_id, visit_data())
    fault_proxy.plan(PUSH, delay(1.5))
    summary = run_sync(tablet.store, tablet.api)
    pushes = fault_proxy.exchanges_to(PUSH)
    assert len(pushes) == 2 and change_ids_sent(pushes[0]) == change_ids_sent(pushes[1])
    assert summary.accepted == 5 and tablet.store.outbox_count() == 0
    held = server_visits(api("d1"))
    assert set(held) == set(ids) and {c["version"] for c in held.values()} == {1}


def test_a_server_that_stays_unreachable_leaves_every_change_in_the_outbox(
    api: Any, fault_proxy: FaultProxy, device: Any
) -> None:
    tablet = device(fault_proxy.url, "d1")
    record_id = uuid.uuid4().hex
    tablet.store.save(VISITS, record_id, visit_data())
    fault_proxy.plan(PUSH, drop_request(10), drop_request(10), drop_request(10))
    with pytest.raises(ServerUnreachable):
        run_sync(tablet.store, tablet.api)
    assert tablet.store.outbox_count() == 1
    assert run_sync(tablet.store, tablet.api).accepted == 1
    assert set(server_visits(api("d1"))) == {record_id}
