"""LocalStore: the device store, one class composed of the parts in this package, and
`open_store`, the contract store factory.

Each part is a class over the one `DeviceDatabase` (same file, same transaction); they work
together through `self` as one store always did: an edit (outbox) drops the record's
rejection and clears its send-back, a stored answer opens or settles a conflict, settling a
conflict queues a change. `sync_state` reads all of them, so it lives here.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from offline_client.local.authority import Authority
from offline_client.local.conflicts import Conflicts
from offline_client.local.database import CONFLICT, IN_FLIGHT, PENDING, REJECTED, SYNCED
from offline_client.local.outbox import Outbox
from offline_client.local.pull import Pull
from offline_client.local.rejections import Rejections
from offline_client.local.send_backs import SendBacks


class LocalStore(Outbox, Pull, Conflicts, Rejections, SendBacks, Authority):
    """The device store. Open it with `open_store(path)`."""

    def sync_state(self, collection: str, record_id: str) -> str:
        if self.rejection(collection, record_id) is not None:
            return REJECTED
        entry = self.outbox_entry(collection, record_id)
        if entry is not None:
            return IN_FLIGHT if entry.in_flight else PENDING
        for view in self.conflict_views(status="open"):
            if view.conflict.collection == collection and view.conflict.record_id == record_id:
                return CONFLICT
        return SYNCED


def open_store(path: str | os.PathLike[str], *, any_thread: bool = False) -> LocalStore:
    """Open (creating if need be) the device store at `path`: the contract store factory.

    `any_thread` lets a thread other than the opener use it (never two at once): the load
    tests hand a tablet from the thread that drove it to the one that checks it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(sqlite3.connect(target, check_same_thread=not any_thread))
    # WAL: a reader (`status`) never waits for a sync; synchronous=FULL: a committed
    # transaction survives a power cut, which is what "nothing is lost" rests on.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    return LocalStore(db)
