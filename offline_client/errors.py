"""What can go wrong on the device, as exceptions that carry their data.

The CLI (`offline_client.cli`) turns each of these into a `click.ClickException` with the
message; nothing here knows about click (STYLE.md: library errors, thin CLI adapter).
"""

from __future__ import annotations

FieldErrors = dict[str, list[str]]


class ClientError(Exception):
    """Anything the offline client reports to a person instead of a traceback."""


class NotLoggedIn(ClientError):
    """No session in the data directory."""

    def __init__(self) -> None:
        super().__init__(
            "not logged in; run `zhuxun-client login --server URL --username NAME` first"
        )


class LoginRequired(ClientError):
    """The server refused the tokens and refreshing did not help."""

    def __init__(self, detail: str = "") -> None:
        message = "the session has expired; run `zhuxun-client login` again"
        if detail:
            message += f" ({detail})"
        super().__init__(message + ". Nothing recorded on this device was lost.")


class ServerUnreachable(ClientError):
    """The network or the server failed on every attempt."""

    def __init__(self, detail: str, attempts: int) -> None:
        super().__init__(
            f"the server could not be reached after {attempts} attempt(s) ({detail}). "
            "Nothing was lost: every change stays on this device; run `sync` again later."
        )
        self.detail = detail
        self.attempts = attempts


class ServerRefused(ClientError):
    """The server answered a request with an error envelope (4xx)."""

    def __init__(self, status: int, code: str, message: str, errors: FieldErrors | None = None):
        text = f"the server refused the request ({status} {code}): {message}"
        if errors:
            text += " " + format_errors(errors)
        super().__init__(text)
        self.status = status
        self.code = code
        self.errors = errors or {}


class InvalidRecord(ClientError):
    """A record that fails its form, checked before it is written (the server would refuse it)."""

    def __init__(self, collection: str, errors: FieldErrors) -> None:
        super().__init__(f"the {collection} record is not valid: {format_errors(errors)}")
        self.collection = collection
        self.errors = errors


class RecordNotFound(ClientError):
    """No live record with this id on this device."""

    def __init__(self, collection: str, record_id: str) -> None:
        super().__init__(f"no {collection} record {record_id!r} on this device")
        self.collection = collection
        self.record_id = record_id


class ConflictNotFound(ClientError):
    """No open conflict with this id on this device."""

    def __init__(self, conflict_id: str) -> None:
        super().__init__(
            f"no open conflict {conflict_id!r} on this device; `zhuxun-client conflicts` lists them"
        )
        self.conflict_id = conflict_id


def format_errors(errors: FieldErrors) -> str:
    return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())
