"""Server-rendered pages (issue 5): sign-in, the township review workflow and the county
summary, for a reviewer on a phone over a slow link.

- zh-CN by default, English by a link that works without JavaScript (a cookie keeps it);
  the words are in server/web/text.py.
- No JavaScript: every decision is an HTML form that posts and redirects back.
- A signed, HttpOnly, SameSite=Lax cookie session (Secure in production); the password
  check and the login rate limit are the API's (server/api/auth.py), with one shared budget.
- CSRF: every cookie-authenticated request that writes checks a Flask-WTF token. The
  token-authenticated /api blueprints carry no cookies, so only this blueprint checks
  (WTF_CSRF_CHECK_DEFAULT off, `csrf.protect()` here); tests/web asserts every writing
  route outside /api refuses a request without the token.
- Scoped like the API: the same `Actor`; a subject outside it is 404, a doctor gets 403.
- No domain logic here: the pages call server/review/ and server/summaries/, as the JSON
  API does, and render what they return.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import Forbidden, HTTPException, NotFound
from werkzeug.security import check_password_hash

from rules.periods import CHINA_TZ
from server.accounts import user_named
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER, actor_for
from server.api import summaries as summaries_api
from server.api.auth import LOGIN_LIMIT_SCOPE, login_rate_key, login_rate_limit
from server.api.context import reevaluate_flags, rules_as_of
from server.api.errors import status_of
from server.errors import DomainError, InvalidInput
from server.extensions import csrf, db, limiter
from server.models import User
from server.review import overview as review_overview
from server.review import workflow as review
from server.summaries import charts, exports
from server.summaries import figures as summaries
from server.web.text import DEFAULT_LANGUAGE, LANGUAGES, translate

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)

LANG_COOKIE = "zhuxun_lang"
STATIC = Path(__file__).parent.parent / "static"
# Pages are the only place scripts, styles and images could come from: this server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DEFAULT_WEEKS = 8
SESSION_HOURS = timedelta(hours=12)  # a working day on the pages, then sign in again
GZIP_MIN_BYTES = 1400  # about one packet: smaller answers gain nothing
HEATMAP_WEEKS = 12
TREND_MONTHS = 6
VIEWS = ("raw", "approved")
DOWNLOADS = {
    "csv": (exports.to_csv, summaries_api.CSV_TYPE),
    "xlsx": (exports.to_xlsx, summaries_api.XLSX_TYPE),
}

P = ParamSpec("P")
R = TypeVar("R")


def init_app(app: Flask) -> None:
    """CSRF, the session cookie and the blueprint; called by `create_app` once the
    configuration is final."""
    production = app.config.get("ZHUXUN_ENV") == "production"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = production
    app.config["SESSION_COOKIE_NAME"] = "zhuxun_session"
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_HOURS
    # Checked by this blueprint only (see the module docstring); a token lives as long as
    # the session, so a form left open on a phone for an hour still posts.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.register_blueprint(bp)
    css = (STATIC / "site.css").read_bytes()
    app.config["ZHUXUN_CSS_VERSION"] = hashlib.sha256(css).hexdigest()[:12]


# --- language ------------------------------------------------------------------------


def _language() -> str:
    """The language of this request: the cookie's, else zh-CN. Kept in `g`, and worked out
    here too for an error raised before the blueprint's own hook (a throttled login)."""
    if "lang" not in g:
        wanted = request.cookies.get(LANG_COOKIE)
        g.lang = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE
    return str(g.lang)


def _(text: str, **values: Any) -> str:
    return translate(text, _language(), **values)


def _safe_next(target: str | None) -> str | None:
    """A path on this site to go back to; anything else (another host, a scheme, '//')
    is dropped, so the parameter cannot send anybody elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\x00"):
        return None
    return target


# --- who is signed in --------------------------------------------------------------


def _password_mark(user: User) -> str:
    """Changes when the password does, which signs out every session of the old one."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _signed_in_user() -> User | None:
    name = session.get("user")
    if not isinstance(name, str):
        return None
    user = user_named(db.session, name)
    if user is None or not user.active or session.get("mark") != _password_mark(user):
        session.clear()
        return None
    return user


def pages_for(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R | ResponseReturnValue]]:
    """A page for signed-in users of one of `roles`; others sign in first (or get 403)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
            user = g.user
            if user is None:
                if request.method == "GET":
                    return redirect(url_for(".login", next=request.full_path.rstrip("?")))
                return redirect(url_for(".login"))
            if user.role not in roles:
                raise Forbidden(_("This page is for township reviewers and county admins."))
            g.actor = actor_for(db.session, user)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _home_of(user: User) -> str:
    if user.role == COUNTY_ADMIN:
        return url_for(".county")
    if user.role == TOWNSHIP_REVIEWER:
        return url_for(".review_index")
    return url_for(".home")  # which tells a doctor the pages are not for them


@bp.before_request
def _before() -> None:
    _language()
    # Before anything reads the form: a writing request without a valid token stops here.
    csrf.protect()
    g.user = _signed_in_user()


@bp.after_request
def _page_headers(response: Any) -> Any:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # Flask-WTF compares the Referer with the host on HTTPS posts; same-origin keeps it
    # for this site's own forms and still sends nothing to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Language"] = _language()
    response.vary.add("Cookie")
    return _gzipped(response)


def _gzipped(response: Any) -> Any:
    """An HTML page gzipped when the browser takes gzip: a county summary of 150 doctors is
    ~260 kB of HTML and ~14 kB gzipped, seconds rather than a minute on a 2G link
    (docs/review.md). A compression side channel (BREACH) needs many cross-site requests
    that carry the session cookie; SameSite=Lax sends it with none but top-level
    navigations, and the one secret on the pages, the CSRF token, is signed anew every
    second, so the answers to compare do not even hold the same value."""
    response.vary.add("Accept-Encoding")
    if (
        response.mimetype != "text/html"
        or response.direct_passthrough
        or "Content-Encoding" in response.headers
        or not request.accept_encodings["gzip"]
    ):
        return response
    body = response.get_data()
    if len(body) >= GZIP_MIN_BYTES:
        response.set_data(gzip.compress(body, compresslevel=6))
        response.headers["Content-Encoding"] = "gzip"
    return response


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    lang = _language()
    return {
        "_": _,
        "lang": lang,
        "other_lang": "en" if lang == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE,
        "user": g.get("user"),
        "css_version": current_app.config.get("ZHUXUN_CSS_VERSION", ""),
    }


@bp.app_template_filter("china_time")
def _china_time(value: str | None) -> str:
    """HH:MM in China time of an ISO timestamp (a stored naive one is wall time already)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(CHINA_TZ)
    return moment.strftime("%H:%M")


@bp.app_template_filter("china_datetime")
def _china_datetime(value: str | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(CHINA_TZ)
    return moment.strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("weekday")
def _weekday(value: str) -> str:
    return _(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[date.fromisoformat(value).weekday()])


@bp.app_template_filter("brief")
def _brief(value: Any) -> str:
    """The one word of an audit entry's before or after that changed: a week's or flag's
    state, a leave's status, a visit's version, or that it was sent back."""
    if not isinstance(value, dict) or not value:
        return "—"
    if "state" in value:
        return _(str(value["state"]))
    if value.get("kind") == "send_back":
        return _("sent back")
    data = value.get("data")
    if isinstance(data, dict) and "status" in data:
        return _(str(data["status"]))
    return f"v{value['version']}" if "version" in value else "…"


@bp.app_template_filter("figure")
def _figure(value: Any, header: str = "") -> str:
    """A summary figure as a person reads it: rates and shares in per cent, money with two
    decimals, none as a dash. The exact value stays in the cell's data-value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float) and ("rate" in header or "share" in header):
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str):
        return _(value)
    return str(value)


# --- sign-in -----------------------------------------------------------------------


@bp.get("/")
def home() -> ResponseReturnValue:
    if g.user is None:
        return redirect(url_for(".login"))
    if g.user.role not in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
        raise Forbidden(_("This page is for township reviewers and county admins."))
    return redirect(_home_of(g.user))


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(
    login_rate_limit, LOGIN_LIMIT_SCOPE, key_func=login_rate_key, methods=["POST"]
)
def login() -> ResponseReturnValue:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None and g.user.role in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
            return redirect(next_url or _home_of(g.user))
        return render_template("login.html", next=next_url, errors={}, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    errors = {}
    if not username:
        errors["username"] = _("Enter your username.")
    if not password:
        errors["password"] = _("Enter your password.")
    if errors:
        return render_template(
            "login.html", next=next_url, errors=errors, username=username[:64]
        ), 400
    user = user_named(db.session, username)
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        return render_template(
            "login.html",
            next=next_url,
            errors={"form": _("Wrong username or password.")},
            username=username[:64],
        ), 401
    session.clear()  # a fresh session (and CSRF token) for the new sign-in
    session.permanent = True
    session["user"] = user.username
    session["mark"] = _password_mark(user)
    g.user = user
    return redirect(next_url or _home_of(user))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    if request.method == "GET":
        if g.user is None:
            return redirect(url_for(".login"))
        return render_template("logout.html")
    session.clear()
    flash(_("You have signed out."), "ok")
    return redirect(url_for(".login"))


@bp.get("/lang/<code>")
def language(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        raise NotFound(f"no language {code!r}; choose one of {', '.join(LANGUAGES)}")
    response = redirect(_safe_next(request.args.get("next")) or url_for(".home"))
    response.set_cookie(
        LANG_COOKIE,
        code,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


# --- review ------------------------------------------------------------------------


def _weeks_arg() -> int:
    raw = request.args.get("weeks", "")
    if not raw:
        return DEFAULT_WEEKS
    if not raw.isdigit():
        raise InvalidInput(
            f"weeks must be a whole number, not {raw[:20]!r}", {"weeks": ["must be a number"]}
        )
    return int(raw)


def _form_fields() -> dict[str, str]:
    """The non-blank fields of the posted form: an empty optional box means 'none'."""
    return {key: value for key, value in request.form.items() if value.strip()}


def _back_to_week(doctor: str, week: str) -> ResponseReturnValue:
    return redirect(url_for(".review_week", doctor=doctor, week=week))


@bp.get("/review")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def review_index() -> ResponseReturnValue:
    until_label = request.args.get("until") or review.week_of(rules_as_of())
    until, _sunday = review.week_range(until_label)
    count = _weeks_arg()
    weeks = review_overview.recent_weeks(until, count)
    township = request.args.get("township") or None
    overview = review_overview.weeks_overview(db.session, g.actor, weeks, township=township)
    current, _sunday = review.week_range(review.week_of(rules_as_of()))
    return render_template(
        "review_index.html",
        overview=overview,
        count=count,
        township=township,
        older=review.week_of(until - timedelta(weeks=count)),
        newer=review.week_of(min(until + timedelta(weeks=count), current))
        if until < current
        else None,
    )


@bp.get("/review/<doctor>/<week>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def review_week(doctor: str, week: str) -> ResponseReturnValue:
    calendar = review.week_calendar(db.session, g.actor, doctor, week)
    trail = review_overview.week_audit(db.session, g.actor, calendar)
    return render_template(
        "review_week.html", cal=calendar, trail=trail, heatmap=_heatmap(doctor, week)
    )


def _chart_labels() -> dict[str, str]:
    return charts.LABELS_EN if g.lang == "en" else charts.LABELS_ZH


def _heatmap(doctor: str, week: str) -> Markup:
    """The doctor's duty-day heatmap (server/charts.py) of the weeks up to this one."""
    _monday, sunday = review.week_range(week)
    data = summaries.duty_heatmap(
        db.session, g.actor, doctor, HEATMAP_WEEKS, as_of=min(sunday, rules_as_of())
    )
    # The SVG builder escapes every text it draws (server/charts.py).
    return Markup(charts.duty_heatmap_svg(data, labels=_chart_labels()))  # noqa: S704


@bp.post("/review/<doctor>/<week>/approve")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def approve_week(doctor: str, week: str) -> ResponseReturnValue:
    reason = review.text_field(_form_fields(), "reason", required=False)
    review.approve_week(db.session, g.actor, doctor, week, reason=reason)
    flash(_("Week %(week)s approved and locked.", week=week), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/send-back")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def send_back(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    visit = review.text_field(fields, "visit")
    comment = review.text_field(fields, "comment")
    assert visit is not None and comment is not None
    review.send_back(db.session, g.actor, visit, comment=comment)
    flash(_("The visit was sent back to the doctor with your comment."), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/excuse")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def excuse_flag(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    key = review.text_field(fields, "flag")
    reason = review.text_field(fields, "reason")
    assert key is not None and reason is not None
    review.excuse_flag(db.session, g.actor, key, reason=reason)
    flash(_("The flag was excused."), "ok")
    return _back_to_week(doctor, week)


@bp.post("/review/<doctor>/<week>/leave")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def decide_leave(doctor: str, week: str) -> ResponseReturnValue:
    fields = _form_fields()
    leave = review.text_field(fields, "leave")
    decision = fields.get("decision", "")
    assert leave is not None
    reason = review.text_field(fields, "reason", required=decision == "refuse")
    row = review.decide_leave(db.session, g.actor, leave, decision, reason=reason)
    reevaluate_flags(db.session, [row])  # approved leave excuses duty days, as in the API
    flash(_("Leave approved.") if decision == "approve" else _("Leave refused."), "ok")
    return _back_to_week(doctor, week)


# --- county --------------------------------------------------------------------------


def _summary_args() -> tuple[str, str | None]:
    month = request.args.get("month") or rules_as_of().strftime("%Y-%m")
    return month, request.args.get("township") or None


def _summary(month: str, township: str | None) -> dict[str, Any]:
    return summaries.county_summary(
        db.session,
        g.actor,
        month=month,
        ruleset_name=current_app.config["ZHUXUN_RULESET"],
        township=township,
        as_of=rules_as_of(),
    )


@bp.get("/county")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def county() -> ResponseReturnValue:
    """The month's summary: the tables the CSV and XLSX hold (`summaries.table_rows`), the
    compliance trend, the coverage map, and the downloads."""
    month, township = _summary_args()
    view = request.args.get("view") or "raw"
    if view not in VIEWS:
        raise InvalidInput(
            f"view must be raw or approved, not {view[:20]!r}", {"view": ["raw or approved"]}
        )
    summary = _summary(month, township)
    first, last = summaries.parse_month(month)
    as_of = rules_as_of()
    labels = _chart_labels()
    trend = summaries.compliance_trend(
        db.session,
        g.actor,
        summaries.months_until(min(last, as_of), TREND_MONTHS),
        ruleset_name=current_app.config["ZHUXUN_RULESET"],
        township=township,
        as_of=as_of,
    )
    tables = summaries.table_rows(summary)
    previous = (first - timedelta(days=1)).strftime("%Y-%m")
    following = (last + timedelta(days=1)).strftime("%Y-%m")
    return render_template(
        "county.html",
        summary=summary,
        month=month,
        township=township,
        view=view,
        townships=review_overview.townships(db.session, g.actor),
        about=summaries.about_rows(summary),
        tables=tables,
        # The SVG builders escape every text they draw (server/charts.py).
        trend_svg=Markup(charts.compliance_trend_svg(trend, labels=labels, view=view)),  # noqa: S704
        map_svg=Markup(  # noqa: S704
            charts.coverage_map_svg(summary["villages"], labels=labels, view=view)
        ),
        previous=previous,
        following=following if last < as_of else None,
    )


@bp.get("/county/summary.<extension>")
@pages_for(TOWNSHIP_REVIEWER, COUNTY_ADMIN)
def county_download(extension: str) -> ResponseReturnValue:
    """The same files as /api/v1/summaries.csv and .xlsx, for a signed-in page session."""
    if extension not in DOWNLOADS:
        raise NotFound(f"no download .{extension[:10]}; there are .csv and .xlsx")
    month, township = _summary_args()
    summary = _summary(month, township)
    render, mimetype = DOWNLOADS[extension]
    return summaries_api.download(render(summary), mimetype, summary, extension)


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
