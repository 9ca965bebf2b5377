"""A small fault-injection proxy: a threaded TCP proxy on 127.0.0.1 between a client and the
server that reads each HTTP/1.1 request whole and then passes it on, or breaks it on purpose.

Faults are planned ahead, per path prefix, and each request that matches takes the next one:

- `drop_request(after)`   forward only the first `after` bytes of the request, then hang up
                          on both sides (the server sees a body cut short);
- `drop_response(after)`  forward the request whole, let the server answer in full, send the
                          client only the first `after` bytes of the answer, then hang up
                          (the server has committed; the client never learns it);
- `cut_body(keep)`        the same, cut `keep` bytes into the answer's body (at most all but
                          its last byte), wherever the headers end;
- `delay(seconds)`        hold the server's complete answer that long before sending it;
- `duplicate()`           send the request to the server twice, one after the other, and
                          return the first answer (both answers are kept in `exchanges`);
- `truncate_body(keep)`   forward the request with its body cut to `keep` bytes and a
                          Content-Length that matches, so the server reads it as complete;
- `race()`                send the request to two servers at the same moment (with one
                          server, to it twice) and return the first one's answer, as a
                          load balancer retrying on another server while the first still
                          works on it.

Every connection carries one request: the proxy asks the server for `Connection: close` and
the client sees it in the answer, so nothing is reused across faults. Stop with `close()`
(the `fault_proxy` fixture does it in a finally).

Given several servers, the proxy is also a round-robin load balancer: each request goes to
the next server in turn (a duplicate to the one after it), as behind a load balancer with
no session affinity; `Exchange.targets` says where each went.

`TcpGate` is a plain TCP relay (for PostgreSQL) that can drop every connection and refuse
new ones for a while: the database briefly unavailable.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
_READ = 65536


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str  # pass, drop_request, drop_response, cut_body, delay, duplicate, truncate_body, race
    after: int = 0
    seconds: float = 0.0


def passthrough() -> Fault:
    return Fault("pass")


def drop_request(after: int) -> Fault:
    return Fault("drop_request", after=after)


def drop_response(after: int) -> Fault:
    return Fault("drop_response", after=after)


def cut_body(keep: int) -> Fault:
    return Fault("cut_body", after=keep)


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds=seconds)


def duplicate() -> Fault:
    return Fault("duplicate")


def truncate_body(keep: int) -> Fault:
    return Fault("truncate_body", after=keep)


def race() -> Fault:
    return Fault("race")


@dataclass(slots=True)
class HttpRequest:
    """One request as the client sent it: request line, headers (in order) and body."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def to_bytes(self, *, body: bytes | None = None) -> bytes:
        """The request as bytes for the server: one request a connection (Connection:
        close), and a Content-Length that matches the body sent."""
        body = self.body if body is None else body
        lines = [f"{self.method} {self.path} HTTP/1.1"]
        for key, value in self.headers:
            if key.lower() in ("connection", "content-length", "keep-alive"):
                continue
            lines.append(f"{key}: {value}")
        if body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(slots=True)
class Exchange:
    """What passed through: the request, the fault applied, and the server's answer(s)."""

    request: HttpRequest
    fault: Fault
    answers: list[bytes] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # the server of each answer

    @staticmethod
    def status_of(answer: bytes) -> int:
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0

    @staticmethod
    def body_of(answer: bytes) -> bytes:
        """The answer's body, un-gzipped when the server gzipped it (it does for clients
        that accept it, as requests does)."""
        if _HEADER_END not in answer:
            return b""
        head, body = answer.split(_HEADER_END, 1)
        if b"content-encoding: gzip" in head.lower():
            return gzip.decompress(body)
        return body


def _read_request(conn: socket.socket) -> HttpRequest | None:
    data = b""
    while _HEADER_END not in data:
        chunk = conn.recv(_READ)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(_HEADER_END, 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    request = HttpRequest(method, path, [(k, v) for k, v in headers], b"")
    length = int(request.header("Content-Length") or 0)
    while len(body) < length:
        chunk = conn.recv(_READ)
        if not chunk:
            break
        body += chunk
    request.body = body[:length]
    return request


def _send_and_read(address: tuple[str, int], raw: bytes, *, hang_up: bool = False) -> bytes:
    """Send raw bytes to the server; read its answer to the end (it closes after one)."""
    with socket.create_connection(address, timeout=60) as upstream:
        upstream.sendall(raw)
        if hang_up:
            # Cut the request short: the server sees EOF in the middle of the body.
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
            return b""
        answer = b""
        while chunk := upstream.recv(_READ):
            answer += chunk
        return answer


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


class FaultProxy:
    """A threaded proxy from 127.0.0.1:<port> to one server or, round-robin, to several; see
    the module docstring."""

    def __init__(self, target_url: str | Sequence[str]) -> None:
        urls = [target_url] if isinstance(target_url, str) else list(target_url)
        self.targets = [_address(url) for url in urls]
        self.target = self.targets[0]
        self._turn = 0
        self._plans: list[tuple[str, deque[Fault]]] = []
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    # -- planning -----------------------------------------------------------------------

    def plan(self, path_prefix: str, *faults: Fault) -> None:
        """The next requests whose path starts with `path_prefix` get these faults, in order;
        after them, requests pass."""
        with self._lock:
            self._plans.append((path_prefix, deque(faults)))

    def clear(self) -> None:
        """Forget the faults no request has taken yet."""
        with self._lock:
            self._plans.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(len(faults) for _, faults in self._plans)

    def _next_fault(self, path: str) -> Fault:
        with self._lock:
            for prefix, faults in self._plans:
                if path.startswith(prefix) and faults:
                    return faults.popleft()
        return passthrough()

    def _next_target(self) -> tuple[str, int]:
        with self._lock:
            target = self.targets[self._turn % len(self.targets)]
            self._turn += 1
        return target

    def exchanges_to(self, path_prefix: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.request.path.startswith(path_prefix)]

    # -- serving ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            try:
                request = _read_request(conn)
                if request is None:
                    return
                fault = self._next_fault(request.path)
                exchange = Exchange(request, fault)
                with self._lock:
                    self.exchanges.append(exchange)
                self._apply(conn, request, fault, exchange)
            except OSError:
                return  # the client hung up first (it timed out): nothing to deliver

    def _apply(
        self, conn: socket.socket, request: HttpRequest, fault: Fault, exchange: Exchange
    ) -> None:
        raw = request.to_bytes()
        target = self._next_target()
        if fault.kind == "drop_request":
            _send_and_read(target, raw[: fault.after], hang_up=True)
            return  # closing `conn` hangs up on the client too
        if fault.kind == "truncate_body":
            raw = request.to_bytes(body=request.body[: fault.after])
        rival: list[bytes] = []
        if fault.kind == "race":
            other = self._next_target()
            racer = threading.Thread(target=lambda: rival.append(_send_and_read(other, raw)))
            racer.start()
        answer = _send_and_read(target, raw)
        exchange.answers.append(answer)
        exchange.targets.append(f"{target[0]}:{target[1]}")
        if fault.kind == "race":
            racer.join(timeout=60)
            exchange.answers.extend(rival)
            exchange.targets.append(f"{other[0]}:{other[1]}")
        if fault.kind == "duplicate":
            again = self._next_target()
            exchange.answers.append(_send_and_read(again, raw))
            exchange.targets.append(f"{again[0]}:{again[1]}")
        if fault.kind in ("drop_response", "cut_body"):
            cut = fault.after
            if fault.kind == "cut_body":
                body_at = answer.find(_HEADER_END) + len(_HEADER_END)
                cut = min(body_at + fault.after, len(answer) - 1)
            conn.sendall(answer[:cut])
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            return
        if fault.kind == "delay":
            time.sleep(fault.seconds)
        conn.sendall(answer)

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


class TcpGate:
    """A TCP relay from 127.0.0.1:<port> to `target` (e.g. PostgreSQL) that can fail on
    purpose: `outage(seconds)` drops every relayed connection at once, both ways, and for
    `seconds` hangs up on every new one as soon as it is accepted, as a database restarting
    or failing over does. Stop with `close()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed_until = 0.0
        self.dropped = 0  # relayed connections cut by outages
        self.refused = 0  # connections hung up on during outages
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def outage(self, seconds: float) -> None:
        with self._lock:
            self._closed_until = time.monotonic() + seconds
            victims, self._open = self._open, set()
            self.dropped += len(victims) // 2
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                down = time.monotonic() < self._closed_until
                if down:
                    self.refused += 1
            if down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_READ):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()  # each socket is the source of one pump, so closed once

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._acceptor.join(timeout=5)
        self.outage(0)
