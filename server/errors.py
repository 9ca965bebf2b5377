"""The one family of domain errors (Warehouse's exceptions that carry data, Kinto's one
`ERRORS` enum): every error a domain module raises is a `DomainError` with a stable
`ErrorCode`, an English message, the Chinese one where a person reads it, and, for bad
input, the field paths that are wrong.

No Flask and no HTTP status here: `server/api/errors.py` is the one translator to the JSON
envelope, `server/web/errors.py` to an error page."""

from __future__ import annotations

from typing import Any, ClassVar

from sync.protocol import ErrorCode

# The person-readable Chinese message of each code (STYLE.md 4).
MESSAGES_ZH: dict[ErrorCode, str] = {
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
    ErrorCode.UNKNOWN_COLLECTION: "未知的数据类别",
    ErrorCode.FORBIDDEN_RECORD: "无权修改这条记录",
    ErrorCode.UNKNOWN_REFERENCE: "引用的医生、地点或任务不存在",
    ErrorCode.DUPLICATE_IN_BATCH: "同一批次中记录重复",
    ErrorCode.TOKEN_EXPIRED: "登录已过期，请刷新后重试",
    ErrorCode.TOKEN_REVOKED: "登录已失效，请重新登录",
    ErrorCode.CONFLICT_NOT_OPEN: "该冲突已处理",
    ErrorCode.WRONG_STATE: "当前状态下不能执行此操作",
    ErrorCode.DEVICE_REVOKED: "此设备已被管理员停用，请联系县级管理员",
    ErrorCode.PASSWORD_CHANGE_REQUIRED: "请先修改一次性密码",
}
# Every error carries a Chinese message (issue 13: the 401s of an expired or revoked token
# had none); a code outside ErrorCode gets this one.
MESSAGE_ZH_FALLBACK = "请求未能完成"

FieldErrors = dict[str, list[str]]


class DomainError(Exception):
    """Something asked of the domain that cannot be done; `code` says what kind."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_REQUEST

    def __init__(
        self,
        message: str,
        errors: FieldErrors | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.details = details

    @property
    def message_zh(self) -> str:
        return MESSAGES_ZH.get(self.code, MESSAGE_ZH_FALLBACK)


class InvalidInput(DomainError):
    """Input that is not valid; `errors` maps each field path to what is wrong."""

    code = ErrorCode.VALIDATION


class NotFound(DomainError):
    """No such subject, or one outside the actor's scope (the same answer for both)."""

    code = ErrorCode.NOT_FOUND


class Forbidden(DomainError):
    """The actor's role may not do this at all."""

    code = ErrorCode.FORBIDDEN


class WrongState(DomainError):
    """The subject is not in a state this decision applies to (e.g. a flag not open, leave
    decided the same way already, a record that moved on meanwhile)."""

    code = ErrorCode.WRONG_STATE


def envelope(
    code: ErrorCode | str,
    message: str,
    *,
    errors: FieldErrors | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one error envelope: {"error": {code, message, message_zh, errors?, details?}}."""
    body: dict[str, Any] = {"code": str(code), "message": message}
    body["message_zh"] = MESSAGES_ZH.get(code, MESSAGE_ZH_FALLBACK)  # type: ignore[call-overload]
    if errors:
        body["errors"] = errors
    if details:
        body["details"] = details
    return {"error": body}
