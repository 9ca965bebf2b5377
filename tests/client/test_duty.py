"""The duty standing on the device (offline_client/duty.py): the device judges its own week
with the same rules code as the server, offline; the week a person asks about."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from offline_client.duty import local_flags, requested_week
from offline_client.local import open_store
from tests.builders import VILLAGE_A1, small_scenario, visit_data

WEEK = (date(2026, 3, 9), date(2026, 3, 15))  # 2026-W11


def pulled(collection: str, record: dict, key: str = "id") -> dict:
    return {
        "collection": collection,
        "id": record[key],
        "version": 1,
        "deleted": False,
        "data": record,
    }


def device_with_reference_data(tmp_path: Path):  # noqa: ANN201
    store = open_store(tmp_path / "device.sqlite3")
    scenario = small_scenario()
    changes = [pulled("places", p, "code") for p in scenario["places"]]
    changes += [pulled("doctors", d) for d in scenario["doctors"] if d["id"] == "D1"]
    changes += [pulled("assignments", a) for a in scenario["assignments"] if a["doctor"] == "D1"]
    store.apply_pulled(changes, "1")
    return store


def patrol(day: int) -> dict:
    return visit_data(
        place=VILLAGE_A1,
        check_in=f"2026-03-{day:02d}T08:00:00+08:00",
        check_out=f"2026-03-{day:02d}T12:00:00+08:00",
        recorded_at=f"2026-03-{day:02d}T12:10:00+08:00",
    )


def test_one_patrol_short_is_seen_on_the_device_before_any_sync(tmp_path: Path) -> None:
    store = device_with_reference_data(tmp_path)
    store.save("visits", "v1", patrol(10))
    flags = local_flags(store, "D1", WEEK, today=date(2026, 3, 16))
    short = [f for f in flags if f["rule"] == "patrol.per_week"]
    assert [(f["period"], f["measured"], f["required"]) for f in short] == [("2026-W11", 1, 2)]
    store.close()


def test_two_patrols_meet_the_week(tmp_path: Path) -> None:
    store = device_with_reference_data(tmp_path)
    store.save("visits", "v1", patrol(10))
    store.save("visits", "v2", patrol(12))
    flags = local_flags(store, "D1", WEEK, today=date(2026, 3, 16))
    assert [f for f in flags if f["rule"] == "patrol.per_week"] == []
    store.close()


def test_without_reference_data_the_device_says_nothing_rather_than_guess(tmp_path: Path) -> None:
    store = open_store(tmp_path / "device.sqlite3")
    store.save("visits", "v1", patrol(10))
    assert local_flags(store, "D1", WEEK, today=date(2026, 3, 16)) == []
    store.close()


def test_a_week_runs_monday_to_sunday():
    assert requested_week(today=date(2026, 3, 12)) == (date(2026, 3, 9), date(2026, 3, 15))
