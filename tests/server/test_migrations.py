"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import app_config


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migrating_an_empty_database_matches_the_models(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db

    app = create_app(app_config(backend, tmp_path, request))
    with app.app_context():
        init_db()
        init_db()  # a second run finds nothing to do
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.session.remove()
        db.engine.dispose()
    assert diff == []
