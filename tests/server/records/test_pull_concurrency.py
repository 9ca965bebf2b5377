"""Pull never skips a change, even when pushes commit concurrently and out of order.

Many writer threads push through real HTTP while reader threads pull continuously from
their own cursors; at the end every reader must have seen every accepted visit. With a
plain autoincrement cursor this fails: a transaction that took a lower number but commits
later is passed over by a reader whose cursor already moved beyond it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.builders import make_change, visit_data

WRITERS = 6
BATCHES_PER_WRITER = 8
BATCH = 10


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_concurrent_pushes_never_hide_a_change_from_a_pulling_device(api: Any) -> None:
    writers = [api("d1") for _ in range(WRITERS)]
    readers = [api("admin") for _ in range(3)]
    accepted: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def write(client: Any) -> None:
        try:
            for _ in range(BATCHES_PER_WRITER):
                changes = [make_change(visit_data(patients=i)) for i in range(BATCH)]
                answer = client.push(*changes)
                with lock:
                    accepted.update(r["id"] for r in answer["results"] if r["status"] == "accepted")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    seen: list[set[str]] = [set() for _ in readers]

    def read(index: int, client: Any) -> None:
        cursor = None
        try:
            while True:
                finished = done.is_set()
                changes, cursor = client.pull_all(cursor, limit=7)
                seen[index].update(c["id"] for c in changes if c["collection"] == "visits")
                if finished:
                    return
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    reader_threads = [threading.Thread(target=read, args=(i, c)) for i, c in enumerate(readers)]
    writer_threads = [threading.Thread(target=write, args=(c,)) for c in writers]
    for thread in reader_threads + writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(timeout=240)
    done.set()
    for thread in reader_threads:
        thread.join(timeout=240)
    assert not errors, errors
    assert len(accepted) == WRITERS * BATCHES_PER_WRITER * BATCH
    for index, ids in enumerate(seen):
        missing = accepted - ids
        assert not missing, f"reader {index} never saw {len(missing)} accepted visits"
