"""A slow link on loopback: a TCP relay on 127.0.0.1 that passes bytes each way at a fixed
bit rate and one-way delay, as a 2G connection would (issue 7: 50 kbit/s, 300 ms RTT).

    with SlowLink("http://127.0.0.1:8000", kbit_s=50, rtt_ms=300) as link:
        requests.get(link.url + "/api/v1/health")

The model, per direction: data is read in segments of at most one TCP payload (1,460
bytes); a segment starts on the wire when the link is free, occupies it for its size at
the bit rate, and arrives one half RTT after it left. A new connection first waits one
RTT (the TCP handshake). Nothing is dropped or reordered. Not a library of the project:
only `bench/` uses it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from types import TracebackType

SEGMENT = 1460


class _Direction:
    """One direction of one connection: a pump that reads and a sender that delivers."""

    def __init__(self, src: socket.socket, dst: socket.socket, link: SlowLink, name: str) -> None:
        self.src, self.dst, self.link, self.name = src, dst, link, name
        self.queue: deque[tuple[float, bytes]] = deque()
        self.ready = threading.Condition()
        self.free_at = 0.0  # when this direction of the link is idle again
        self.closed = False
        self.bytes = 0

    def pump(self) -> None:
        try:
            while True:
                chunk = self.src.recv(SEGMENT)
                if not chunk:
                    break
                now = time.monotonic()
                if self.link.shared:
                    due = self.link.reserve(self.name, now, len(chunk))
                else:
                    start = max(now, self.free_at)
                    self.free_at = due = start + len(chunk) * 8 / (self.link.kbit_s * 1000)
                with self.ready:
                    self.queue.append((due + self.link.one_way_s, chunk))
                    self.ready.notify()
        except OSError:
            pass
        with self.ready:
            self.closed = True
            self.ready.notify()

    def deliver(self) -> None:
        try:
            while True:
                with self.ready:
                    while not self.queue and not self.closed:
                        self.ready.wait()
                    if not self.queue:
                        break
                    due, chunk = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(chunk)
                self.bytes += len(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)


class SlowLink:
    """The relay; `url` is the server's URL as seen through it. A context manager."""

    def __init__(
        self, target_url: str, *, kbit_s: float = 50, rtt_ms: float = 300, shared: bool = False
    ) -> None:
        """`shared`: all connections share one link each way (a browser opens several at
        once; a phone still has one radio), instead of each connection its own."""
        host_port = target_url.split("://", 1)[1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.kbit_s = kbit_s
        self.one_way_s = rtt_ms / 2000
        self.shared = shared
        self._free_at = {"up": 0.0, "down": 0.0}
        self._link_lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._directions: list[tuple[str, _Direction]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        time.sleep(2 * self.one_way_s)  # the handshake: SYN, SYN-ACK
        server = socket.create_connection(self.target)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for name, direction in (("up", _Direction(client, server, self, "up")),
                                ("down", _Direction(server, client, self, "down"))):  # fmt: skip
            self._directions.append((name, direction))
            for work in (direction.pump, direction.deliver):
                thread = threading.Thread(target=work, daemon=True)
                thread.start()
                self._threads.append(thread)

    def reserve(self, name: str, now: float, size: int) -> float:
        """When a segment of `size` bytes finishes leaving on the shared link `name`."""
        with self._link_lock:
            start = max(now, self._free_at[name])
            self._free_at[name] = start + size * 8 / (self.kbit_s * 1000)
            return self._free_at[name]

    def totals(self) -> tuple[int, int]:
        """Bytes delivered up and down so far, headers and all."""
        up = sum(d.bytes for name, d in self._directions if name == "up")
        down = sum(d.bytes for name, d in self._directions if name == "down")
        return up, down

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self.listener.close()
        for _, direction in self._directions:
            for sock in (direction.src, direction.dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> SlowLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
