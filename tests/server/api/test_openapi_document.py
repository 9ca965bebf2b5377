"""The OpenAPI document is generated from the registered views (issue 13): every route under
/api/v1 is in it with exactly its methods, and what it says about unknown fields is what
the server does."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.routing import Rule

from server.app import create_app

IMPLICIT = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("doc") / "z.sqlite3"
    return create_app(
        {
            "TESTING": True,
            "ZHUXUN_ENV": "test",
            "SECRET_KEY": "s" * 48,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
        }
    )


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    answer = app.test_client().get("/api/v1/openapi.json")
    assert answer.status_code == 200
    return dict(answer.get_json())


def openapi_path(rule: Rule) -> str:
    from apispec_webframeworks.flask import FlaskPlugin

    return FlaskPlugin.flaskpath2openapi(rule.rule)


def test_the_document_has_every_route_under_api_v1_with_exactly_its_methods(
    app: Any, document: dict[str, Any]
) -> None:
    routes = {
        (openapi_path(rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in (rule.methods or set()) - IMPLICIT
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    assert routes == documented
    assert len(routes) >= 24


def test_every_protected_operation_declares_the_bearer_scheme_and_its_401(
    document: dict[str, Any],
) -> None:
    public = {("/api/v1/auth/login", "post"), ("/api/v1/health", "get")}
    public |= {("/api/v1/openapi.json", "get"), ("/api/v1/forms", "get")}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (path, method) in public or not isinstance(operation, dict):
                continue
            if operation["responses"].keys() == {"405", "400", "503"}:
                continue  # the append-only audit log refuses everyone alike
            assert operation.get("security") == [{"bearer": []}], (path, method)
            assert "401" in operation["responses"], (path, method)


def test_every_path_parameter_of_a_route_is_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        names = {part[1:-1] for part in path.replace(".", "/").split("/") if part[:1] == "{"}
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)


def test_no_schema_claims_unknown_fields_are_refused(document: dict[str, Any]) -> None:
    """The server ignores unknown fields (batch, change, record); the document must not
    claim `additionalProperties: false`."""

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            assert node.get("additionalProperties") is not False, where
            for key, child in node.items():
                walk(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}.{index}")

    walk(document, "")


def test_an_undocumented_route_stops_the_build(app: Any) -> None:
    from flask import Blueprint

    from server.api.openapi import UndocumentedRoute, build_spec

    fresh = create_app({**app.config, "TESTING": True})
    extra = Blueprint("extra", __name__, url_prefix="/api/v1")

    @extra.get("/undocumented")
    def undocumented() -> str:
        return "x"

    fresh.register_blueprint(extra)
    with pytest.raises(UndocumentedRoute, match="undocumented"):
        build_spec(fresh)


def test_shared_error_answers_are_named_once_and_every_reference_resolves(
    document: dict[str, Any],
) -> None:
    from server.api.openapi import SHARED_ANSWERS, SHARED_ERRORS

    named = document["components"]["responses"]
    assert set(SHARED_ERRORS) | set(SHARED_ANSWERS) <= set(named)
    shared = set(SHARED_ERRORS.values())
    referenced = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for code, response in operation["responses"].items():
                if "$ref" in response:
                    name = response["$ref"].removeprefix("#/components/responses/")
                    assert name in named, (path, method, code)
                    referenced.add(name)
                else:  # a shared answer written out again in a view's docstring
                    assert response["description"] not in shared, (path, method, code)
    assert referenced == set(SHARED_ERRORS) | set(SHARED_ANSWERS), "a shared answer no one uses"
