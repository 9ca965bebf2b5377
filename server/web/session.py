"""The pages' common ground and sign-in: the one blueprint, the request's language, who is
signed in (`pages_for`), the headers, gzip and template filters every page shares, and the
login, logout and language routes.

- zh-CN by default, English by a link that works without JavaScript (a cookie keeps it);
  the words are in server/web/text.py.
- A signed, HttpOnly, SameSite=Lax cookie session (Secure in production); the password
  check and the login rate limit are the API's (server/api/auth.py), with one shared budget.
- CSRF: every cookie-authenticated request that writes checks a Flask-WTF token. The
  token-authenticated /api blueprints carry no cookies, so only this blueprint checks
  (WTF_CSRF_CHECK_DEFAULT off, `csrf.protect()` here); tests/web asserts every writing
  route outside /api refuses a request without the token.
- Scoped like the API: the same `Actor`; a subject outside it is 404, a doctor gets 403.
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
from markupsafe import Markup
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.security import check_password_hash

from rules.periods import CHINA_TZ
from server.accounts import user_named
from server.actor import COUNTY_ADMIN, TOWNSHIP_REVIEWER, actor_for
from server.api.auth import LOGIN_LIMIT_SCOPE, login_rate_key, login_rate_limit
from server.extensions import csrf, db, limiter
from server.models import User
from server.summaries import charts
from server.web.text import DEFAULT_LANGUAGE, LANGUAGES, translate
from sync.values import servable_text

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)

LANG_COOKIE = "zhuxun_lang"
STATIC = Path(__file__).parent.parent / "static"
# Pages are the only place scripts, styles and images could come from: this server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SESSION_HOURS = timedelta(hours=12)  # a working day on the pages, then sign in again
GZIP_MIN_BYTES = 1400  # about one packet: smaller answers gain nothing

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
    # A text stored before the value check (issue 13) may hold a lone surrogate UTF-8
    # cannot carry: shown with U+FFFD in its place rather than failing the whole page.
    app.jinja_env.finalize = _servable
    css = (STATIC / "site.css").read_bytes()
    app.config["ZHUXUN_CSS_VERSION"] = hashlib.sha256(css).hexdigest()[:12]


def _servable(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = servable_text(value)
    # Markup that had to be repaired stays markup (charts, tables): it was escaped already.
    repaired = isinstance(value, Markup) and text is not value
    return Markup(text) if repaired else text  # noqa: S704 - it was escaped markup already


# --- language ------------------------------------------------------------------------


def current_language() -> str:
    """The language of this request: the cookie's, else zh-CN. Kept in `g`, and worked out
    here too for an error raised before the blueprint's own hook (a throttled login)."""
    if "lang" not in g:
        wanted = request.cookies.get(LANG_COOKIE)
        g.lang = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE
    return str(g.lang)


def _(text: str, **values: Any) -> str:
    return translate(text, current_language(), **values)


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to; anything else (another host, a scheme, '//')
    is dropped, so the parameter cannot send anybody elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\x00"):
        return None
    return target


# --- who is signed in --------------------------------------------------------------


def password_mark(user: User) -> str:
    """Changes when the password does, which signs out every session of the old one."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _signed_in_user() -> User | None:
    name = session.get("user")
    if not isinstance(name, str):
        return None
    user = user_named(db.session, name)
    if user is None or not user.active or session.get("mark") != password_mark(user):
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


def home_of(user: User) -> str:
    if user.role == COUNTY_ADMIN:
        return url_for(".county")
    if user.role == TOWNSHIP_REVIEWER:
        return url_for(".review_index")
    return url_for(".home")  # which tells a doctor the pages are not for them


# Where a user signed in with a one-time password may go before choosing their own.
PASSWORD_FREE_PAGES = frozenset(
    {"web.change_password", "web.logout", "web.language", "web.login", "static"}
)


@bp.before_request
def _before() -> ResponseReturnValue | None:
    current_language()
    # Before anything reads the form: a writing request without a valid token stops here.
    csrf.protect()
    g.user = _signed_in_user()
    if (
        g.user is not None
        and g.user.must_change_password
        and request.endpoint not in PASSWORD_FREE_PAGES
    ):
        # A one-time password: the user sets their own before anything else.
        return redirect(url_for(".change_password"))
    return None


@bp.after_request
def _page_headers(response: Any) -> Any:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # Flask-WTF compares the Referer with the host on HTTPS posts; same-origin keeps it
    # for this site's own forms and still sends nothing to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Language"] = current_language()
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
    lang = current_language()
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
    return redirect(home_of(g.user))


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(
    login_rate_limit, LOGIN_LIMIT_SCOPE, key_func=login_rate_key, methods=["POST"]
)
def login() -> ResponseReturnValue:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None and g.user.role in (TOWNSHIP_REVIEWER, COUNTY_ADMIN):
            return redirect(next_url or home_of(g.user))
        return render_template("login.html", next=next_url, errors={}, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    errors = {}
    if not username or "\x00" in username:  # PostgreSQL text cannot hold NUL (issue 13)
        errors["username"] = _("Enter your username.")
    if not password:
        errors["password"] = _("Enter your password.")
    if errors:
        return render_template(
            "login.html", next=next_url, errors=errors, username=username[:64]
        ), 400
    user = user_named(db.session, username)
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        from server import metrics

        metrics.login_failed("page")
        return render_template(
            "login.html",
            next=next_url,
            errors={"form": _("Wrong username or password.")},
            username=username[:64],
        ), 401
    session.clear()  # a fresh session (and CSRF token) for the new sign-in
    session.permanent = True
    session["user"] = user.username
    session["mark"] = password_mark(user)
    g.user = user
    if user.must_change_password:
        return redirect(url_for(".change_password"))
    return redirect(next_url or home_of(user))


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
    response = redirect(safe_next(request.args.get("next")) or url_for(".home"))
    response.set_cookie(
        LANG_COOKIE,
        code,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def chart_labels() -> dict[str, str]:
    return charts.LABELS_EN if g.lang == "en" else charts.LABELS_ZH
