"""Sign-in over HTTP: the JWT login, refresh and logout views, `login_required`, which turns
a signed-in request into the `Actor` of server/actor.py, and the login throttle shared
with the login page (server/web/session.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    get_jwt_identity,
    jwt_required,
    verify_jwt_in_request,
)
from werkzeug.security import check_password_hash

from server.accounts import (
    PasswordChangeRequired,
    change_own_password,
    revoke_token,
    token_revoked,
    user_named,
)
from server.actor import Actor, actor_for
from server.api.errors import ApiError, error_response
from server.api.parsing import json_body
from server.database import hash_password
from server.devices import DeviceRevoked, refuse_revoked
from server.extensions import db, jwt, limiter
from server.models import User
from sync.protocol import ErrorCode
from sync.records import valid_id
from sync.values import text_problem

# Set on the views `login_required` wraps: the roles they admit (() = any signed-in user).
# The OpenAPI document reads it for their security scheme, 401 and 403 (server/api/openapi.py).
LOGIN_ROLES = "__zhuxun_login_roles__"

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


P = ParamSpec("P")
R = TypeVar("R")

# The token's claim naming the device it was issued to (issue 15: revoking the device
# stops its tokens at once).
DEVICE_CLAIM = "device"
# What a user with a one-time password may still do: say who they are, set their own
# password, sign out (docs/operations.md).
PASSWORD_FREE_VIEWS = frozenset({"me", "change_password", "logout"})


def refuse_revoked_device(device_id: object) -> None:
    """403 `device_revoked` when `device_id` names a revoked device (docs/sync-protocol.md),
    counted in /metrics. A device already found not revoked in this request (the token's,
    then the push body's: the same tablet) is not looked up again (issue 14)."""
    if device_id is not None and device_id == g.get("device_not_revoked"):
        return
    try:
        refuse_revoked(db.session, device_id)
    except DeviceRevoked:
        from server import metrics  # not at import: `zhuxun serve` sets its mode first

        metrics.DEVICE_REFUSALS.inc()
        raise
    g.device_not_revoked = device_id


def _login_failed() -> None:
    from server import metrics

    metrics.login_failed("api")


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "sign in first")
    return actor


def login_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a valid access token of an active user (of one of `roles`, if given)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            verify_jwt_in_request()
            user = user_named(db.session, get_jwt_identity())
            if user is None or not user.active:
                raise ApiError(401, ErrorCode.UNAUTHORIZED, "this account is not active")
            refuse_revoked_device(get_jwt().get(DEVICE_CLAIM))
            if user.must_change_password and view.__name__ not in PASSWORD_FREE_VIEWS:
                raise PasswordChangeRequired(
                    "you signed in with a one-time password: set your own first "
                    "(`zhuxun-client password`, the /password page, or POST "
                    "/api/v1/auth/password)"
                )
            if roles and user.role not in roles:
                raise ApiError(
                    403, ErrorCode.FORBIDDEN, f"this needs the role {' or '.join(roles)}"
                )
            g.actor = actor_for(db.session, user)
            return view(*args, **kwargs)

        setattr(wrapper, LOGIN_ROLES, roles)  # the OpenAPI document reads it
        return wrapper

    return decorate


def _tokens_for(user: User, device_id: str | None = None) -> dict[str, Any]:
    claims: dict[str, Any] = {"role": user.role}
    if device_id:
        claims[DEVICE_CLAIM] = device_id
    return {
        "access_token": create_access_token(identity=user.username, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=user.username, additional_claims=claims),
    }


def _user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "doctor": user.doctor_id,
        "unit": user.unit_code,
        "must_change_password": bool(user.must_change_password),
    }


def _expires_in() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def login_rate_limit() -> str:
    return str(current_app.config["ZHUXUN_LOGIN_RATE_LIMIT"])


# One budget of sign-in attempts for the API and the login page (server/web/session.py) alike.
LOGIN_LIMIT_SCOPE = "login"


def login_rate_key() -> str:
    """Attempts are counted per client address and username, so guessing one account's
    password is slowed without locking out the other doctors behind the same clinic NAT.
    The username comes from the JSON body (API) or the form (login page)."""
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else request.form.get("username")
    name = username[:150] if isinstance(username, str) else ""
    return f"{request.remote_addr or '-'}|{name}"


def register_rate_limit_answer(app: Flask) -> None:
    """A throttled login answers 429 in the one error envelope, code `rate_limited`, with
    Retry-After (added by flask-limiter's headers)."""
    from flask_limiter.errors import RateLimitExceeded

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
        return error_response(
            429,
            ErrorCode.RATE_LIMITED,
            f"too many attempts ({exc.description}); wait a minute and try again",
            details={"limit": str(exc.description)},
        )


@bp.post("/login")
@limiter.shared_limit(login_rate_limit, LOGIN_LIMIT_SCOPE, key_func=login_rate_key)
def login() -> ResponseReturnValue:
    """Sign in with a username and password.
    ---
    post:
      summary: Sign in; returns access and refresh tokens
      requestBody:
        required: true
        content:
          application/json:
            schema: LoginBody
      responses:
        "200":
          description: signed in
          content:
            application/json:
              schema: TokenAnswer
        "401":
          description: wrong username or password
          content:
            application/json:
              schema: ErrorEnvelope
        "429":
          description: too many attempts (10 a minute per address and username)
          content:
            application/json:
              schema: ErrorEnvelope
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_JSON, "send a JSON object with username and password")
    username, password = body.get("username"), body.get("password")
    errors = {
        key: ["is required and must be text (valid Unicode, no NUL)"]
        for key, value in (("username", username), ("password", password))
        if not isinstance(value, str) or not value or text_problem(value)
    }
    # The device signing in (optional): its tokens carry its id, so revoking it stops them.
    device_id = body.get("device_id")
    if device_id is not None and not valid_id(device_id):
        errors["device_id"] = ["must be an id of 1-64 letters, digits, '_', '.', ':' or '-'"]
    if errors:
        raise ApiError(
            400, ErrorCode.VALIDATION, "username and password are required", errors=errors
        )
    user = user_named(db.session, username)
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        _login_failed()
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "wrong username or password")
    try:
        refuse_revoked_device(device_id)
    except DeviceRevoked:
        _login_failed()
        raise
    return jsonify(
        {**_tokens_for(user, device_id), "expires_in": _expires_in(), "user": _user_json(user)}
    )


@bp.post("/refresh")
@jwt_required(refresh=True)
def refresh() -> ResponseReturnValue:
    """A new access token for a refresh token.
    ---
    post:
      summary: A new access token for a refresh token
      security:
        - bearer: []
      responses:
        "200":
          description: a new access token
          content:
            application/json:
              schema: TokenAnswer
        "401":
          description: no valid refresh token
          content:
            application/json:
              schema: ErrorEnvelope
    """
    user = user_named(db.session, get_jwt_identity())
    if user is None or not user.active:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "this account is not active")
    device_id = get_jwt().get(DEVICE_CLAIM)
    refuse_revoked_device(device_id)
    claims: dict[str, Any] = {"role": user.role}
    if isinstance(device_id, str):
        claims[DEVICE_CLAIM] = device_id
    token = create_access_token(identity=user.username, additional_claims=claims)
    return jsonify({"access_token": token, "expires_in": _expires_in()})


@bp.post("/password")
@login_required()
def change_password() -> ResponseReturnValue:
    """Set one's own password (the way out of a one-time password).
    ---
    post:
      summary: Set one's own password (after a one-time password)
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                old_password: {type: string}
                new_password: {type: string}
      responses:
        "200":
          description: "changed"
          content:
            application/json:
              schema: {type: object}
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_JSON, "send old_password and new_password")
    old, new = body.get("old_password"), body.get("new_password")
    if not isinstance(old, str) or not isinstance(new, str):
        missing = [k for k in ("old_password", "new_password") if not isinstance(body.get(k), str)]
        raise ApiError(
            400,
            ErrorCode.VALIDATION,
            "old_password and new_password are required",
            errors={k: ["is required"] for k in missing},
        )
    change_own_password(
        db.session,
        current_actor().username,
        old,
        new,
        hash_password=hash_password,
        check_password=check_password_hash,
    )
    return jsonify({"changed": True})


@bp.post("/logout")
@login_required()
def logout() -> ResponseReturnValue:
    """Revoke the access token (and a refresh token sent in the body).
    ---
    post:
      summary: Revoke the access token (and a refresh token sent in the body)
      requestBody:
        required: false
        content:
          application/json:
            schema: LogoutBody
      responses:
        "200":
          description: revoked
          content:
            application/json:
              schema: Revoked
    """
    # The body is read first: one that is not JSON (or nests too deep) is a 400 and
    # revokes nothing.
    body = json_body() if request.get_data(cache=True) else None
    claims = get_jwt()
    revoke_token(db.session, claims["jti"], claims.get("exp"))
    if isinstance(body, dict) and isinstance(body.get("refresh_token"), str):
        try:
            refresh_claims = decode_token(body["refresh_token"])
        except Exception:  # noqa: BLE001 - an unreadable token is simply not revoked
            refresh_claims = None
        if refresh_claims and refresh_claims.get("sub") == get_jwt_identity():
            revoke_token(db.session, refresh_claims["jti"], refresh_claims.get("exp"))
    db.session.commit()
    return jsonify({"revoked": True})


me_bp = Blueprint("me", __name__, url_prefix="/api/v1")


@me_bp.get("/me")
@login_required()
def me() -> ResponseReturnValue:
    """The signed-in user and their scope.
    ---
    get:
      summary: The signed-in user and their scope
      responses:
        "200":
          description: the user
          content:
            application/json:
              schema: Me
    """
    actor = current_actor()
    return jsonify(
        {
            "username": actor.username,
            "role": actor.role,
            "doctor": actor.doctor_id,
            "township": actor.township_code,
            "county": actor.county_code,
        }
    )


def init_jwt() -> None:
    @jwt.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return token_revoked(db.session, payload["jti"])

    @jwt.expired_token_loader
    def _expired(_header: dict[str, Any], _payload: dict[str, Any]) -> ResponseReturnValue:
        return error_response(401, ErrorCode.TOKEN_EXPIRED, "the token has expired; refresh it")

    @jwt.invalid_token_loader
    def _invalid(reason: str) -> ResponseReturnValue:
        return error_response(401, ErrorCode.UNAUTHORIZED, f"invalid token: {reason}")

    @jwt.unauthorized_loader
    def _missing(reason: str) -> ResponseReturnValue:
        return error_response(401, ErrorCode.UNAUTHORIZED, f"sign in first: {reason}")

    @jwt.revoked_token_loader
    def _revoked_answer(_header: dict[str, Any], _payload: dict[str, Any]) -> ResponseReturnValue:
        return error_response(
            401, ErrorCode.TOKEN_REVOKED, "the token has been revoked; sign in again"
        )

    @jwt.needs_fresh_token_loader
    def _fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> ResponseReturnValue:
        return error_response(401, ErrorCode.UNAUTHORIZED, "sign in again")

    @jwt.user_lookup_error_loader
    def _lookup(_header: dict[str, Any], _payload: dict[str, Any]) -> ResponseReturnValue:
        return error_response(401, ErrorCode.UNAUTHORIZED, "unknown user")
