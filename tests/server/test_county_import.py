"""The county import from spreadsheets (server/county_import.py, /api/v1/admin/import,
`zhuxun import`): a dry run that names every problem and writes nothing; an import that
writes everything or nothing and stores what the JSON scenario import stores; re-importing
changes nothing; a later file changes what differs; new users get one-time passwords; a
county admin imports into their own county only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from server.spreadsheets import ASSIGNMENTS, DOCTORS, PLACES, USERS, write_xlsx
from tests.builders import PASSWORD
from tests.conftest import app_config

SIZES = {"townships": 2, "villages": 6, "doctors": 6, "weeks": 2}


@pytest.fixture(scope="module")
def county() -> dict[str, Any]:
    from demo_county import generate_county

    return generate_county(seed=11, **SIZES)


def sheets(county: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        PLACES: [dict(p) for p in county["places"]],
        DOCTORS: [dict(d) for d in county["doctors"]],
        ASSIGNMENTS: [dict(a) for a in county["assignments"]],
    }


@pytest.fixture
def empty_app(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, county: dict[str, Any]
) -> Any:
    """A database with the county's own place and its admin `admin` only (and another
    county with its admin `other`)."""
    from server.app import create_app
    from server.database import add_user, init_db
    from server.extensions import db
    from server.records.importer import import_scenario

    app = create_app(app_config(backend, tmp_path, request))
    code = county["county"]["code"]
    with app.app_context():
        init_db()
        import_scenario(
            db.session,
            {
                "places": [
                    next(p for p in county["places"] if p["code"] == code),
                    {"code": "459999", "name": "邻县", "level": "county"},
                ]
            },
        )
        add_user("admin", PASSWORD, "county_admin", unit_code=code)
        add_user("other", PASSWORD, "county_admin", unit_code="459999")
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sign_in(app: Any, username: str) -> tuple[Any, dict[str, str]]:
    client = app.test_client()
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return client, {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def upload(
    app: Any, content: bytes, *, mode: str, username: str = "admin", name: str = "county.xlsx"
) -> Any:
    client, headers = sign_in(app, username)
    return client.post(
        f"/api/v1/admin/import?mode={mode}",
        data={"files": (io.BytesIO(content), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def stored(app: Any) -> dict[str, Any]:
    """The sync records of reference data and the counter: what devices would pull."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import SyncCounter, SyncRecord

    with app.app_context():
        rows = db.session.scalars(
            select(SyncRecord).where(
                SyncRecord.collection.in_(["places", "doctors", "assignments"])
            )
        )
        records = {
            (r.collection, r.id): (r.version, r.data, r.township_code, r.county_code) for r in rows
        }
        counter = db.session.get(SyncCounter, 1).value
        db.session.remove()
    return {"records": records, "counter": counter}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_import_stores_what_the_json_scenario_import_stores(
    empty_app: Any, county: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from server.app import create_app
    from server.database import init_db
    from server.extensions import db
    from server.records.importer import import_scenario

    answer = upload(empty_app, write_xlsx(sheets(county)), mode="import")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    plan = answer.get_json()
    assert plan["applied"] is True
    assert plan["counts"][PLACES] == {
        "new": len(county["places"]) - 1,
        "changed": 0,
        "unchanged": 1,
    }
    assert plan["counts"][DOCTORS]["new"] == len(county["doctors"])

    (tmp_path / "reference").mkdir()
    reference = create_app(app_config("sqlite", tmp_path / "reference", request))
    with reference.app_context():
        init_db()
        import_scenario(db.session, {k: county[k] for k in ("places", "doctors", "assignments")})
        db.session.remove()
    got = {k: v[1:] for k, v in stored(empty_app)["records"].items() if k[1] != "459999"}
    want = {k: v[1:] for k, v in stored(reference)["records"].items()}
    assert got == want
    with reference.app_context():
        db.engine.dispose()


def test_re_importing_the_same_file_changes_nothing_and_a_later_file_changes_what_differs(
    empty_app: Any, county: dict[str, Any]
) -> None:
    first = write_xlsx(sheets(county))
    assert upload(empty_app, first, mode="import").status_code == 200
    before = stored(empty_app)

    again = upload(empty_app, first, mode="import").get_json()
    assert all(c["new"] == c["changed"] == 0 for c in again["counts"].values()), again
    assert stored(empty_app) == before  # not one record rewritten, the counter unmoved

    later = sheets(county)
    later[DOCTORS][0]["name"] = "改名"
    added = dict(later[ASSIGNMENTS][0], id="A-NEW", start="2026-06-01", end=None)
    later[ASSIGNMENTS].append(added)
    dry = upload(empty_app, write_xlsx(later), mode="check").get_json()
    assert dry["applied"] is False
    assert dry["counts"][DOCTORS] == {
        "new": 0,
        "changed": 1,
        "unchanged": len(county["doctors"]) - 1,
    }
    assert dry["counts"][ASSIGNMENTS]["new"] == 1
    assert stored(empty_app) == before  # the dry run wrote nothing
    done = upload(empty_app, write_xlsx(later), mode="import").get_json()
    assert done["counts"] == dry["counts"]
    after = stored(empty_app)["records"]
    doctor = county["doctors"][0]["id"]
    assert after[("doctors", doctor)][0] == before["records"][("doctors", doctor)][0] + 1
    assert after[("doctors", doctor)][1]["name"] == "改名"
    assert ("assignments", "A-NEW") in after
    changed = {k for k in after if after[k] != before["records"].get(k)}
    assert changed == {("doctors", doctor), ("assignments", "A-NEW")}


def test_a_dry_run_names_each_problem_and_the_import_writes_nothing_while_one_remains(
    empty_app: Any, county: dict[str, Any]
) -> None:
    broken = sheets(county)
    broken[DOCTORS][2]["home"] = "999999999"
    broken[ASSIGNMENTS][1]["kind"] = "出差"
    before = stored(empty_app)
    for mode in ("check", "import"):
        answer = upload(empty_app, write_xlsx(broken), mode=mode)
        assert answer.status_code == 422
        errors = answer.get_json()["errors"]
        assert [(e["sheet"], e["row"], e["column"]) for e in errors] == [
            ("医生", 4, "所属单位编码"),
            ("任务", 3, "类型"),
        ]
        assert errors[0]["message_zh"] == "没有编码为“999999999”的地点"
        assert errors[0]["message"] == "no place '999999999'"
        assert answer.get_json()["applied"] is False
    assert stored(empty_app) == before


def test_a_failure_half_way_through_the_import_leaves_nothing_behind(
    empty_app: Any, county: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import accounts

    rows = sheets(county)
    rows[USERS] = [{"username": "doc1", "role": "doctor", "doctor": county["doctors"][0]["id"]}]
    before = stored(empty_app)

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(accounts, "create_account", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        from server import county_import, spreadsheets
        from server.extensions import db

        with empty_app.app_context():
            try:
                county_import.apply(
                    db.session,
                    spreadsheets.read_files([("c.xlsx", write_xlsx(rows))]),
                    hash_password=str.upper,
                )
            finally:
                db.session.remove()
    assert stored(empty_app) == before  # places and doctors were written, then rolled back


def test_new_users_get_one_time_passwords_and_existing_ones_are_updated_by_username(
    empty_app: Any, county: dict[str, Any]
) -> None:
    rows = sheets(county)
    township = next(p["code"] for p in county["places"] if p["level"] == "township")
    doctor = county["doctors"][0]["id"]
    rows[USERS] = [
        {"username": "doc1", "role": "doctor", "doctor": doctor},
        {"username": "rev1", "role": "township_reviewer", "unit": township},
    ]
    done = upload(empty_app, write_xlsx(rows), mode="import").get_json()
    assert set(done["passwords"]) == {"doc1", "rev1"}
    client = empty_app.test_client()
    signed = client.post(
        "/api/v1/auth/login", json={"username": "doc1", "password": done["passwords"]["doc1"]}
    )
    assert signed.status_code == 200 and signed.get_json()["user"]["must_change_password"]

    rows[USERS][1]["active"] = False
    again = upload(empty_app, write_xlsx(rows), mode="import").get_json()
    assert again["counts"][USERS] == {"new": 0, "changed": 1, "unchanged": 1}
    assert again["passwords"] == {}  # an existing account keeps its password
    assert (
        client.post(
            "/api/v1/auth/login", json={"username": "rev1", "password": done["passwords"]["rev1"]}
        ).status_code
        == 401
    )


def test_a_county_admin_imports_into_their_own_county_only(
    empty_app: Any, county: dict[str, Any]
) -> None:
    answer = upload(empty_app, write_xlsx(sheets(county)), mode="check", username="other")
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert errors and all("本县" in e["message_zh"] for e in errors)
    client, headers = sign_in(empty_app, "admin")
    doctor_token = client.post("/api/v1/admin/import?mode=check", headers={})
    assert doctor_token.status_code == 401


def test_the_templates_download_and_read_back(empty_app: Any) -> None:
    client, headers = sign_in(empty_app, "admin")
    answer = client.get("/api/v1/admin/import/template.xlsx", headers=headers)
    assert answer.status_code == 200
    assert load_workbook(io.BytesIO(answer.data)).sheetnames == [
        "说明",
        "地点",
        "医生",
        "任务",
        "用户",
    ]
    csv = client.get("/api/v1/admin/import/doctors.csv", headers=headers)
    assert csv.data.decode("utf-8-sig").startswith("医生编号,姓名,资质,所属单位编码")
    assert client.get("/api/v1/admin/import/nothing.csv", headers=headers).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])
def test_zhuxun_import_takes_the_spreadsheets_with_a_dry_run(
    empty_app: Any, county: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import cli

    monkeypatch.setenv("ZHUXUN_DATABASE_URL", empty_app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("ZHUXUN_ENV", "test")
    path = tmp_path / "county.xlsx"
    path.write_bytes(write_xlsx(sheets(county)))
    runner = CliRunner()
    dry = runner.invoke(cli, ["import", "--dry-run", str(path)])
    assert dry.exit_code == 0, dry.output
    assert f"would import doctors: {len(county['doctors'])} new" in dry.output
    before = stored(empty_app)
    assert before["records"].keys() == {("places", county["county"]["code"]), ("places", "459999")}
    done = runner.invoke(cli, ["import", str(path)])
    assert done.exit_code == 0, done.output
    assert f"imported doctors: {len(county['doctors'])} new" in done.output
    broken = sheets(county)
    broken[PLACES][3]["parent"] = "nowhere"
    path.write_bytes(write_xlsx(broken))
    refused = runner.invoke(cli, ["import", str(path)])
    assert refused.exit_code == 1
    assert "地点 row 5, 上级编码: no place 'nowhere'" in refused.output
    assert "nothing was imported" in refused.output
