"""Batch encoding on the wire: JSON, optionally gzip, with hard limits on both sizes.

Decompression is bounded, so a gzip bomb costs at most `max_bytes` of memory and is
refused with the limit named.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

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


def decode(data: bytes, *, content_encoding: str | None, max_bytes: int) -> Any:
    """Bytes of a request or response body → JSON value, within `max_bytes`."""
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
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyDecodeError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
