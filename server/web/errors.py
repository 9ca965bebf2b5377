"""Errors on the pages: a page in the reader's language with the message, never a stack
trace. A domain error gets the status the API gives it (server/api/errors.py)."""

from __future__ import annotations

from typing import Any

from flask import (
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from server.api.errors import status_of
from server.errors import DomainError
from server.extensions import db
from server.web.session import (
    _,
    bp,
    log,
)

# --- errors: a page with the message, never a stack trace ---------------------------


def _error_page(status: int, title: str, message: str, **extra: Any) -> ResponseReturnValue:
    back = None
    args = request.view_args or {}
    if "doctor" in args and "week" in args and status != 404:
        back = url_for(".review_week", doctor=args["doctor"], week=args["week"])
    return (
        render_template(
            "error.html", status=status, title=title, message=message, back=back, **extra
        ),
        status,
    )


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> ResponseReturnValue:
    """Every domain error as a page, with the status the API gives it (status_of)."""
    status = status_of(exc)
    titles = {403: _("Not allowed"), 404: _("Not found"), 409: _("This cannot be done now")}
    title = titles.get(status) or _("Please check the input")
    return _error_page(status, title, exc.message, errors=exc.errors)


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    return _error_page(
        400,
        _("The form has expired"),
        _(
            "The form was not sent from this page's latest version. Go back, reload the page "
            "and send it again."
        )
        + f" ({exc.description})",
    )


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
    return _error_page(
        429,
        _("Too many attempts"),
        _(
            "Too many sign-in attempts (%(limit)s). Wait a minute and try again.",
            limit=exc.description,
        ),
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    titles = {403: _("Not allowed"), 404: _("Not found"), 405: _("Not allowed")}
    return _error_page(
        status, titles.get(status, _("Please check the input")), exc.description or ""
    )


@bp.errorhandler(OperationalError)
def _database_unavailable(exc: OperationalError) -> ResponseReturnValue:
    log.warning("database unavailable: %s", exc)
    db.session.rollback()
    answer = _error_page(
        503,
        _("Busy"),
        _("The database is busy or unavailable; nothing was changed. Try again shortly."),
    )
    return answer


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error on a page")
    db.session.rollback()
    return _error_page(
        500, _("Something went wrong"), _("An unexpected error; it has been logged.")
    )
