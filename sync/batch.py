"""Batch encoding on the wire: JSON, optionally gzip, with hard limits on both sizes.

Decompression is bounded, so a gzip bomb costs at most `max_bytes` of memory and is
refused with the limit named. Reading is total (issue 13): nesting deeper than
`sync.values.MAX_DEPTH` is refused as a whole body, and numbers that cannot be represented
(integer literals beyond 64 bits, `1e400`, NaN) come back as `sync.values.OutOfRangeNumber`
markers for the value check to name, never as an exception.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

from sync.values import MAX_DEPTH, NumberHooks, nests_deeper, text_may_hold_unsafe_text

GZIP = "gzip"


class BodyTooLarge(ValueError):
    """A body, or its decompressed form, over the size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than the limit of {limit} bytes (after gzip)")
        self.limit = limit


class BodyDecodeError(ValueError):
    """A body that is not valid gzip, UTF-8 or JSON."""


def encode(obj: Any, *, compress: bool = True) -> bytes:
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def gunzip_bounded(data: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise BodyDecodeError(f"the body is not valid gzip: {exc}") from exc
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise BodyTooLarge(max_bytes)
    if not decompressor.eof:
        raise BodyDecodeError("the gzip body is truncated")
    return out


@dataclass(frozen=True, slots=True)
class Decoded:
    """A JSON value read from a body, and what the screen of its text found: with
    `values_safe`, no value inside it can fail `sync.values.unsafe_values`, so a caller
    may skip that walk (issue 14)."""

    value: Any
    values_safe: bool


def decode(data: bytes, *, content_encoding: str | None, max_bytes: int) -> Any:
    """Bytes of a request or response body → JSON value, within `max_bytes`."""
    return decode_screened(data, content_encoding=content_encoding, max_bytes=max_bytes).value


def decode_screened(data: bytes, *, content_encoding: str | None, max_bytes: int) -> Decoded:
    """`decode`, with what the screen of the text found."""
    if len(data) > max_bytes:
        raise BodyTooLarge(max_bytes)
    encoding = (content_encoding or "").strip().lower()
    if encoding == GZIP:
        data = gunzip_bounded(data, max_bytes)
    elif encoding not in ("", "identity"):
        raise BodyDecodeError(f"unsupported Content-Encoding {content_encoding!r}; use gzip")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyDecodeError(f"the body is not UTF-8 at byte {exc.start}") from exc
    return loads_screened(text)


def loads(text: str) -> Any:
    """JSON text → value, total: BodyDecodeError for anything that is not a JSON value of at
    most MAX_DEPTH levels; numbers it cannot represent as `OutOfRangeNumber` markers."""
    return loads_screened(text).value


def loads_screened(text: str) -> Decoded:
    """`loads`, with what the screen of the text and the number hooks found."""
    numbers = NumberHooks()
    try:
        value = json.loads(
            text,
            parse_int=numbers.parse_int,
            parse_float=numbers.parse_float,
            parse_constant=numbers.parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise BodyDecodeError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        # The C reader counts its levels against the interpreter's recursion limit.
        raise BodyDecodeError(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    if nests_deeper(value):
        raise BodyDecodeError(f"the body nests deeper than {MAX_DEPTH} levels")
    return Decoded(value, values_safe=not numbers.unsafe and not text_may_hold_unsafe_text(text))
