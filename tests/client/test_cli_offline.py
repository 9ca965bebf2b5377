"""The CLI on a device that has never reached a server: everything but `sync` works."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from offline_client.cli import STORE_FILE, cli
from offline_client.duty import period_range
from offline_client.local import open_store
from offline_client.session import Session, save_session
from sync.protocol import FLAGS


@pytest.fixture
def data_dir(tmp_path):
    save_session(
        tmp_path,
        Session("http://127.0.0.1:9", "d1", "a", "r", {"doctor": "D1", "role": "doctor"}),
    )
    return tmp_path


def run(data_dir, *args, ok=True):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def add(data_dir, **overrides):
    options = {
        "place": "450999101201",
        "kind": "patrol",
        "check-in": "2026-03-10T08:00+08:00",
        "check-out": "2026-03-10T12:00+08:00",
        "patients": "4",
        **overrides,
    }
    args = [item for key, value in options.items() for item in (f"--{key}", value)]
    return run(data_dir, "visit", "add", *args).strip()


def test_a_visit_added_offline_is_listed_as_pending_with_the_logins_doctor(data_dir):
    visit_id = add(data_dir, notes="高血压随访")
    [row] = json.loads(run(data_dir, "visit", "list", "--json"))
    assert row["id"] == visit_id
    assert row["doctor"] == "D1"
    assert row["notes"] == "高血压随访"
    assert row["sync"] == "pending"
    assert row["check_in"] == "2026-03-10T08:00:00+08:00"
    assert json.loads(run(data_dir, "status", "--json"))["pending"] == 1


def test_a_time_without_an_offset_takes_the_devices_offset(data_dir):
    add(data_dir, **{"check-in": "2026-03-10T08:00", "check-out": "2026-03-10T09:00"})
    [row] = json.loads(run(data_dir, "visit", "list", "--json"))
    assert row["check_in"][:19] == "2026-03-10T08:00:00"
    assert row["check_in"][19:] != ""


def test_editing_and_deleting_a_never_synced_visit_leaves_nothing_to_send(data_dir):
    visit_id = add(data_dir)
    run(data_dir, "visit", "edit", visit_id, "--patients", "12")
    assert json.loads(run(data_dir, "visit", "list", "--json"))[0]["patients"] == 12
    run(data_dir, "visit", "delete", visit_id)
    assert run(data_dir, "visit", "list").strip() == "no visits on this device"
    assert json.loads(run(data_dir, "status", "--json"))["pending"] == 0


def test_a_visit_the_form_refuses_is_not_written(data_dir):
    out = run(
        data_dir,
        "visit",
        "add",
        "--place",
        "x",
        "--kind",
        "patrol",
        "--check-in",
        "2026-03-10T08:00+08:00",
        "--check-out",
        "2026-03-11T12:00+08:00",
        "--patients",
        "4",
        ok=False,
    )
    assert "a visit lasts at most 24 hours" in out
    assert "Traceback" not in out
    assert json.loads(run(data_dir, "status", "--json"))["pending"] == 0


def test_commands_that_need_a_login_say_so(tmp_path):
    out = run(
        tmp_path,
        "visit",
        "add",
        "--place",
        "x",
        "--kind",
        "patrol",
        "--check-in",
        "2026-03-10T08:00+08:00",
        "--check-out",
        "2026-03-10T12:00+08:00",
        "--patients",
        "4",
        ok=False,
    )
    assert "not logged in" in out


def test_status_says_when_no_flags_were_pulled(data_dir):
    assert "no duty flags pulled yet" in run(data_dir, "status")


def pull_flags(data_dir, *flags):
    store = open_store(data_dir / STORE_FILE)
    store.apply_pulled(
        [
            {"collection": FLAGS, "id": f"f{n}", "version": 1, "deleted": False, "data": flag}
            for n, flag in enumerate(flags)
        ],
        "9",
    )
    store.close()


def test_status_shows_the_doctors_flags_of_the_week_asked_for(data_dir):
    pull_flags(
        data_dir,
        {
            "rule": "patrol.weekly_slots",
            "status": "violation",
            "period": "2026-W11",
            "doctor": "D1",
            "explanation": {"zh": "本周巡诊 0/1 次", "en": "0 of 1 patrols"},
        },
        {
            "rule": "patrol.weekly_slots",
            "status": "violation",
            "period": "2026-W12",
            "doctor": "D1",
            "explanation": {"zh": "下周", "en": "next week"},
        },
        {
            "rule": "posting.days",
            "status": "at_risk",
            "period": "2026-03",
            "doctor": "D2",
            "explanation": {"zh": "别人的", "en": "someone else's"},
        },
    )
    out = run(data_dir, "status", "--week", "2026-W11")
    assert "duty 2026-W11: 1 flag(s)" in out
    assert "本周巡诊 0/1 次" in out
    assert "下周" not in out and "别人的" not in out
    assert "no flags, nothing is missing" in run(data_dir, "status", "--week", "2026-W20")
    assert "not an ISO week" in run(data_dir, "status", "--week", "March", ok=False)


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2026-03-05", "2026-03-05", "2026-03-05"),
        ("2026-W11", "2026-03-09", "2026-03-15"),
        ("2026-02", "2026-02-01", "2026-02-28"),
        ("2026", "2026-01-01", "2026-12-31"),
        ("2026-03-02/2026-06-30", "2026-03-02", "2026-06-30"),
    ],
)
def test_a_flags_period_reads_as_the_days_it_covers(period, first, last):
    start, end = period_range(period)
    assert (start.isoformat(), end.isoformat()) == (first, last)


@pytest.mark.parametrize("period", ["2026-W60", "someday", "2026-13", "", None, 2026])
def test_a_flags_period_this_client_cannot_read_is_none(period):
    assert period_range(period) is None


def test_a_server_address_without_a_scheme_is_refused(tmp_path):
    out = run(
        tmp_path,
        "login",
        "--server",
        "zhuxun.example.cn",
        "--username",
        "d1",
        "--password",
        "x",
        ok=False,
    )
    assert "http:// or https://" in out
