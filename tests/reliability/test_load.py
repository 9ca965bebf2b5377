"""Load: a hundred tablets syncing at once against the production server (`zhuxun serve`:
gunicorn, several workers × threads), on SQLite and on PostgreSQL. No 5xx, no "database is
locked" reaching a tablet, no lost write, no write held twice, every tablet converges.

The latencies are printed (`-s` shows them; docs/reliability.md records them), never
asserted: timing belongs in bench/. `make test-long` runs a bigger fleet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_config
from tests.reliability.support import (
    LONG,
    Fleet,
    Served,
    assert_converged,
    prepare_database,
    pull_everything,
    run_load,
    served_url,
    sync_until_quiet,
)

# (doctors, tablets per doctor, visits a round, rounds): 100 tablets × 2 rounds of 2 visits
# in `make test`; 200 tablets × 4 rounds of 5 visits in `make test-long`.
SIZE = (100, 2, 5, 4) if LONG else (50, 2, 2, 2)
WORKERS, THREADS = 3, 4

pytestmark = pytest.mark.timeout(1200 if LONG else 300)


@pytest.fixture
def served(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Served, Any]]:
    doctors = SIZE[0]
    database = prepare_database(app_config(backend, tmp_path, request), Fleet(doctors))
    server = Served(
        served_url(database, name="zhuxun-load"),
        tmp_path / "server.log",
        workers=WORKERS,
        threads=THREADS,
    )
    try:
        yield server.start(), database
    finally:
        server.stop()


def test_a_hundred_tablets_syncing_at_once_lose_nothing_and_see_no_server_error(
    served: tuple[Served, Any], backend: str, tmp_path: Path
) -> None:
    server, database = served
    doctors, per_doctor, visits, rounds = SIZE
    fleet = Fleet(doctors)
    devices = tmp_path / "devices"
    devices.mkdir()

    result = run_load(
        devices,
        lambda _i: server.url,
        fleet,
        tablets_per_doctor=per_doctor,
        visits=visits,
        rounds=rounds,
    )
    try:
        print()
        print(result.report(f"load on {backend}, {WORKERS} workers x {THREADS} threads"))
        assert not result.errors, "\n".join(result.errors[:10])
        assert len(result.tablets) == doctors * per_doctor
        assert not result.log.server_errors(), result.log.server_errors()[:10]
        # A dropped connection now and then is retried (gunicorn's gthread worker resets a
        # kept-alive connection under load: benoitc/gunicorn#2676); a timeout would mean a
        # request that hung for a minute.
        assert not [c for c in result.log.calls if c.status == 0 and "Timeout" in c.detail]
        assert "Traceback" not in server.log_text()

        sync_until_quiet(result.tablets)
        assert not result.log.server_errors(), result.log.server_errors()[:10]
        on_server = pull_everything(server.url, "admin")
        assert_converged(result.tablets, on_server, rounds=rounds, visits=visits)
        expected = doctors * per_doctor * visits * rounds
        assert len(on_server) == expected
        held = database.scalar("select count(*) from sync_records where collection = 'visits'")
        projected = database.scalar("select count(*) from visits")
        assert held == projected == expected, "each visit held once, in the log and the table"
    finally:
        for tablet in result.tablets:
            tablet.close()
