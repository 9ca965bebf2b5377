"""The storage contract suite (`sync.storage_testing.StorageContractTests`), run against
every implementation of `sync.storage.SyncStore`: the server's store on SQLite and on
PostgreSQL, and the offline client's store (Kinto's pattern: kinto/core/storage/testing.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sync.storage import SyncStore
from sync.storage_testing import StorageContractTests
from tests.conftest import app_config


def _server_store(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> Iterator[SyncStore]:
    # Imported here: the server's store may move (issue 11); only this function names it.
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db
    from server.records.sql_store import SqlSyncStore

    app = create_app(app_config(backend, tmp_path, request))
    with app.app_context():
        init_db()
        yield SqlSyncStore(db.session)
        db.session.remove()
        db.engine.dispose()


class TestServerStoreOnSQLite(StorageContractTests):
    @pytest.fixture
    def store(self, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[SyncStore]:
        yield from _server_store("sqlite", tmp_path, request)


@pytest.mark.postgres
class TestServerStoreOnPostgreSQL(StorageContractTests):
    @pytest.fixture
    def store(self, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[SyncStore]:
        yield from _server_store("postgres", tmp_path, request)


class TestClientStore(StorageContractTests):
    @pytest.fixture
    def store(self, tmp_path: Any) -> Iterator[SyncStore]:
        from offline_client.local import open_store

        store = open_store(tmp_path / "device.sqlite3")
        yield store
        store.close()
