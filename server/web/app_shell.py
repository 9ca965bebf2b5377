"""The doctor's offline web app (issue 12): its files under /app/, served as they are (small
ES modules, no build step), gzipped when the browser takes gzip, revalidated by ETag, under a
strict Content-Security-Policy: scripts from this server only, plus 'wasm-unsafe-eval' for
SQLite's WebAssembly. The vendored SQLite build is in static/app/vendor/ (`make vendor`), so
the server needs no Node at run time. The service worker gets its version and precache list
filled in here. The JSON the app builds itself from is in server/api/forms.py and
server/api/duty.py; docs/app.md says how the app works."""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, redirect, request
from flask.typing import ResponseReturnValue

APP_DIR = Path(__file__).resolve().parents[1] / "static" / "app"
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

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/manifest+json", ".webmanifest")

bp = Blueprint("app_shell", __name__)


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
