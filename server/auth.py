"""Users, roles and scope. Every read and write goes through an `Actor`, whose scope says
which records it may see and touch: a doctor their own records (and the county's places),
a township reviewer their township, a county admin their county."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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
from sqlalchemy import ColumnElement, and_, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from server.errors import ApiError, error_response
from server.extensions import db, jwt, limiter
from server.models import Doctor, OrgUnit, RevokedToken, SyncRecord, User
from sync.protocol import PLACES, ErrorCode

DOCTOR = "doctor"
TOWNSHIP_REVIEWER = "township_reviewer"
COUNTY_ADMIN = "county_admin"
ROLES = (DOCTOR, TOWNSHIP_REVIEWER, COUNTY_ADMIN)

# scrypt (werkzeug's default KDF), with its cost made explicit: memory-hard and strong.
PASSWORD_METHOD = "scrypt:32768:8:1"  # noqa: S105 - a KDF name, not a password

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


class UserError(ValueError):
    """A user that cannot be created as asked; the message says why."""


def hash_password(password: str) -> str:
    from flask import current_app

    # Tests lower the cost (ZHUXUN_PASSWORD_METHOD) to stay fast; production keeps it.
    method = current_app.config.get("ZHUXUN_PASSWORD_METHOD") or PASSWORD_METHOD
    return generate_password_hash(password, method=method)


def create_user(
    username: str,
    password: str,
    role: str,
    *,
    doctor_id: str | None = None,
    unit_code: str | None = None,
) -> User:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < 8:
        raise UserError("the password must be at least 8 characters long")
    if db.session.scalar(select(User).where(User.username == username)):
        raise UserError(f"a user named {username!r} exists already")
    if role == DOCTOR:
        doctor = db.session.get(Doctor, doctor_id) if doctor_id else None
        if doctor is None:
            raise UserError(
                f"a doctor user needs --doctor with a known doctor id, not {doctor_id!r}"
            )
    else:
        unit = db.session.get(OrgUnit, unit_code) if unit_code else None
        wanted = "township" if role == TOWNSHIP_REVIEWER else "county"
        if unit is None or unit.level != wanted:
            raise UserError(f"a {role} needs --unit with a known {wanted} code, not {unit_code!r}")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        doctor_id=doctor_id if role == DOCTOR else None,
        unit_code=unit_code if role != DOCTOR else None,
    )
    db.session.add(user)
    db.session.commit()
    return user


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a request and what it may see."""

    username: str
    role: str
    doctor_id: str | None
    township_code: str | None
    county_code: str | None

    @property
    def is_doctor(self) -> bool:
        return self.role == DOCTOR

    def owns(self, model: Any, doctor_column: Any = None) -> ColumnElement[bool]:
        """The rows of `model` (any table with doctor_id, township_code and county_code
        columns; `doctor_column` names another column for the doctor, e.g. Doctor.id) in
        this actor's scope: the SQL form of `may_see`."""
        if self.role == DOCTOR:
            column = model.doctor_id if doctor_column is None else doctor_column
            return column == self.doctor_id  # type: ignore[no-any-return]
        if self.role == TOWNSHIP_REVIEWER:
            return model.township_code == self.township_code  # type: ignore[no-any-return]
        return model.county_code == self.county_code  # type: ignore[no-any-return]

    def pull_filter(self) -> ColumnElement[bool]:
        """The sync records this actor receives on pull: their scope, and the county's
        places (reference data every role needs)."""
        if self.role == COUNTY_ADMIN:
            return self.owns(SyncRecord)
        places = and_(SyncRecord.collection == PLACES, SyncRecord.county_code == self.county_code)
        return or_(self.owns(SyncRecord), places)

    def may_see(self, doctor_id: str | None, township: str | None, county: str | None) -> bool:
        if self.role == DOCTOR:
            return doctor_id is not None and doctor_id == self.doctor_id
        if self.role == TOWNSHIP_REVIEWER:
            return township is not None and township == self.township_code
        return county is not None and county == self.county_code

    def may_touch(self, row: SyncRecord) -> bool:
        return self.may_see(row.doctor_id, row.township_code, row.county_code)


def actor_for(user: User) -> Actor:
    township = county = None
    if user.role == DOCTOR and user.doctor_id:
        doctor = db.session.get(Doctor, user.doctor_id)
        if doctor is not None:
            township, county = doctor.township_code, doctor.county_code
    elif user.unit_code:
        unit = db.session.get(OrgUnit, user.unit_code)
        if unit is not None:
            county = unit.county_code
            township = unit.code if unit.level == "township" else None
    return Actor(user.username, user.role, user.doctor_id, township, county)


P = ParamSpec("P")
R = TypeVar("R")


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
            user = db.session.scalar(select(User).where(User.username == get_jwt_identity()))
            if user is None or not user.active:
                raise ApiError(401, ErrorCode.UNAUTHORIZED, "this account is not active")
            if roles and user.role not in roles:
                raise ApiError(
                    403, ErrorCode.FORBIDDEN, f"this needs the role {' or '.join(roles)}"
                )
            g.actor = actor_for(user)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _tokens_for(user: User) -> dict[str, Any]:
    claims = {"role": user.role}
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
    }


def _expires_in() -> int:
    from flask import current_app

    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def _login_rate_limit() -> str:
    return str(current_app.config["ZHUXUN_LOGIN_RATE_LIMIT"])


# One budget of sign-in attempts for the API and the login page (server/web.py) alike.
LOGIN_LIMIT_SCOPE = "login"


def _login_rate_key() -> str:
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
@limiter.shared_limit(_login_rate_limit, LOGIN_LIMIT_SCOPE, key_func=_login_rate_key)
def login() -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_JSON, "send a JSON object with username and password")
    username, password = body.get("username"), body.get("password")
    errors = {
        key: ["is required and must be a string"]
        for key, value in (("username", username), ("password", password))
        if not isinstance(value, str) or not value
    }
    if errors:
        raise ApiError(
            400, ErrorCode.VALIDATION, "username and password are required", errors=errors
        )
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not check_password_hash(user.password_hash, password):
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "wrong username or password")
    return jsonify({**_tokens_for(user), "expires_in": _expires_in(), "user": _user_json(user)})


@bp.post("/refresh")
@jwt_required(refresh=True)
def refresh() -> ResponseReturnValue:
    user = db.session.scalar(select(User).where(User.username == get_jwt_identity()))
    if user is None or not user.active:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "this account is not active")
    token = create_access_token(identity=user.username, additional_claims={"role": user.role})
    return jsonify({"access_token": token, "expires_in": _expires_in()})


def revoke(jti: str, expires: int | None) -> None:
    if db.session.get(RevokedToken, jti) is None:
        db.session.add(
            RevokedToken(
                jti=jti, expires_at=datetime.fromtimestamp(expires, UTC) if expires else None
            )
        )


@bp.post("/logout")
@login_required()
def logout() -> ResponseReturnValue:
    claims = get_jwt()
    revoke(claims["jti"], claims.get("exp"))
    body = request.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("refresh_token"), str):
        try:
            refresh_claims = decode_token(body["refresh_token"])
        except Exception:  # noqa: BLE001 - an unreadable token is simply not revoked
            refresh_claims = None
        if refresh_claims and refresh_claims.get("sub") == get_jwt_identity():
            revoke(refresh_claims["jti"], refresh_claims.get("exp"))
    db.session.commit()
    return jsonify({"revoked": True})


me_bp = Blueprint("me", __name__, url_prefix="/api/v1")


@me_bp.get("/me")
@login_required()
def me() -> ResponseReturnValue:
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
        return db.session.get(RevokedToken, payload["jti"]) is not None

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
