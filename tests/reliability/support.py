"""Shared pieces of the reliability tests."""

from __future__ import annotations

import os

import pytest

from tests.conftest import BACKENDS

LONG = os.environ.get("ZHUXUN_LONG_TESTS") == "1"

# Transport faults and login throttling do not depend on the database: SQLite in
# `make test`, both backends in `make test-long` (the machine is shared).
sqlite_unless_long = pytest.mark.parametrize("backend", BACKENDS if LONG else ["sqlite"])
