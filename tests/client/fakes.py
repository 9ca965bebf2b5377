"""A stand-in server for the sync loop's tests: another store, as the authority.

The real server is exercised in tests/client/test_cli_against_server.py; this one lets the
loop's edge cases (lost answers, batches, outages) run in milliseconds.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from offline_client.errors import ServerUnreachable
from offline_client.local import LocalStore
from sync.protocol import ErrorCode, Status
from sync.records import ChangeResult, parse_change


class FakeServer:
    def __init__(self, authority: LocalStore, *, bad_places: frozenset[str] = frozenset()):
        self.authority = authority
        self.bad_places = bad_places
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_next_pushes = 0  # raise before applying (the request never arrived)
        self.lose_next_answers = 0  # apply, then raise (the answer never came back)
        self.fail_next_pulls = 0

    def push(self, body: bytes, *, compressed: bool = True) -> dict[str, Any]:
        if self.fail_next_pushes:
            self.fail_next_pushes -= 1
            raise ServerUnreachable("ConnectionError", 1)
        wire = json.loads(gzip.decompress(body) if compressed else body)
        self.batches.append(wire["changes"])
        results = []
        for index, raw in enumerate(wire["changes"]):
            change = parse_change(index, raw)
            assert not isinstance(change, ChangeResult)
            if change.data and change.data.get("place") in self.bad_places:
                result = ChangeResult(
                    change.collection,
                    change.id,
                    change.change_id,
                    Status.REJECTED,
                    code=ErrorCode.UNKNOWN_REFERENCE,
                    errors={"place": ["unknown place"]},
                )
            else:
                result = self.authority.apply(change, origin="D0001")
            results.append(result.to_wire())
        if self.lose_next_answers:
            self.lose_next_answers -= 1
            raise ServerUnreachable("ReadTimeout", 1)
        return {"batch_id": wire["batch_id"], "results": results, "clock": self.authority.tick()}

    def pull(self, cursor: str | None, limit: int) -> dict[str, Any]:
        if self.fail_next_pulls:
            self.fail_next_pulls -= 1
            raise ServerUnreachable("ConnectionError", 1)
        page = self.authority.changes_since(cursor, limit)
        changes = [
            {
                "collection": r.collection,
                "id": r.id,
                "version": r.version,
                "deleted": r.deleted,
                "data": r.data,
            }
            for r in page.records
        ]
        return {"changes": changes, "cursor": page.cursor, "has_more": page.has_more}
