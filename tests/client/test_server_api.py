"""The HTTP client: retries with backoff, token refresh, errors as messages."""

from __future__ import annotations

import json

import pytest
import requests

from offline_client.errors import LoginRequired, ServerRefused, ServerUnreachable
from offline_client.server_api import ServerAPI
from offline_client.session import Session


class Response:
    def __init__(self, status: int, body: dict, headers: dict | None = None):
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)
        self.headers = headers or {}

    def json(self):
        return self._body


class FakeHTTP:
    """Answers requests from a script: a Response or an exception per call."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls: list[dict] = []

    def request(self, method, url, **kwargs):
        self.calls.append({"method": method, "url": url, **kwargs})
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def error(status: int, code: str) -> Response:
    return Response(status, {"error": {"code": code, "message": code}})


def make_api(http: FakeHTTP, **options) -> tuple[ServerAPI, list[float], list[Session]]:
    sleeps: list[float] = []
    refreshed: list[Session] = []
    api = ServerAPI(
        Session("http://server", "d0001", "access-1", "refresh-1", {"doctor": "D0001"}),
        http=http,
        sleep=sleeps.append,
        rng=lambda: 1.0,
        on_refresh=refreshed.append,
        **options,
    )
    return api, sleeps, refreshed


PAGE = {"changes": [], "cursor": "0", "has_more": False}


def test_network_errors_and_5xx_are_retried_with_growing_delays():
    http = FakeHTTP(
        requests.ConnectionError("down"), error(503, "internal_error"), Response(200, PAGE)
    )
    api, sleeps, _ = make_api(http, backoff_s=0.5)
    assert api.pull(None, 10) == PAGE
    assert sleeps == [0.5, 1.0]


def test_retries_are_bounded_and_end_in_server_unreachable():
    http = FakeHTTP(*[requests.Timeout("slow")] * 3)
    api, sleeps, _ = make_api(http, max_attempts=3, backoff_s=1, max_backoff_s=1.5)
    with pytest.raises(ServerUnreachable, match="could not be reached after 3 attempt"):
        api.pull(None, 10)
    assert sleeps == [1, 1.5]


def test_an_expired_access_token_is_refreshed_and_the_request_retried_once():
    http = FakeHTTP(
        error(401, "token_expired"),
        Response(200, {"access_token": "access-2", "expires_in": 900}),
        Response(200, PAGE),
    )
    api, _, refreshed = make_api(http)
    assert api.pull("5", 10) == PAGE
    assert http.calls[1]["headers"]["Authorization"] == "Bearer refresh-1"
    assert http.calls[2]["headers"]["Authorization"] == "Bearer access-2"
    assert refreshed[0].access_token == "access-2"


def test_a_failed_refresh_asks_to_log_in_again():
    http = FakeHTTP(error(401, "token_expired"), error(401, "token_expired"))
    api, _, _ = make_api(http)
    with pytest.raises(LoginRequired, match="login"):
        api.pull(None, 10)


def test_a_4xx_answer_becomes_a_refusal_with_the_servers_code():
    http = FakeHTTP(error(413, "batch_too_large"))
    api, _, _ = make_api(http)
    with pytest.raises(ServerRefused, match="batch_too_large"):
        api.push(b"{}")


def test_a_push_is_sent_gzipped_with_its_content_encoding():
    http = FakeHTTP(Response(200, {"results": []}))
    api, _, _ = make_api(http)
    api.push(b"\x1f\x8b...")
    headers = http.calls[0]["headers"]
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/json"


def test_a_short_retry_after_is_waited_out():
    throttled = Response(
        429, {"error": {"code": "rate_limited", "message": "slow down"}}, {"Retry-After": "1"}
    )
    http = FakeHTTP(throttled, Response(200, PAGE))
    api, sleeps, _ = make_api(http)
    assert api.pull(None, 10) == PAGE
    assert sleeps == [1.0]


def test_a_long_throttle_is_reported_not_retried():
    throttled = Response(
        429, {"error": {"code": "rate_limited", "message": "wait a minute"}}, {"Retry-After": "60"}
    )
    api, sleeps, _ = make_api(FakeHTTP(throttled))
    with pytest.raises(ServerRefused, match="rate_limited"):
        api.pull(None, 10)
    assert sleeps == []


class CutAnswer(Response):
    """A 2xx whose body is not JSON: what requests hands over when the connection dropped
    inside the answer's headers (http.client takes EOF as their end; docs/reliability.md)."""

    def __init__(self) -> None:
        super().__init__(200, {})
        self.text = ""

    def json(self):
        raise requests.exceptions.JSONDecodeError("Expecting value", "", 0)


def test_an_answer_cut_inside_its_body_is_retried_with_the_same_body():
    http = FakeHTTP(
        requests.exceptions.ChunkedEncodingError("IncompleteRead(400 bytes read, 900 more)"),
        Response(200, {"results": []}),
    )
    api, sleeps, _ = make_api(http, backoff_s=0.5)
    assert api.push(b"batch-bytes") == {"results": []}
    assert [call["data"] for call in http.calls] == [b"batch-bytes", b"batch-bytes"]
    assert sleeps == [0.5]


def test_an_answer_cut_inside_its_headers_is_retried_not_reported_as_a_refusal():
    http = FakeHTTP(CutAnswer(), Response(200, PAGE))
    api, sleeps, _ = make_api(http, backoff_s=0.5)
    assert api.pull("7", 10) == PAGE
    assert len(http.calls) == 2 and sleeps == [0.5]


def test_answers_cut_on_every_attempt_end_in_server_unreachable_saying_so():
    http = FakeHTTP(CutAnswer(), requests.exceptions.ChunkedEncodingError("cut"), CutAnswer())
    api, _, _ = make_api(http, max_attempts=3)
    with pytest.raises(ServerUnreachable, match="cut off in transfer"):
        api.push(b"batch-bytes")
    assert len(http.calls) == 3


def test_a_json_answer_that_is_not_an_object_is_still_a_refusal():
    http = FakeHTTP(Response(200, ["not", "an", "object"]))
    api, _, _ = make_api(http)
    with pytest.raises(ServerRefused, match="not an object"):
        api.pull(None, 10)
    assert len(http.calls) == 1
