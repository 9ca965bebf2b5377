"""Request parsing every API module shares: the JSON body (plain or gzip, within the size
limit) and bounded whole-number query arguments, each refused in the one envelope; and the
app's JSON reader and writer, total over hostile input (issue 13)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider

from server.api.errors import ApiError
from sync.batch import BodyDecodeError, BodyTooLarge, Decoded, decode_screened, loads
from sync.protocol import ErrorCode
from sync.values import ascii_digits, unsafe_values

# A whole number in a query is ASCII digits, at most this many (issue 13: `str.isdigit()`
# took "²", which `int()` then refused with a 500).
MAX_QUERY_DIGITS = 12


class JSONProvider(DefaultJSONProvider):
    """The app's JSON: Flask's `request.get_json` reads with the sync protocol's total
    reader (nesting beyond 32 levels, or not JSON, is a ValueError, which Flask answers
    400, or None when silent); an answer that holds text UTF-8 cannot carry (a record
    stored before issue 13 with a lone surrogate) is written with JSON escapes instead,
    losslessly, rather than failing the response."""

    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode("utf-8") if isinstance(s, bytes) else s
        return loads(text)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if text.isascii():
            return text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text


def json_body() -> Any:
    """The request's JSON body: 415 unless it says application/json, 413 over the limit,
    400 if it is not JSON (or not gzip when it says so) or nests deeper than 32 levels,
    400 `validation_failed` naming every value that cannot be stored and served
    (sync.values)."""
    decoded = screened_json_body()
    if not decoded.values_safe:
        unsafe = unsafe_values(decoded.value)
        if unsafe:
            raise ApiError(
                400, ErrorCode.VALIDATION, "values that cannot be stored or served", errors=unsafe
            )
    return decoded.value


def screened_json_body() -> Decoded:
    """`json_body` without the value check, with what the screen of its text found: a push
    checks its changes one by one (a bad value is that change's rejection), and only when
    the screen could not vouch for them."""
    if request.mimetype != "application/json":
        raise ApiError(
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}",
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        return decode_screened(
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
    if not ascii_digits(raw, max_digits=MAX_QUERY_DIGITS) or not low <= int(raw) <= high:
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            f"{name} must be a whole number from {low} to {high}",
            errors={name: [f"must be from {low} to {high}"]},
        )
    return int(raw)
