"""The real `zhuxun-client` against a real server process on 127.0.0.1.

One server for the module (access tokens live 2 seconds, so refreshing is exercised for
real); each test has its own devices and its own records, and checks the server's side by
pulling as a fresh device of the same doctor.
"""

from __future__ import annotations

import json
import stat
import time

import pytest
import requests

from offline_client.session import load_session, save_session
from tests.client.server_process import (
    PASSWORD,
    REVIEWER,
    VILLAGE_1,
    VILLAGE_2,
    Device,
    free_port,
    start_server,
)
from tests.reliability.faults import FaultProxy, cut_body, drop_response

CRASH_POINTS = ("before_push", "after_push", "mid_pull")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_server(tmp_path_factory.mktemp("server"), ZHUXUN_JWT_ACCESS_SECONDS="2")
    yield process
    process.stop()


@pytest.fixture
def device(tmp_path, server):
    """A logged-in device of doctor D1; `device.new()` makes another one."""
    count = iter(range(100))

    def new(username: str = "d1") -> Device:
        return Device(tmp_path / f"device{next(count)}", server).login(username)

    first = new()
    first.new = new  # type: ignore[attr-defined]
    return first


def servers_view(device: Device, username: str = "d1") -> dict[str, dict]:
    """The visits the server holds for the doctor, as a fresh device pulls them."""
    fresh = device.new(username)
    fresh.run("sync")
    return fresh.visits()


def test_login_keeps_the_tokens_readable_by_the_owner_only(device):
    mode = stat.S_IMODE((device.data_dir / "session.json").stat().st_mode)
    assert mode == 0o600
    assert load_session(device.data_dir).doctor == "D1"


def test_visits_logged_with_the_server_down_are_sent_at_the_next_sync(device, server):
    session = load_session(device.data_dir)
    save_session(device.data_dir, type(session)(**{**vars_of(session), "server": dead_url()}))
    first = device.add_visit(patients=3)
    second = device.add_visit(patients=4, day=11)

    failed = device.process("sync")
    assert failed.returncode == 1
    assert "could not be reached" in failed.stderr
    assert "Nothing was lost" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert device.status()["pending"] == 2

    save_session(device.data_dir, session)
    out = device.run("sync")

    assert "sent 2: 2 accepted" in out
    assert device.status()["pending"] == 0
    assert device.status()["last_sync_at"]
    on_server = servers_view(device)
    assert on_server[first]["patients"] == 3
    assert on_server[second]["patients"] == 4


def vars_of(session) -> dict:
    return {name: getattr(session, name) for name in session.__dataclass_fields__}


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("step", CRASH_POINTS)
def test_a_sync_killed_at_any_step_loses_nothing_and_duplicates_nothing(device, step):
    ids = {device.add_visit(patients=n, day=10 + n) for n in range(3)}

    killed = device.process("sync", ZHUXUN_CLIENT_CRASH_AT=step, ZHUXUN_CLIENT_PULL_LIMIT="2")
    assert killed.returncode == 137, killed.stderr

    again = device.process("sync", ZHUXUN_CLIENT_PULL_LIMIT="2")
    assert again.returncode == 0, again.stderr

    mine = device.visits()
    assert ids <= set(mine)
    assert all(mine[i]["sync"] == "synced" for i in ids)
    assert all(mine[i]["version"] == 1 for i in ids), "each change applied exactly once"
    on_server = servers_view(device)
    assert ids <= set(on_server)
    assert all(on_server[i]["version"] == 1 for i in ids)
    assert device.status()["pending"] == 0
    places = json.loads(device.run("status", "--json"))
    assert places["rejected"] == []


def test_a_rejected_visit_does_not_block_the_others_and_is_resent_once_edited(device):
    good = device.add_visit(patients=5)
    bad = device.add_visit(patients=6, place="450999101299", day=12)
    also_good = device.add_visit(patients=7, day=13)

    out = device.run("sync")

    assert f"rejected: visits {bad}: unknown_reference" in out
    assert device.visits()[bad]["sync"] == "rejected"
    [rejection] = device.status()["rejected"]
    assert rejection["id"] == bad and "unknown place" in rejection["reason"]
    on_server = servers_view(device)
    assert {good, also_good} <= set(on_server) and bad not in on_server

    assert "sent 0" in device.run("sync"), "not sent again until edited"
    device.run("visit", "edit", bad, "--place", VILLAGE_2)
    assert "sent 1: 1 accepted" in device.run("sync")
    assert device.status()["rejected"] == []
    assert servers_view(device)[bad]["place"] == VILLAGE_2


def test_an_expired_access_token_is_refreshed_without_asking_to_log_in(device):
    before = load_session(device.data_dir).access_token
    device.add_visit()
    time.sleep(2.5)  # the module's server issues access tokens for 2 seconds

    out = device.run("sync")

    assert "1 accepted" in out
    assert load_session(device.data_dir).access_token != before


def test_a_failed_refresh_asks_to_log_in_again_and_keeps_the_outbox(device):
    session = load_session(device.data_dir)
    save_session(
        device.data_dir,
        type(session)(**{**vars_of(session), "access_token": "x", "refresh_token": "y"}),
    )
    device.add_visit()
    out = device.run("sync", ok=False)
    assert "login" in out and "Nothing recorded on this device was lost" in out
    assert device.status()["pending"] == 1


def test_two_devices_of_one_doctor_converge(device):
    tablet, clinic_pc = device, device.new()
    a = tablet.add_visit(patients=1)
    b = clinic_pc.add_visit(patients=2, day=14)
    tablet.run("sync")
    clinic_pc.run("sync")
    tablet.run("sync")

    assert {a, b} <= set(tablet.visits())
    assert tablet.visits() == clinic_pc.visits() or same_records(tablet, clinic_pc)


def same_records(one: Device, other: Device) -> bool:
    strip = ("sync",)
    left = {k: {f: v for f, v in r.items() if f not in strip} for k, r in one.visits().items()}
    right = {k: {f: v for f, v in r.items() if f not in strip} for k, r in other.visits().items()}
    return left == right


def make_conflict(device: Device) -> tuple[Device, Device, str, str]:
    """Two tablets edit the same visit; the second to sync gets a conflict."""
    first, second = device, device.new()
    visit = first.add_visit(patients=1)
    first.run("sync")
    second.run("sync")
    first.run("visit", "edit", visit, "--patients", "10")
    second.run("visit", "edit", visit, "--patients", "20")
    first.run("sync")
    out = second.run("sync")
    assert "conflict" in out
    return first, second, visit, open_conflict_of(second, visit)["id"]


def open_conflict_of(device: Device, record_id: str) -> dict:
    """The device's one open conflict about `record_id` (the doctor may have others)."""
    [conflict] = [
        c for c in json.loads(device.run("conflicts", "--json")) if c["record_id"] == record_id
    ]
    return conflict


def test_a_conflict_shows_both_versions(device):
    _, second, visit, conflict_id = make_conflict(device)
    conflict = open_conflict_of(second, visit)
    assert conflict["mine"]["data"]["patients"] == 20
    assert conflict["theirs"]["data"]["patients"] == 10
    text = second.run("conflicts")
    assert f"conflict {conflict_id}" in text and "mine" in text and "theirs" in text
    assert "differs: patients: mine 20, theirs 10" in text
    assert conflict_id in {c["id"] for c in second.status()["conflicts"]}


@pytest.mark.parametrize(("keep", "patients"), [("mine", 20), ("theirs", 10)])
def test_a_conflict_resolved_either_way_converges_everywhere(device, keep, patients):
    first, second, visit, conflict_id = make_conflict(device)

    second.run("conflicts", "resolve", conflict_id, "--keep", keep)
    second.run("sync")
    first.run("sync")

    assert conflict_id not in second.run("conflicts")
    assert conflict_id not in first.run("conflicts")
    assert second.visits()[visit]["patients"] == patients
    assert first.visits()[visit]["patients"] == patients
    assert servers_view(device)[visit]["patients"] == patients


def test_an_invalid_visit_is_refused_locally_with_the_field_and_nothing_is_queued(device):
    out = device.run(
        "visit",
        "add",
        "--place",
        VILLAGE_2,
        "--kind",
        "patrol",
        "--check-in",
        "2026-03-10T12:00:00+08:00",
        "--check-out",
        "2026-03-10T08:00:00+08:00",
        "--patients",
        "3",
        ok=False,
    )
    assert "check_out: must be after check_in" in out
    assert device.status()["pending"] == 0


def test_unknown_ids_are_a_message_not_a_traceback(device):
    out = device.run("visit", "edit", "nope", "--patients", "1", ok=False)
    assert out.strip() == "Error: no visits record 'nope' on this device"
    out = device.run("conflicts", "resolve", "nope", "--keep", "mine", ok=False)
    assert "no open conflict 'nope'" in out


def test_deleting_a_synced_visit_deletes_it_on_the_server(device):
    visit = device.add_visit()
    device.run("sync")
    device.run("visit", "delete", visit)
    assert visit not in device.visits()
    device.run("sync")
    assert visit not in servers_view(device)


def test_leave_is_recorded_offline_and_synced(device):
    leave_id = device.run(
        "leave", "add", "--start", "2026-03-16", "--end", "2026-03-17", "--reason", "县里培训"
    ).strip()
    assert "1 accepted" in device.run("sync")
    [row] = [r for r in json.loads(device.run("leave", "list", "--json")) if r["id"] == leave_id]
    assert row["sync"] == "synced" and row["version"] == 1


def test_status_says_when_no_duty_flags_were_pulled(device):
    device.run("sync")
    text = device.run("status")
    assert "last successful sync:" in text and "never" not in text
    assert "duty 20" in text and "flag" in text


def test_status_shows_the_weeks_duty_flags_pulled_from_the_server(device):
    # Patrol A1 asks for two half-day sessions a week; 2026-W20 is this test's own week.
    device.add_visit(date="2026-05-12")
    device.run("sync")
    [short] = [f for f in device.status_for("2026-W20") if f["rule"] == "patrol.per_week"]
    assert (short["measured"], short["required"], short["status"]) == (1, 2, "violation")
    assert "patrol.per_week 2026-W20" in device.run("status", "--week", "2026-W20")

    device.add_visit(date="2026-05-14")
    device.run("sync")

    assert "patrol.per_week" not in {f["rule"] for f in device.status_for("2026-W20")}


def point_at(device: Device, url: str) -> None:
    session = load_session(device.data_dir)
    save_session(device.data_dir, type(session)(**{**vars_of(session), "server": url}))


def test_one_sync_gets_through_answers_cut_off_in_transfer(device, server):
    proxy = FaultProxy(server.url)
    try:
        point_at(device, proxy.url)
        ids = {device.add_visit(patients=n, day=16 + n) for n in range(3)}
        # The push answer is cut inside its headers (requests sees a 200 with an empty
        # body), the first pull answer inside its body (ChunkedEncodingError): both after
        # the server has answered in full.
        proxy.plan("/api/v1/sync/push", drop_response(40))
        proxy.plan("/api/v1/sync/pull", cut_body(20))

        out = device.run("sync")

        assert "sent 3: 3 accepted, 0 already there, 0 rejected" in out
        pushes = proxy.exchanges_to("/api/v1/sync/push")
        pulls = proxy.exchanges_to("/api/v1/sync/pull")
        assert [e.fault.kind for e in pushes] == ["drop_response", "pass"]
        assert pushes[0].request.body == pushes[1].request.body, "the same batch, resent"
        assert [e.fault.kind for e in pulls[:2]] == ["cut_body", "pass"]
        assert pulls[1].request.path == pulls[0].request.path, "the same page, asked again"
    finally:
        proxy.close()
    status = device.status()
    assert status["pending"] == 0 and status["rejected"] == [] and status["last_sync_at"]
    on_server = servers_view(device)
    assert ids <= set(on_server) and {on_server[i]["version"] for i in ids} == {1}


def send_back(server, visit_id: str, comment: str) -> None:
    """The township reviewer sends a visit back for correction, over the review API."""
    http = requests.Session()
    login = http.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": REVIEWER, "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    answer = http.post(
        f"{server.url}/api/v1/review/visits/{visit_id}/send-back",
        json={"comment": comment},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_a_visit_sent_back_shows_in_status_until_the_doctor_edits_it(device, server):
    visit_id = device.add_visit(patients=9, date="2026-04-21")
    device.run("sync")
    send_back(server, visit_id, "患者人数请核对")
    tablet2 = device.new()  # the doctor's other tablet
    for tablet in (device, tablet2):
        assert "visits sent back for correction:" in tablet.run("status")
        tablet.run("sync")

    text = device.run("status")
    assert "visits sent back for correction: 1" in text
    assert (
        f"  visit {visit_id}  2026-04-21  {VILLAGE_1} 石桥村: 患者人数请核对 (by {REVIEWER}, "
        in (text)
    )
    [shown] = device.status()["sent_back"]
    assert (shown["visit"], shown["date"], shown["place"]) == (visit_id, "2026-04-21", VILLAGE_1)
    assert (shown["comment"], shown["by"], shown["visit_version"]) == (
        "患者人数请核对",
        REVIEWER,
        1,
    )
    assert device.visits()[visit_id]["sent_back"] == ["患者人数请核对"]
    assert "sent back: 患者人数请核对" in device.run("visit", "list")
    assert [s["visit"] for s in tablet2.status()["sent_back"]] == [visit_id]

    edited = device.run("visit", "edit", visit_id, "--patients", "12")
    assert f"the send-back by {REVIEWER} (患者人数请核对) is answered" in edited
    assert device.status()["sent_back"] == []
    assert "visits sent back for correction: 0" in device.run("status")
    device.run("sync")
    assert device.status()["sent_back"] == [] and "sent_back" not in device.visits()[visit_id]

    # The other tablet pulls the corrected version (2): answered there too.
    tablet2.run("sync")
    assert tablet2.status()["sent_back"] == []
    fresh = device.new()
    fresh.run("sync")
    assert fresh.status()["sent_back"] == [], "a device that pulls it all sees it answered"
