"""Fixtures of the reliability tests: the fault proxy in front of the live server, and
devices that run the real offline client (store + sync loop) against a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline_client.local import LocalStore, open_store
from offline_client.server_api import ServerAPI
from tests.builders import PASSWORD
from tests.reliability.faults import FaultProxy


@pytest.fixture
def fault_proxy(live: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(live.url)
    try:
        yield proxy
    finally:
        proxy.close()


class Device:
    """One tablet: its own SQLite store and a signed-in client of `server_url`."""

    def __init__(self, path: Path, server_url: str, username: str, **api_options: Any) -> None:
        self.store: LocalStore = open_store(path)
        options: dict[str, Any] = {"sleep": lambda _s: None, "max_attempts": 3}
        options.update(api_options)
        session = ServerAPI.login(server_url, username, PASSWORD, **options)
        self.api = ServerAPI(session, **options)
        self.username = username

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Any]:
    """`device(url, "d1", name="tab1")` opens a device store and signs it in."""
    opened: list[Device] = []

    def open_device(url: str, username: str, *, name: str | None = None, **options: Any) -> Device:
        dev = Device(
            tmp_path / f"{name or username}-{len(opened)}.sqlite", url, username, **options
        )
        opened.append(dev)
        return dev

    try:
        yield open_device
    finally:
        for dev in opened:
            dev.close()
