"""Request parsing every API module shares: the JSON body (plain or gzip, within the size
limit) and bounded whole-number query arguments, each refused in the one envelope."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from server.api.errors import ApiError
from sync.batch import BodyDecodeError, BodyTooLarge, decode
from sync.protocol import ErrorCode


def json_body() -> Any:
    """The request's JSON body: 415 unless it says application/json, 413 over the limit,
    400 if it is not JSON (or not gzip when it says so)."""
    if request.mimetype != "application/json":
        raise ApiError(
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}",
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        return decode(
            request.get_data(cache=False),
            content_encoding=request.content_encoding,
            max_bytes=limit,
        )
    except BodyTooLarge as exc:
        raise ApiError(
            413, ErrorCode.BODY_TOO_LARGE, str(exc), details={"limit_bytes": exc.limit}
        ) from exc
    except BodyDecodeError as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, str(exc)) from exc


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """The query argument `name` as a whole number from `low` to `high` (`default` if
    absent); anything else is a 400 naming the argument."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"{name} must be a whole number from {low} to {high}",
            errors={name: [f"must be from {low} to {high}"]},
        )
    return int(raw)
