"""schemathesis against the served OpenAPI document (GET /api/v1/openapi.json) of the live
app: every operation (the document is generated from the app's routes, issue 13), signed in
as a doctor and as a county admin, on SQLite and PostgreSQL, with a short budget. No answer
may be a 5xx, and every answer must match the schema the document gives for it."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.builders import PASSWORD
from tests.conftest import BACKENDS
from tests.reliability.support import LONG


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("username", ["d1", "admin"])
@pytest.mark.timeout(1800 if LONG else 420)
def test_every_operation_answers_without_5xx_and_as_its_schema_says(
    live: Any, username: str
) -> None:
    import requests

    token = requests.post(
        f"{live.url}/api/v1/auth/login",
        timeout=30,
        json={"username": username, "password": PASSWORD},
    ).json()["access_token"]
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        tried[operation.label] = 0
        if operation.path.endswith("/auth/logout"):
            continue  # it would revoke the token every other operation uses
        _fuzz(operation, live.url, headers, checks, tried)
    assert len(tried) >= 30, tried  # every operation of the app (32 at issue 13)
    assert all(tried[label] > 0 for label in tried if not label.endswith("/auth/logout")), tried


def _fuzz(
    operation: Any, base_url: str, headers: dict[str, str], checks: list[Any], tried: dict[str, int]
) -> None:
    @settings(
        max_examples=200 if LONG else 25,
        deadline=None,
        derandomize=not LONG,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def exercise(case: Any) -> None:
        tried[operation.label] += 1
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    exercise()
