"""The HTTP side of the device: login, token refresh, push and pull, with retries.

Network errors, answers cut off in transfer, and 5xx are retried with exponential backoff
and jitter, a bounded number of times (`sleep` is injectable, so tests do not wait). Every
request is safe to send again: a push is answered once per change id, whatever number of
times it arrives (docs/sync-protocol.md, "Exactly once"); the rest only read or sign in. An expired access token
(401 `token_expired`) is refreshed with the refresh token and the request retried once; only
when refreshing fails is the person asked to log in again (docs/sync-protocol.md). A 429
is waited out when its Retry-After is short, and reported otherwise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import requests

from offline_client.errors import ClientError, LoginRequired, ServerRefused, ServerUnreachable
from offline_client.session import Session
from sync.batch import GZIP
from sync.compact import expand_page
from sync.protocol import Q_COMPACT, Q_LANG, ErrorCode

JSON = dict[str, Any]
# docs/sync-protocol.md names this code, but sync.protocol.ErrorCode has no member for it.
TOKEN_EXPIRED = ErrorCode.TOKEN_EXPIRED.value
RETRY_STATUSES = frozenset({500, 502, 503, 504})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zhuxun")
    except PackageNotFoundError:
        return "dev"


# The server's device registry shows each tablet's app version (issue 15).
USER_AGENT = f"zhuxun-client/{_version()}"
# The transfer broke after the request left: the connection failed or timed out, or the
# answer was cut inside its body (urllib3 enforces Content-Length: ChunkedEncodingError;
# a compressed body cut short: ContentDecodingError). None of them is the server's verdict.
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _envelope(response: requests.Response) -> tuple[str, str, dict[str, list[str]]]:
    """The error envelope's code, message and field errors (best effort)."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200], {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(body)[:200], {}
    return str(error.get("code", "")), str(error.get("message", "")), error.get("errors") or {}


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is treated as unknown)."""
    value = getattr(response, "headers", {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class ServerAPI:
    """One server, one session. `on_refresh` is called with the session after a refresh."""

    def __init__(
        self,
        session: Session,
        *,
        on_refresh: Callable[[Session], None] | None = None,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        timeout_s: float = 30.0,
        rng: Callable[[], float] = random.random,
        lang: str | None = "zh",
        compact: bool = True,
    ) -> None:
        self.session = session
        # The language the device shows a flag's explanation in: a pull asks for that one
        # only (issue 14, the wire); None asks for every language.
        self.lang = lang
        # A pull asks for the compact form (issue 14, the wire) and expands it back to the
        # full form (sync/compact.py), so the store holds exactly what the full form gives.
        self.compact = compact
        self.on_refresh = on_refresh
        self.http = http or requests.Session()
        self.sleep = sleep
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.rng = rng

    # -- the endpoints -------------------------------------------------------------------

    @classmethod
    def login(
        cls,
        server: str,
        username: str,
        password: str,
        *,
        device_id: str | None = None,
        **options: Any,
    ) -> Session:
        """Log in; the returned session holds both tokens and the user. With `device_id`
        the tokens are this device's: an admin revoking the device stops them at once."""
        anonymous = cls(Session(server, username, "", ""), **options)
        credentials: JSON = {"username": username, "password": password}
        if device_id:
            credentials["device_id"] = device_id
        body = anonymous._call("POST", "/auth/login", json_body=credentials, auth=None)
        return Session(
            server=server.rstrip("/"),
            username=username,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            user=body.get("user") or {},
        )

    def change_password(self, old: str, new: str) -> JSON:
        """Set one's own password (after a one-time one from the county)."""
        return self._call(
            "POST", "/auth/password", json_body={"old_password": old, "new_password": new}
        )

    def push(self, body: bytes, *, compressed: bool = True) -> JSON:
        headers = {"Content-Type": "application/json"}
        if compressed:
            headers["Content-Encoding"] = GZIP
        return self._call("POST", "/sync/push", data=body, headers=headers)

    def pull(self, cursor: str | None, limit: int) -> JSON:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if self.lang:
            params[Q_LANG] = self.lang
        if self.compact:
            params[Q_COMPACT] = "1"
        return expand_page(self._call("GET", "/sync/pull", params=params))

    def me(self) -> JSON:
        return self._call("GET", "/me")

    def logout(self) -> None:
        self._call("POST", "/auth/logout", json_body={"refresh_token": self.session.refresh_token})

    def refresh(self) -> None:
        try:
            body = self._call("POST", "/auth/refresh", auth="refresh")
        except ServerRefused as exc:
            raise LoginRequired(f"refreshing the token failed: {exc.code}") from exc
        self.session.access_token = body["access_token"]
        if body.get("refresh_token"):
            self.session.refresh_token = body["refresh_token"]
        if self.on_refresh is not None:
            self.on_refresh(self.session)

    # -- one call, with retries ----------------------------------------------------------

    def _backoff(self, attempt: int) -> None:
        # Exponential backoff with "equal jitter": half fixed, half random, so a county's
        # tablets coming back online at once do not retry in lockstep.
        delay = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        self.sleep(delay / 2 + self.rng() * delay / 2)

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: JSON | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        auth: str | None = "access",
    ) -> JSON:
        url = self.session.api_root + path
        refreshed = False
        attempt = 0
        detail = ""
        while attempt < self.max_attempts:
            sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
            if auth == "access":
                sent_headers["Authorization"] = f"Bearer {self.session.access_token}"
            elif auth == "refresh":
                sent_headers["Authorization"] = f"Bearer {self.session.refresh_token}"
            try:
                response = self.http.request(
                    method,
                    url,
                    json=json_body,
                    data=data,
                    headers=sent_headers,
                    params=params,
                    timeout=self.timeout_s,
                )
            except TRANSPORT_ERRORS as exc:
                detail = f"{type(exc).__name__} talking to {self.session.server}"
                attempt += 1
                if attempt < self.max_attempts:
                    self._backoff(attempt - 1)
                continue
            except requests.RequestException as exc:
                # Not the network: a malformed server address, too many redirects…
                raise ClientError(f"cannot talk to {self.session.server}: {exc}") from exc
            if response.status_code == 429:
                # Throttled (logins are limited per minute): wait as told when that is short,
                # otherwise say so; retrying sooner cannot help.
                code, message, errors = _envelope(response)
                wait = _retry_after(response)
                attempt += 1
                if wait is None or wait > self.max_backoff_s or attempt >= self.max_attempts:
                    raise ServerRefused(429, code or str(ErrorCode.RATE_LIMITED), message, errors)
                self.sleep(wait)
                continue
            if response.status_code in RETRY_STATUSES:
                code, message, _ = _envelope(response)
                detail = f"HTTP {response.status_code} {code or message}".strip()
                attempt += 1
                if attempt < self.max_attempts:
                    self._backoff(attempt - 1)
                continue
            if response.status_code == 401:
                code, message, _ = _envelope(response)
                if auth == "access" and code == TOKEN_EXPIRED and not refreshed:
                    self.refresh()
                    refreshed = True
                    continue
                if auth is None:
                    raise ServerRefused(401, code or str(ErrorCode.UNAUTHORIZED), message)
                if auth == "refresh":
                    raise ServerRefused(401, code or str(ErrorCode.UNAUTHORIZED), message)
                raise LoginRequired(code or message)
            if response.status_code >= 400:
                code, message, errors = _envelope(response)
                raise ServerRefused(response.status_code, code, message, errors)
            try:
                body = response.json()
            except ValueError:
                # Every success of the API is a JSON object, so a 2xx that is not JSON was cut
                # off: an answer cut inside its headers reaches us as a 200 with an empty body
                # (http.client takes EOF as the end of the headers; docs/reliability.md).
                detail = f"an answer from {self.session.server} was cut off in transfer"
                attempt += 1
                if attempt < self.max_attempts:
                    self._backoff(attempt - 1)
                continue
            if not isinstance(body, dict):
                raise ServerRefused(
                    response.status_code, str(ErrorCode.INVALID_JSON), "the answer is not an object"
                )
            return body
        raise ServerUnreachable(detail or "no answer", self.max_attempts)
