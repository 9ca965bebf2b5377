"""Names of the sync protocol, in one place: collections, operations, statuses, error codes.

Every field name that crosses the wire is a constant here, so the server, the offline client
and the docs (docs/sync-protocol.md) cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum

PROTOCOL_VERSION = 1

# Collections a device may write.
VISITS = "visits"
LEAVE = "leave"
TRAININGS = "trainings"
DEVICE_COLLECTIONS = frozenset({VISITS, LEAVE, TRAININGS})

# Collections only the server writes; devices receive them on pull.
PLACES = "places"
ASSIGNMENTS = "assignments"
DOCTORS = "doctors"
CONFLICTS = "conflicts"
FLAGS = "flags"
REVIEWS = "reviews"  # send-backs a reviewer wrote, pulled by the doctor's devices
SERVER_COLLECTIONS = frozenset({PLACES, ASSIGNMENTS, DOCTORS, CONFLICTS, FLAGS, REVIEWS})


class Op(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"
    # Settle an open conflict by keeping the server's version ("theirs").
    RESOLVE = "resolve"


class Status(StrEnum):
    """The outcome of one pushed change."""

    ACCEPTED = "accepted"  # applied; the record has a new version
    DUPLICATE = "duplicate"  # the server already holds exactly this; nothing changed
    CONFLICT = "conflict"  # the server's version was kept; the device's is kept for review
    REJECTED = "rejected"  # invalid; see errors. Nothing changed.


class ErrorCode(StrEnum):
    """Stable machine codes of the one error envelope (HTTP answers and per-record results)."""

    INVALID_REQUEST = "invalid_request"
    INVALID_JSON = "invalid_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    VALIDATION = "validation_failed"
    UNKNOWN_COLLECTION = "unknown_collection"
    FORBIDDEN_RECORD = "forbidden_record"
    UNKNOWN_REFERENCE = "unknown_reference"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    STALE_VERSION = "stale_version"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code; refresh and retry
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an error code; sign in again
    FORBIDDEN = "forbidden"
    INVALID_CURSOR = "invalid_cursor"
    RATE_LIMITED = "rate_limited"
    CONFLICT_NOT_OPEN = "conflict_not_open"
    WRONG_STATE = "wrong_state"  # a review decision on something not in the state it needs
    DATABASE_UNAVAILABLE = "database_unavailable"  # retry later; nothing was changed
    DEVICE_REVOKED = "device_revoked"  # an admin switched this device off; do not retry
    # A one-time password is in use: set your own (POST /auth/password) first.
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - an error code
    INTERNAL = "internal_error"


# Wire field names of a change record and of a push batch.
F_COLLECTION = "collection"
F_ID = "id"
F_OP = "op"
F_BASE_VERSION = "base_version"
F_CHANGE_ID = "change_id"
F_HLC = "hlc"
F_DATA = "data"
F_RESOLVES = "resolves"
F_VERSION = "version"
F_DELETED = "deleted"
F_STATUS = "status"
F_ERRORS = "errors"
F_CODE = "code"
F_CONFLICT_ID = "conflict_id"
F_CURRENT = "current"

B_DEVICE_ID = "device_id"
B_BATCH_ID = "batch_id"
B_SENT_AT = "sent_at"
B_CLOCK = "clock"
B_CHANGES = "changes"
# true: the answer's results leave out collection, id and change_id, which the device sent
# and can match by position (one result per change, in batch order).
B_COMPACT = "compact"

# Pull: the device names itself in this header, and the server leaves out the records whose
# latest version that device wrote (it has them, and their versions, from its push answers).
H_DEVICE_ID = "X-Device-Id"
# Pull: `?lang=zh` (or en) asks for a flag's explanation in that language only, the one the
# device shows (issue 14: the explanations in two languages were two thirds of a pull);
# without it, every language.
Q_LANG = "lang"
LANGUAGES = ("zh", "en")

# Limits a server announces; a batch over them gets 413 naming the limit. A pull page holds
# at most `limit` changes and about DEFAULT_MAX_PULL_BYTES of JSON (at least one change).
DEFAULT_MAX_BATCH_CHANGES = 2000
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_PULL_LIMIT = 500
MAX_PULL_LIMIT = 5000
DEFAULT_MAX_PULL_BYTES = 4 * 1024 * 1024

# Pull: `?compact=1` asks for the compact form of a page (issue 14, the wire; sync/compact.py
# builds and expands it): no `seq` nor `meta` in a change, `deleted` only when true, `data`
# absent for null, and a flag's body under `flag` with only what its id and the page's
# `flags_shared` block (key order, defaults, explanation templates) do not say. A device
# expands it back to the full form; without it, the full form.
Q_COMPACT = "compact"
F_FLAG = "flag"
P_FLAGS_SHARED = "flags_shared"
