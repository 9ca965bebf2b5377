"""The device's own SQLite copy (built on sqlite-utils), one module a concept:

- `database`: one table a collection (`visits`, `leave`, `trainings`, and the reference
  data pulled from the server: `places`, `assignments`, `flags`, `doctors`, `reviews`),
  the schema of every table, transactions, and `meta` (the device id, the hybrid logical
  clock, the pull cursor, the local change sequence, the last successful sync);
- `outbox`: local edits and the change each queues; pushed batches and their answers;
- `rejections`: changes the server refused, kept visible until edited or deleted;
- `conflicts`: both sides of each conflict, and settling it;
- `send_backs`: visits a reviewer sent back, until the doctor corrects them;
- `pull`: each pulled page stored with its cursor;
- `authority`: set apart, the half of the storage contract only the contract tests (and
  test fakes standing in for a server) use: `apply` and `changes_since`;
- `device`: `LocalStore`, composed of the above, and `open_store`.

Every write of a record and the change it queues is one transaction, and so is every
stored answer and every pulled page with its cursor: a process killed at any point leaves
either all of it or none of it.

`LocalStore` implements the storage contract `sync.storage.SyncStore`, so the same contract
tests (`sync/storage_testing.py`) run against it as against the server's stores.
"""

from offline_client.local.conflicts import ConflictView
from offline_client.local.database import (
    CONFLICT,
    IN_FLIGHT,
    KNOWN_COLLECTIONS,
    LOCAL_ONLY_ORIGIN,
    PENDING,
    REJECTED,
    SYNCED,
    UnknownCollection,
    new_id,
)
from offline_client.local.device import LocalStore, open_store
from offline_client.local.outbox import AnswerOutcome, OutboxEntry
from offline_client.local.rejections import RejectedChange
from offline_client.local.send_backs import SEND_BACK, SendBack

__all__ = [
    "CONFLICT",
    "IN_FLIGHT",
    "KNOWN_COLLECTIONS",
    "LOCAL_ONLY_ORIGIN",
    "PENDING",
    "REJECTED",
    "SEND_BACK",
    "SYNCED",
    "AnswerOutcome",
    "ConflictView",
    "LocalStore",
    "OutboxEntry",
    "RejectedChange",
    "SendBack",
    "UnknownCollection",
    "new_id",
    "open_store",
]
