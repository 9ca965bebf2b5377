"""One error envelope for every error answer, with a stable machine code (STYLE.md 4).

Domain code raises `ApiError` (or a domain exception translated here); nothing else
builds an error response, and an unexpected exception becomes a logged 500 in the same
envelope rather than an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from sync.protocol import ErrorCode

log = logging.getLogger(__name__)

_ZH = {
    ErrorCode.INVALID_REQUEST: "请求格式不正确",
    ErrorCode.INVALID_JSON: "请求内容不是有效的 JSON",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "请使用 application/json",
    ErrorCode.BODY_TOO_LARGE: "请求内容过大",
    ErrorCode.BATCH_TOO_LARGE: "一次同步的记录过多",
    ErrorCode.VALIDATION: "数据校验未通过",
    ErrorCode.NOT_FOUND: "未找到",
    ErrorCode.UNAUTHORIZED: "请先登录",
    ErrorCode.FORBIDDEN: "无权访问",
    ErrorCode.INVALID_CURSOR: "同步游标无效",
    ErrorCode.RATE_LIMITED: "尝试次数过多，请稍后再试",
    ErrorCode.STALE_VERSION: "记录已被他人修改",
    ErrorCode.INTERNAL: "服务器内部错误",
    ErrorCode.DATABASE_UNAVAILABLE: "数据库暂时不可用，请稍后重试",
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message, optional field errors."""

    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        *,
        errors: dict[str, list[str]] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.details = details
        self.headers = headers or {}


def envelope(
    code: ErrorCode | str,
    message: str,
    *,
    errors: dict[str, list[str]] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(code), "message": message}
    zh = _ZH.get(code) if isinstance(code, ErrorCode) else None
    if zh:
        body["message_zh"] = zh
    if errors:
        body["errors"] = errors
    if details:
        body["details"] = details
    return {"error": body}


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
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        return error_response(
            exc.status,
            exc.code,
            exc.message,
            errors=exc.errors,
            details=exc.details,
            headers=exc.headers,
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
