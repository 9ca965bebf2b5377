"""The doctor's offline web app (issue 12): its files under /app/, and the two JSON
answers it builds itself from — the form definitions (`GET /api/v1/forms`, so `forms/`
stays the one source of fields and checks) and each assignment's weekly plan
(`GET /api/v1/duty/plan`, so `rules/` stays the one rule book; the app only counts).

The app's files are served as they are (small ES modules, no build step), gzipped when the
browser takes gzip, under a strict Content-Security-Policy: scripts from this server only,
plus 'wasm-unsafe-eval' for SQLite's WebAssembly. The vendored SQLite build is in
static/app/vendor/ (`make vendor`), so the server needs no Node at run time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from forms.definitions import LATEST, MAX_FUTURE_HOURS, MAX_VISIT_HOURS, FormDef
from server.auth import DOCTOR, current_actor, login_required
from server.errors import ApiError
from server.extensions import db
from sync import protocol
from sync.protocol import ErrorCode

APP_DIR = Path(__file__).with_name("static") / "app"
# The app's pages take scripts, workers and WebAssembly from this server only. No inline
# script anywhere; 'wasm-unsafe-eval' lets SQLite's .wasm compile (and nothing else eval).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; style-src 'self'; img-src 'self' data:; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
COMPRESSIBLE = {"text/html", "text/css", "text/javascript", "application/javascript",
                "application/json", "application/manifest+json", "application/wasm",
                "image/svg+xml"}  # fmt: skip
GZIP_MIN_BYTES = 1400
SKIP_PRECACHE = {"sw.js", "index.html", "vendor/VENDOR.json"}  # index.html is /app/
PLAN_WEEKS_BEFORE, PLAN_WEEKS_AFTER = 1, 2

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/manifest+json", ".webmanifest")

bp = Blueprint("app_shell", __name__)
api_bp = Blueprint("app_api", __name__, url_prefix="/api/v1")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)


# --- the app's files -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _file(path: str, mtime_ns: int) -> tuple[bytes, bytes, str]:
    """A file's bytes, its gzip form and its ETag, read once per modification."""
    raw = (APP_DIR / path).read_bytes()
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    return raw, packed, hashlib.sha256(raw).hexdigest()[:20]


def _resolve(name: str) -> Path | None:
    target = (APP_DIR / name).resolve()
    root = APP_DIR.resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target


def shell_files() -> list[str]:
    """Every file the service worker precaches: the app's own files and the vendored
    SQLite build (not the worker itself, nor the vendoring record)."""
    root = APP_DIR.resolve()
    found = ["/app/"]
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative not in SKIP_PRECACHE and not path.name.startswith("."):
            found.append(f"/app/{relative}")
    return found


def _shell_state() -> tuple[tuple[str, int], ...]:
    root = APP_DIR.resolve()
    return tuple(
        (p.relative_to(root).as_posix(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


@lru_cache(maxsize=8)
def _service_worker(state: tuple[tuple[str, int], ...]) -> bytes:
    """sw.js with its version (a hash of every file of the app) and the precache list filled
    in: any change to any file is a new version, with nothing kept by hand."""
    digest = hashlib.sha256()
    for relative, mtime_ns in state:
        digest.update(relative.encode())
        digest.update(_file(relative, mtime_ns)[2].encode())
    template = (APP_DIR / "sw.js").read_text(encoding="utf-8")
    text = template.replace("__SHELL_VERSION__", digest.hexdigest()[:16]).replace(
        "__SHELL_FILES__", json.dumps(shell_files())
    )
    return text.encode("utf-8")


def serve_app_file(name: str) -> Response:
    target = _resolve(name)
    if target is None:
        abort(404)
    relative = target.relative_to(APP_DIR.resolve()).as_posix()
    raw, packed, etag = _file(relative, target.stat().st_mtime_ns)
    if relative == "sw.js":
        raw = _service_worker(_shell_state())
        packed = gzip.compress(raw, compresslevel=9, mtime=0)
        etag = hashlib.sha256(raw).hexdigest()[:20]
    mimetype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    use_gzip = (
        mimetype in COMPRESSIBLE
        and len(raw) >= GZIP_MIN_BYTES
        and bool(request.accept_encodings["gzip"])
    )
    tag = f'"{etag}{"-gz" if use_gzip else ""}"'
    headers = {
        # The service worker keeps the app for offline use; the network copy is checked
        # every time (cheap: 304 by ETag), so a new version is found as soon as it is out.
        "Cache-Control": "no-cache",
        "ETag": tag,
        "Vary": "Accept-Encoding",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
    }
    if target.name == "sw.js":
        headers["Service-Worker-Allowed"] = "/app/"
    if request.headers.get("If-None-Match") == tag:
        return Response(status=304, headers=headers)
    body = packed if use_gzip else raw
    response = Response(body, mimetype=mimetype, headers=headers)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


@bp.get("/app")
def app_root() -> ResponseReturnValue:
    return redirect("/app/", code=308)


@bp.get("/app/")
def app_index() -> ResponseReturnValue:
    return serve_app_file("index.html")


@bp.get("/app/<path:name>")
def app_file(name: str) -> ResponseReturnValue:
    return serve_app_file(name)


# --- the form definitions as JSON -------------------------------------------------------------


def form_json(form: FormDef) -> dict[str, Any]:
    """A form definition as the app reads it: fields with their type and limits, and the
    checks across fields that forms.schemas makes (the same constants)."""
    checks: list[dict[str, Any]] = []
    if form.collection == protocol.VISITS:
        checks = [
            {"check": "after", "field": "check_out", "other": "check_in"},
            {"check": "max_hours", "field": "check_out", "other": "check_in",
             "hours": MAX_VISIT_HOURS},
            {"check": "not_future", "field": "check_in", "hours": MAX_FUTURE_HOURS},
        ]  # fmt: skip
    elif {"start", "end"} <= {f.name for f in form.fields}:
        checks = [{"check": "not_before", "field": "end", "other": "start"}]
    return {
        "name": form.name,
        "version": form.version,
        "collection": form.collection,
        "title": {"zh": form.title_zh, "en": form.title_en},
        "fields": [
            {
                "name": f.name,
                "type": f.type,
                "label": {"zh": f.label_zh, "en": f.label_en},
                "required": f.required,
                "allow_none": f.allow_none,
                "choices": list(f.choices),
                "minimum": f.minimum,
                "maximum": f.maximum,
                "max_length": f.max_length,
            }
            for f in form.fields
        ],
        "checks": checks,
    }


@api_bp.get("/forms")
def forms() -> ResponseReturnValue:
    """The latest form of each collection a device writes, and the protocol's words and
    limits (docs/sync-protocol.md): the app builds its checks and batches from these."""
    return jsonify(
        {
            "forms": {name: form_json(form) for name, form in sorted(LATEST.items())},
            "protocol": {
                "version": protocol.PROTOCOL_VERSION,
                "device_collections": sorted(protocol.DEVICE_COLLECTIONS),
                "ops": [str(op) for op in protocol.Op],
                "statuses": [str(status) for status in protocol.Status],
                "device_header": protocol.H_DEVICE_ID,
                "max_batch_changes": protocol.DEFAULT_MAX_BATCH_CHANGES,
                "max_pull_limit": protocol.MAX_PULL_LIMIT,
            },
        }
    )


# --- each assignment's weekly plan ---------------------------------------------------------


@api_bp.get("/duty/plan")
@login_required(DOCTOR)
def duty_plan() -> ResponseReturnValue:
    """The signed-in doctor's weekly plans from last week to two weeks ahead, computed by
    rules.plan with the server's rule set, calendar, and the approved leave and training
    it holds. The app stores the answer and counts its own visits against it offline."""
    from flask import current_app

    from rules import ScenarioError, load_scenario
    from rules.plan import week_plans
    from server import flags
    from server.api import rules_as_of

    actor = current_actor()
    if not actor.doctor_id or not actor.county_code:
        raise ApiError(403, ErrorCode.FORBIDDEN, "this account is not a doctor's")
    as_of = rules_as_of()
    try:
        scenario = load_scenario(
            flags._scenario(db.session, {actor.county_code}, {actor.doctor_id})  # noqa: SLF001
        )
    except ScenarioError as exc:
        raise ApiError(
            409, ErrorCode.INVALID_REQUEST, f"the doctor's data is incomplete: {exc}"
        ) from exc
    ruleset_name = current_app.config["ZHUXUN_RULESET"]
    plans = week_plans(
        scenario,
        doctor=actor.doctor_id,
        around=as_of,
        ruleset=flags.ruleset_named(ruleset_name),
        weeks_before=PLAN_WEEKS_BEFORE,
        weeks_after=PLAN_WEEKS_AFTER,
    )
    return jsonify(
        {
            "doctor": actor.doctor_id,
            "as_of": as_of.isoformat(),
            "ruleset": ruleset_name,
            "valid_until": (as_of + timedelta(weeks=PLAN_WEEKS_AFTER)).isoformat(),
            "plans": [plan.to_dict() for plan in plans],
        }
    )
