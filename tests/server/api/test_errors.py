"""The one family of domain errors (server/errors.py) and its one translator to HTTP
(server/api/errors.py): the envelope, the status of each family, and a domain error
raised deep in the review workflow arriving as that envelope over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import PASSWORD


def test_the_envelope_carries_code_message_chinese_message_and_field_paths() -> None:
    from server.errors import envelope
    from sync.protocol import ErrorCode

    body = envelope(ErrorCode.VALIDATION, "bad week", errors={"week": ["must look like"]})
    assert body == {
        "error": {
            "code": "validation_failed",
            "message": "bad week",
            "message_zh": "数据校验未通过",
            "errors": {"week": ["must look like"]},
        }
    }
    # Every error carries a Chinese message, a code of its own too (issue 13).
    assert envelope("custom_code", "x") == {
        "error": {"code": "custom_code", "message": "x", "message_zh": "请求未能完成"}
    }


def test_each_family_of_domain_errors_has_its_code_and_status() -> None:
    from server.accounts import UserError
    from server.api.errors import ApiError, status_of
    from server.errors import DomainError, Forbidden, InvalidInput, NotFound, WrongState

    cases = [
        (InvalidInput("m", {"f": ["x"]}), "validation_failed", 400),
        (NotFound("m"), "not_found", 404),
        (Forbidden("m"), "forbidden", 403),
        (WrongState("m"), "wrong_state", 409),
        (UserError("m"), "invalid_request", 400),
        (ApiError(413, "body_too_large", "m"), "body_too_large", 413),
    ]
    for error, code, status in cases:
        assert isinstance(error, DomainError)
        assert (str(error.code), status_of(error)) == (code, status), type(error).__name__
    assert NotFound("m").message_zh == "未找到"
    assert WrongState("m").message_zh == "当前状态下不能执行此操作"


@pytest.fixture
def reviewer(app: Any) -> Any:
    client = app.test_client()
    answer = client.post("/api/v1/auth/login", json={"username": "rev_a", "password": PASSWORD})
    assert answer.status_code == 200
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {answer.get_json()['access_token']}"
    return client


def test_a_domain_error_from_the_workflow_answers_in_the_one_envelope(reviewer: Any) -> None:
    answer = reviewer.get("/api/v1/review/weeks/D1/2026-13")
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert error["message_zh"] == "数据校验未通过"
    assert list(error["errors"]) == ["week"]


def test_a_subject_outside_the_scope_is_not_found_in_the_envelope(reviewer: Any) -> None:
    answer = reviewer.get("/api/v1/review/weeks/D3/2026-W11")  # D3 is township B's
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


def test_a_decision_on_the_wrong_state_is_a_409_in_the_envelope(app: Any, reviewer: Any) -> None:
    from server.extensions import db
    from server.records.importer import import_scenario
    from tests.builders import small_scenario

    leave = {"id": "L1", "doctor": "D1", "start": "2026-03-16", "end": "2026-03-17"}
    with app.app_context():
        import_scenario(db.session, {**small_scenario(), "leave": [{**leave, "reason": "家事"}]})
    assert reviewer.post("/api/v1/review/leave/L1/approve", json={}).status_code == 200
    again = reviewer.post("/api/v1/review/leave/L1/approve", json={})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "wrong_state"
    assert "approved already" in again.get_json()["error"]["message"]
