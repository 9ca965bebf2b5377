"""The login session kept in the data directory: server, tokens, and who is logged in.

The file holds bearer tokens, so it is written owner-only (0600) and replaced atomically,
never left half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from offline_client.errors import NotLoggedIn

SESSION_FILE = "session.json"


@dataclass(slots=True)
class Session:
    server: str
    username: str
    access_token: str
    refresh_token: str
    user: dict[str, Any] = field(default_factory=dict)

    @property
    def doctor(self) -> str | None:
        return self.user.get("doctor")

    @property
    def api_root(self) -> str:
        return self.server.rstrip("/") + "/api/v1"


def session_path(data_dir: Path) -> Path:
    return data_dir / SESSION_FILE


def load_session(data_dir: Path) -> Session:
    path = session_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Session(**raw)
    except FileNotFoundError:
        raise NotLoggedIn() from None
    except (ValueError, TypeError):
        raise NotLoggedIn() from None


def save_session(data_dir: Path, session: Session) -> Path:
    """Write the session owner-only and atomically (a temporary file, then rename)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = session_path(data_dir)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; fchmod is not
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(session), out, ensure_ascii=False, indent=2)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, path)
    return path


def clear_session(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        session_path(data_dir).unlink()
