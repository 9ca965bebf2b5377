"""The one translator from errors to HTTP answers in the one envelope (STYLE.md 4).

Domain code raises a `DomainError` (server/errors.py); HTTP modules raise `ApiError`, a
`DomainError` that carries its status, for what only HTTP knows (a body that is not JSON, a
missing token). Nothing else builds an error response, and an unexpected exception becomes
a logged 500 in the same envelope rather than an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from server.errors import (
    DomainError,
    FieldErrors,
    Forbidden,
    InvalidInput,
    NotFound,
    WrongState,
    envelope,
)
from sync.protocol import ErrorCode

log = logging.getLogger(__name__)

# The HTTP status of each family of domain errors; any other DomainError is a bad request.
STATUS: dict[type[DomainError], int] = {
    InvalidInput: 400,
    NotFound: 404,
    Forbidden: 403,
    WrongState: 409,
}


class ApiError(DomainError):
    """An error answer only HTTP knows: status, stable code, message, field errors."""

    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        *,
        errors: FieldErrors | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, errors, details=details)
        self.status = status
        self.code = code  # type: ignore[misc]
        self.headers = headers or {}


def status_of(exc: DomainError) -> int:
    """The HTTP status of a domain error: its family's, the nearest one up its classes."""
    if isinstance(exc, ApiError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(
    status: int,
    code: ErrorCode | str,
    message: str,
    **kwargs: Any,
) -> ResponseReturnValue:
    headers = kwargs.pop("headers", None) or {}
    return jsonify(envelope(code, message, **kwargs)), status, headers


_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID_REQUEST,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
}


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> ResponseReturnValue:
        return error_response(
            status_of(exc),
            exc.code,
            exc.message,
            errors=exc.errors,
            details=exc.details,
            headers=getattr(exc, "headers", None),
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, ErrorCode.INVALID_REQUEST)
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the body is larger than the limit of {limit} bytes"
            return error_response(status, code, message, details={"limit_bytes": limit})
        return error_response(status, code, message)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError) -> ResponseReturnValue:
        # A locked or unreachable database is a retryable condition for the client, not
        # a crash: nothing of the request was committed.
        log.warning("database unavailable: %s", exc)
        return error_response(
            503,
            ErrorCode.DATABASE_UNAVAILABLE,
            "the database is busy or unavailable; nothing was changed, try again shortly",
            headers={"Retry-After": "2"},
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")
        return error_response(500, ErrorCode.INTERNAL, "an unexpected error; it has been logged")
