"""A hybrid logical clock (Kulkarni et al., 2014) for stamping changes on devices and server.

An HLC timestamp is (physical milliseconds, logical counter, node). It never runs backwards,
stays close to wall time, and after `receive` it is after every stamp seen so far, so a
device whose wall clock is hours or years off still stamps its edits after what it pulled.
The server does not order changes by these stamps (a device clock cannot be trusted, see
STYLE.md); it orders them by its commit sequence and keeps the stamps for causality and
for measuring clock skew.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_WIDTH_MS = 15  # milliseconds since 1970 fit in 15 digits until the year 33658
_WIDTH_COUNTER = 10
# ASCII digits only, at most the encoded widths (`str.isdigit` takes "²", and a field of
# thousands of digits is over Python's int-parsing limit); the node is an id (issue 13).
_STAMP = re.compile(r"([0-9]{1,15})-([0-9]{1,10})-([A-Za-z0-9_.:\-]{1,64})")


class ClockFormatError(ValueError):
    """An HLC string that is not `<millis>-<counter>-<node>`."""


class ClockDriftError(ValueError):
    """A remote stamp further ahead of this node's wall clock than it accepts.

    Merging it would drag this clock years ahead for good (the known weak spot of HLCs),
    so the receiver refuses it; the data it came with is still accepted.
    """

    def __init__(self, ahead_ms: int) -> None:
        super().__init__(f"remote clock is {ahead_ms / 1000:.0f} s ahead")
        self.ahead_ms = ahead_ms


@dataclass(frozen=True, order=True, slots=True)
class HLCTimestamp:
    millis: int
    counter: int
    node: str

    def encode(self) -> str:
        """A string whose lexical order is the clock order (zero-padded fields)."""
        return f"{self.millis:0{_WIDTH_MS}d}-{self.counter:0{_WIDTH_COUNTER}d}-{self.node}"

    @classmethod
    def decode(cls, text: str) -> HLCTimestamp:
        match = _STAMP.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            shown = text[:80] if isinstance(text, str) else text
            raise ClockFormatError(f"not an HLC timestamp <millis>-<counter>-<node>: {shown!r}")
        return cls(int(match[1]), int(match[2]), match[3])

    @staticmethod
    def valid(text: object) -> bool:
        """Whether `text` is an encoded stamp `decode` reads."""
        return isinstance(text, str) and _STAMP.fullmatch(text) is not None

    def __str__(self) -> str:
        return self.encode()


def _wall_millis() -> int:
    return time.time_ns() // 1_000_000


class HybridLogicalClock:
    """One node's clock. `now()` stamps a local event, `receive()` merges a remote stamp."""

    def __init__(
        self,
        node: str,
        *,
        wall: Callable[[], int] = _wall_millis,
        last: HLCTimestamp | None = None,
    ) -> None:
        if not node or "-" in node:
            # The node id is the last field of the encoding; keep it unambiguous.
            node = node.replace("-", "") or "node"
        self.node = node
        self._wall = wall
        self._millis = last.millis if last else 0
        self._counter = last.counter if last else 0

    @property
    def last(self) -> HLCTimestamp:
        return HLCTimestamp(self._millis, self._counter, self.node)

    def now(self) -> HLCTimestamp:
        wall = self._wall()
        if wall > self._millis:
            self._millis, self._counter = wall, 0
        else:
            self._counter += 1
        return self.last

    def receive(self, remote: HLCTimestamp, *, max_drift_ms: int | None = None) -> HLCTimestamp:
        wall = self._wall()
        if max_drift_ms is not None and remote.millis - wall > max_drift_ms:
            raise ClockDriftError(remote.millis - wall)
        top = max(wall, self._millis, remote.millis)
        if top == self._millis == remote.millis:
            self._counter = max(self._counter, remote.counter) + 1
        elif top == self._millis:
            self._counter += 1
        elif top == remote.millis:
            self._counter = remote.counter + 1
        else:
            self._counter = 0
        self._millis = top
        return self.last
