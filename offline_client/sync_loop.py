"""The sync loop: push the outbox in batches, then pull to the end (docs/sync-protocol.md).

Resumable at every step. A change stays in the outbox, frozen with its change id, until
its answer is stored, so a push cut off anywhere is sent again unchanged and the server
answers it once. Each pulled page is stored with its cursor in one transaction, so a pull
cut off anywhere starts again after the last page stored.

`ZHUXUN_CLIENT_CRASH_AT=before_push|after_push|mid_pull` makes the process die
(`os._exit(137)`, as a SIGKILL would) at that step; the durability tests use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offline_client.errors import ClientError, ServerRefused
from offline_client.local import LocalStore, RejectedChange, new_id
from offline_client.records import local_now
from offline_client.server_api import ServerAPI
from sync.batch import encode
from sync.protocol import (
    B_BATCH_ID,
    B_CHANGES,
    B_CLOCK,
    B_COMPACT,
    B_DEVICE_ID,
    B_SENT_AT,
    DEFAULT_MAX_BATCH_CHANGES,
    F_BASE_VERSION,
    F_CHANGE_ID,
    F_COLLECTION,
    F_ID,
    H_DEVICE_ID,
    MAX_PULL_LIMIT,
    ErrorCode,
)
from sync.records import JSON, Change, valid_id
from sync.storage import Conflict

CRASH_ENV = "ZHUXUN_CLIENT_CRASH_AT"
CRASH_POINTS = ("before_push", "after_push", "mid_pull")

Progress = Callable[[str], None]


class IncompleteAnswer(ClientError):
    """The server answered a batch without an answer for every change in it."""


def checkpoint(name: str) -> None:
    """Die here if the crash hook names this step (a test simulating a killed process)."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(137)


@dataclass(slots=True)
class SyncSummary:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    received: int = 0
    rejected: list[RejectedChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)  # raised by this push
    open_conflicts: int = 0  # all open conflicts on the device after the sync
    pending: int = 0  # changes still in the outbox (edits made during the sync)

    def to_json(self) -> JSON:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "received": self.received,
            "rejected": [r.to_json() for r in self.rejected],
            "conflicts": [
                {
                    "id": c.id,
                    "collection": c.collection,
                    "record_id": c.record_id,
                    "reason": c.reason,
                }
                for c in self.conflicts
            ],
            "open_conflicts": self.open_conflicts,
            "pending": self.pending,
        }


def run_sync(
    store: LocalStore,
    api: ServerAPI,
    *,
    batch_size: int = DEFAULT_MAX_BATCH_CHANGES,
    pull_limit: int = MAX_PULL_LIMIT,
    progress: Progress | None = None,
) -> SyncSummary:
    """Push everything in the outbox, then pull until the server has nothing more."""
    summary = SyncSummary()
    headers = getattr(getattr(api, "http", None), "headers", None)
    if headers is not None:
        # The pull leaves out what this device pushed itself (docs/sync-protocol.md, "Pull").
        headers[H_DEVICE_ID] = store.device_id
    push(
        store,
        api,
        summary,
        batch_size=min(batch_size, DEFAULT_MAX_BATCH_CHANGES),
        progress=progress,
    )
    pull(store, api, summary, limit=pull_limit, progress=progress)
    store.mark_synced()
    summary.open_conflicts = len(store.conflicts(status="open"))
    summary.pending = store.outbox_count()
    return summary


def push(
    store: LocalStore,
    api: ServerAPI,
    summary: SyncSummary,
    *,
    batch_size: int,
    progress: Progress | None = None,
) -> None:
    total = store.outbox_count()
    sent_ids: set[str] = set()
    while True:
        batch = store.take_batch(batch_size)
        if not batch:
            return
        if {change.change_id for change in batch} <= sent_ids:
            # Every change here was answered-for already in this run and is still in flight:
            # the server left them unanswered. Stop rather than loop; they stay queued.
            raise IncompleteAnswer(
                f"the server did not answer {len(batch)} change(s); they stay in the outbox"
            )
        body = {
            B_DEVICE_ID: store.device_id,
            B_BATCH_ID: new_id(),
            B_SENT_AT: local_now(),
            B_CLOCK: store.clock() or store.tick(),
            B_CHANGES: [_on_the_wire(change) for change in batch],
            B_COMPACT: True,
        }
        checkpoint("before_push")
        try:
            answer = api.push(encode(body))
        except ServerRefused as exc:
            if exc.status != 413 or batch_size == 1:
                raise
            # A server with a lower limit than ours: the changes are in flight, so the next,
            # smaller batch takes them again first, unchanged.
            batch_size = max(1, batch_size // 2)
            continue
        checkpoint("after_push")
        outcome = store.store_answers(_full_results(answer.get("results") or [], batch), batch)
        store.receive_clock(answer.get("clock"))
        sent_ids.update(change.change_id for change in batch)
        summary.sent += len(batch)
        summary.accepted += outcome.accepted
        summary.duplicates += outcome.duplicates
        summary.rejected.extend(outcome.rejected)
        if outcome.conflicts:
            wanted = set(outcome.conflicts)
            summary.conflicts.extend(c for c in store.conflicts(status=None) if c.id in wanted)
        if progress is not None and total > batch_size:
            progress(f"pushed {min(summary.sent, total)}/{total}")


def _on_the_wire(change: Change) -> JSON:
    """A change as pushed: its HLC stamp stands for its change id when it can (both are
    frozen with the change until answered; docs/sync-protocol.md, "Push"), and a new
    record's `base_version` 0 is left out: the server reads an absent one as 0 (issue 14,
    the wire: 0.35 bytes a visit of a 1,000-visit push)."""
    wire = change.to_wire()
    if change.hlc is not None and valid_id(change.hlc):
        del wire[F_CHANGE_ID]
    if wire.get(F_BASE_VERSION) == 0:
        del wire[F_BASE_VERSION]
    return wire


def _full_results(results: list[Any], batch: list[Change]) -> list[JSON]:
    """The answers to `batch` with the collection, id and change id of the device's own
    change filled in: a compact answer leaves them out (one result a change, in order); a
    full one names the change id the server used (the HLC stamp when none was sent)."""
    by_wire_id = {change.change_id: change for change in batch}
    by_wire_id.update({change.hlc: change for change in batch if change.hlc})
    full: list[JSON] = []
    for position, result in enumerate(results):
        if not isinstance(result, dict):
            continue
        named = result.get(F_CHANGE_ID)
        change = by_wire_id.get(named) if named else None
        if change is None and named is None and position < len(batch):
            change = batch[position]
        if change is None:
            continue  # an answer to no change of this batch
        full.append(
            {**result, F_COLLECTION: change.collection, F_ID: change.id,
             F_CHANGE_ID: change.change_id}
        )  # fmt: skip
    return full


def pull(
    store: LocalStore,
    api: ServerAPI,
    summary: SyncSummary,
    *,
    limit: int,
    progress: Progress | None = None,
) -> None:
    cursor = store.cursor
    pages = 0
    while True:
        try:
            page = api.pull(cursor, limit)
        except ServerRefused as exc:
            if exc.code != str(ErrorCode.INVALID_CURSOR) or not cursor:
                raise
            # The server no longer knows this cursor (a restored or rebuilt database): pull
            # everything again. Pulled records are idempotent, so this costs only time.
            cursor = None
            continue
        changes = page.get("changes") or []
        next_cursor = str(page.get("cursor") or cursor or "")
        store.apply_pulled(changes, next_cursor)
        store.receive_clock(page.get("clock"))
        summary.received += len(changes)
        pages += 1
        if not page.get("has_more"):
            if progress is not None and pages > 1:
                progress(f"pulled {summary.received}")
            return
        if progress is not None:
            progress(f"pulled {summary.received} …")
        checkpoint("mid_pull")
        if next_cursor == (cursor or ""):
            return  # a server that says "more" without moving the cursor; try next sync
        cursor = next_cursor
