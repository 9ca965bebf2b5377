"""Fixtures and builders of the offline client's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline_client.local import LocalStore, new_id, open_store


def make_visit(**overrides: Any) -> dict[str, Any]:
    """A valid visit record (form `visit` version 1); override any field."""
    visit: dict[str, Any] = {
        "doctor": "D0001",
        "place": "450123101201",
        "kind": "patrol",
        "check_in": "2026-03-09T08:00:00+08:00",
        "check_out": "2026-03-09T12:00:00+08:00",
        "patients": 9,
        "device_id": "tab1",
        "form_version": 1,
        "recorded_at": "2026-03-09T12:03:00+08:00",
    }
    visit.update(overrides)
    return visit


def accepted(change, version: int = 1) -> dict[str, Any]:
    """The server's wire answer accepting `change`."""
    return {
        "collection": change.collection,
        "id": change.id,
        "change_id": change.change_id,
        "status": "accepted",
        "version": version,
    }


def rejected(change, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "collection": change.collection,
        "id": change.id,
        "change_id": change.change_id,
        "status": "rejected",
        "code": "validation_failed",
        "errors": errors or {"data.place": ["unknown place"]},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    local = open_store(tmp_path / "client.sqlite")
    yield local
    local.close()


@pytest.fixture
def record_id() -> str:
    return new_id()
