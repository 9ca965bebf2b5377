"""Generic value safety: what the server can store and send back, checked before it accepts.

A record the server accepts must be servable to every device for ever after (issue 13): a
string holding a lone UTF-16 surrogate (the JSON escape `\\ud800`) cannot be encoded as
UTF-8, a NUL cannot be held by PostgreSQL text or JSONB, an integer beyond 64 bits cannot be
held by a BIGINT or most JSON readers, and NaN or Infinity are not JSON at all. Any of them,
accepted once, would make every later pull that covers the record fail. So every value of a
pushed change is checked here, where a batch is parsed, and refused with the field named.

The JSON reader (`sync.batch.decode`) hands over the numbers it cannot represent as
markers instead of failing the whole body (an integer literal of thousands of digits is over
Python's int-parsing limit), so that such a value is one record's field error, not a 500.

Also here: the ASCII-digit test for query parameters, cursors and clock strings.
`str.isdigit()` is true for "²" and "٣", which `int()` then refuses or reads as something
else; only `[0-9]+` is a number on the wire.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

FieldErrors = dict[str, list[str]]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Nesting deeper than this is refused as a whole body: no form needs more than four levels,
# and Python's JSON reader, marshmallow and the encoders recurse once a level.
MAX_DEPTH = 32
# A JSON integer literal of more digits than this is beyond 64 bits whatever its value.
_MAX_INT64_DIGITS = 19

_ASCII_DIGITS = re.compile(r"[0-9]+")

MESSAGE_SURROGATE = "must be valid Unicode text (a lone UTF-16 surrogate at character {at})"
MESSAGE_NUL = "must not contain NUL characters"
MESSAGE_INT = "must be an integer from -2^63 to 2^63-1"
MESSAGE_NUMBER = "must be a finite number (NaN and Infinity are not JSON)"


class OutOfRangeNumber:
    """A JSON number the reader kept as text: an integer of more than 19 digits, an
    overflowing float (`1e400`), NaN or Infinity. Never stored; the value check reports it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def is_integer(self) -> bool:
        return _ASCII_DIGITS.fullmatch(self.text.lstrip("-")) is not None

    def __repr__(self) -> str:
        return f"OutOfRangeNumber({self.text[:24]!r}{'…' if len(self.text) > 24 else ''})"


def parse_int(text: str) -> int | OutOfRangeNumber:
    """`json.loads(parse_int=…)`: an int, or a marker for a literal beyond 64 bits (never
    converted: a literal of thousands of digits is over Python's int-parsing limit)."""
    if len(text.lstrip("-")) > _MAX_INT64_DIGITS:
        return OutOfRangeNumber(text)
    return int(text)


def parse_float(text: str) -> float | OutOfRangeNumber:
    """`json.loads(parse_float=…)`: a finite float, or a marker (`1e400` overflows)."""
    value = float(text)
    return value if math.isfinite(value) else OutOfRangeNumber(text)


def parse_constant(text: str) -> OutOfRangeNumber:
    """`json.loads(parse_constant=…)`: NaN, Infinity and -Infinity are not JSON."""
    return OutOfRangeNumber(text)


def ascii_digits(text: object, *, max_digits: int | None = None) -> bool:
    """Whether `text` is a string of ASCII digits only (at most `max_digits` of them)."""
    if not isinstance(text, str) or _ASCII_DIGITS.fullmatch(text) is None:
        return False
    return max_digits is None or len(text) <= max_digits


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored and served, or None when it can."""
    if "\x00" in text:
        return MESSAGE_NUL
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return MESSAGE_SURROGATE.format(at=exc.start)
    return None


def value_problem(value: object) -> str | None:
    """Why one scalar JSON value cannot be stored and served, or None when it can."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else MESSAGE_INT
    if isinstance(value, float):
        return None if math.isfinite(value) else MESSAGE_NUMBER
    if isinstance(value, OutOfRangeNumber):
        return MESSAGE_INT if value.is_integer else MESSAGE_NUMBER
    if isinstance(value, dict | list):
        return None
    return f"must be a JSON value, not {type(value).__name__}"


def _walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Every value inside `value` with its field path, without recursion."""
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        yield here, item
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((f"{here}.{key}" if here else str(key), child))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((f"{here}.{index}" if here else str(index), child))


def unsafe_values(value: object, path: str = "") -> FieldErrors:
    """Field errors for every string, key and number inside `value` that cannot be stored
    and served (empty when all can), with paths like `data.notes`. Keys are checked too:
    they are stored and served like the values."""
    errors: FieldErrors = {}
    for here, item in _walk(value, path):
        problem = value_problem(item)
        if problem is not None:
            errors.setdefault(safe_path(here), []).append(problem)
        if isinstance(item, dict):
            for key in item:
                key_problem = text_problem(key) if isinstance(key, str) else "must be text"
                if key_problem is not None:
                    errors.setdefault(safe_path(here), []).append(f"a field name {key_problem}")
    return errors


_UNSERVABLE = re.compile("[\x00\ud800-\udfff]")


def servable_text(text: str) -> str:
    """`text` with every lone surrogate and NUL replaced by U+FFFD, so it can be served."""
    if _UNSERVABLE.search(text) is None:
        return text  # the same object: a subclass (markupsafe.Markup) stays what it is
    return _UNSERVABLE.sub("\ufffd", text)


def safe_path(path: str) -> str:
    """A field path that can itself be served (a hostile field name may hold anything)."""
    return servable_text(path) if path else "_schema"


# --- the screen over JSON text (issue 14) -------------------------------------------------
# Walking every value of a 2,000-change push in Python cost more than validating the visits.
# Most bodies need no walk: a NUL or a lone surrogate reaches a decoded string only as itself
# (a surrogate in text handed over as str; a raw NUL is not JSON) or through a `\u0000` /
# `\ud800`-`\udfff` escape, which the text shows at C speed; numbers are seen one by one by
# the reader's hooks anyway (`NumberHooks`). A hit only means "walk", never a refusal.
_UNSAFE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def text_may_hold_unsafe_text(text: str) -> bool:
    """Whether JSON `text` may decode to a string (or key) that cannot be stored and
    served; False is a guarantee, True means "walk"."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return "\\u" in text and _UNSAFE_ESCAPE.search(text) is not None


class NumberHooks:
    """`json.loads` hooks for one reading that also note whether any number came back as
    an `OutOfRangeNumber` (one of them means "walk")."""

    __slots__ = ("unsafe",)

    def __init__(self) -> None:
        self.unsafe = False

    def parse_int(self, text: str) -> int | OutOfRangeNumber:
        value = parse_int(text)
        if isinstance(value, OutOfRangeNumber) or not INT64_MIN <= value <= INT64_MAX:
            self.unsafe = True
        return value

    def parse_float(self, text: str) -> float | OutOfRangeNumber:
        value = parse_float(text)
        if isinstance(value, OutOfRangeNumber):
            self.unsafe = True
        return value

    def parse_constant(self, text: str) -> OutOfRangeNumber:
        self.unsafe = True
        return parse_constant(text)


def nests_deeper(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays in `value` nest deeper than `limit` levels, read level
    by level over the containers only (no paths, no scalars visited one by one): the
    check every body pays."""
    level: list[dict[Any, Any] | list[Any]] = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        if not level:
            return False
        below: list[dict[Any, Any] | list[Any]] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below += [item for item in items if isinstance(item, dict | list)]
        level = below
    return bool(level)
