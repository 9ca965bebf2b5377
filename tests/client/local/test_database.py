"""The device's SQLite file (offline_client/local/database.py): identity and clock."""

from __future__ import annotations

from offline_client.local import open_store
from sync.clock import HLCTimestamp
from sync.protocol import VISITS
from tests.client.conftest import make_visit


def test_the_clock_and_the_device_id_survive_reopening(tmp_path):
    first = open_store(tmp_path / "c.sqlite")
    first.save(VISITS, "v1", make_visit())
    stamp, device = first.clock(), first.device_id
    first.close()
    again = open_store(tmp_path / "c.sqlite")
    assert again.device_id == device
    assert HLCTimestamp.decode(again.tick()) > HLCTimestamp.decode(stamp)
    again.close()


def test_the_server_clock_moves_the_device_clock_past_it(store):
    server_clock = HLCTimestamp(99_999_999_999_999, 5, "server")
    store.receive_clock(server_clock.encode())
    mine = HLCTimestamp.decode(store.tick())
    assert (mine.millis, mine.counter) > (server_clock.millis, server_clock.counter)
