"""`zhuxun demo`: a demo county on the embedded SQLite database, a real server, and two
simulated tablets that log visits offline and sync through the real client CLI (one of
them with a conflicting edit). `make demo` runs it."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import requests

from demo_county import generate_county, summarize, write_scenario

CHINA = timezone(timedelta(hours=8))
DEMO_PASSWORD = "zhuxun-demo-2026"  # noqa: S105 - printed for the demo; development mode only


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _say(text: str) -> None:
    click.secho(text, fg="cyan", bold=True)


def _client(data_dir: Path, *args: str, env: dict[str, str]) -> str:
    shown = " ".join(args)
    click.echo(click.style(f"  $ zhuxun-client {shown}", fg="green"))
    done = subprocess.run(
        [_bin("zhuxun-client"), "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = (done.stdout + done.stderr).rstrip()
    for line in output.splitlines():
        click.echo(f"    {line}")
    if done.returncode != 0:
        raise click.ClickException(f"zhuxun-client {args[0]} failed (exit {done.returncode})")
    return done.stdout


def _wait_healthy(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise click.ClickException("the server stopped while starting; see the lines above")
        try:
            if requests.get(f"{url}/api/v1/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"the server did not answer at {url} within {seconds:.0f} s")


def _pick_patrol_doctor(scenario: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for assignment in scenario["assignments"]:
        if assignment["kind"] == "patrol" and assignment["slots"] and assignment["end"] is None:
            doctor = next(d for d in scenario["doctors"] if d["id"] == assignment["doctor"])
            return doctor, assignment
    assignment = scenario["assignments"][0]
    return next(d for d in scenario["doctors"] if d["id"] == assignment["doctor"]), assignment


def run_demo(
    *,
    directory: Path,
    port: int,
    serve: bool,
    sizes: dict[str, int],
    seed: int,
) -> None:
    from server.app import create_app
    from server.database import add_user, init_db
    from server.extensions import db
    from server.flags import evaluate_all, today_in_china
    from server.records.importer import import_scenario

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    env = {
        **os.environ,
        "ZHUXUN_ENV": "development",
        "ZHUXUN_DATABASE_URL": f"sqlite:///{directory.resolve() / 'zhuxun.sqlite3'}",
        "ZHUXUN_SECRET_KEY": secrets.token_urlsafe(48),
        "ZHUXUN_PASSWORD": DEMO_PASSWORD,
    }
    os.environ.update(
        {k: env[k] for k in ("ZHUXUN_ENV", "ZHUXUN_DATABASE_URL", "ZHUXUN_SECRET_KEY")}
    )

    _say("1. A demo county (seeded, the last months of visits up to this week)")
    this_monday = datetime.now(CHINA).date() - timedelta(days=datetime.now(CHINA).weekday())
    scenario = generate_county(
        seed=seed, start=this_monday - timedelta(weeks=sizes["weeks"]), **sizes
    )
    write_scenario(directory / "scenario.json", scenario)
    counts = summarize(scenario)
    click.echo(f"  {scenario['county']['name']}: {json.dumps(counts, ensure_ascii=False)}")

    _say("2. The server database: schema, import, rules")
    app = create_app()
    doctor, assignment = _pick_patrol_doctor(scenario)
    home = next(p for p in scenario["places"] if p["code"] == assignment["places"][0])
    township = home["parent"]
    with app.app_context():
        init_db()

        def progress(collection: str, done: int, total: int) -> None:
            if done == total or done % 5000 == 0:
                click.echo(f"  {collection}: {done}/{total}")

        import_scenario(db.session, scenario, progress=progress)
        changes = evaluate_all(
            db.session, ruleset=app.config["ZHUXUN_RULESET"], as_of=today_in_china(), cause="demo"
        )
        click.echo(f"  flags opened: {changes.opened}")
        add_user("county", DEMO_PASSWORD, "county_admin", unit_code=scenario["county"]["code"])
        add_user("reviewer", DEMO_PASSWORD, "township_reviewer", unit_code=township)
        add_user("doctor", DEMO_PASSWORD, "doctor", doctor_id=doctor["id"])
        db.session.remove()
        db.engine.dispose()

    url = f"http://127.0.0.1:{port}"
    _say(f"3. The server on {url} (gunicorn, 2 workers)")
    server = subprocess.Popen(
        [_bin("zhuxun"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, server)
        _tablets(directory, url, env, doctor, assignment, home)
        _report(url)
        _pages(url)
        click.echo("")
        click.secho(f"Zhuxun is running at {url}", fg="yellow", bold=True)
        click.echo(
            f"  doctor's app:  {url}/app/  (sign in as doctor / {DEMO_PASSWORD}; works offline)"
        )
        click.echo(f"  API document:  {url}/api/v1/openapi.json")
        click.echo(f"  pages (zh-CN; English by the link at the top): sign in at {url}/login")
        click.echo(f"    review       {url}/review  (doctor-weeks; approve, send back, excuse)")
        click.echo(f"    county       {url}/county  (the month's summary, charts, CSV and XLSX)")
        click.echo(f"  logins (password {DEMO_PASSWORD}):")
        click.echo(f"    county       county admin of {scenario['county']['name']}: {url}/county")
        township_name = next(
            (p["name"] for p in scenario["places"] if p["code"] == township), township
        )
        click.echo(
            f"    reviewer     township reviewer of {township_name} ({township}): {url}/review"
        )
        click.echo(
            f"    doctor       {doctor['name']} ({doctor['id']}): {url}/app/ on a phone or "
            "tablet, also on the two simulated tablets"
        )
        click.echo(f"  tablets' data: {directory / 'tablet'}  and  {directory / 'clinic-pc'}")
        click.echo(
            f"  try: ZHUXUN_CLIENT_DIR={directory / 'tablet'} {_bin('zhuxun-client')} status"
        )
        if serve:
            click.echo("Press Ctrl-C to stop.")
            server.wait()
    except KeyboardInterrupt:
        click.echo("\nstopping")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _tablets(
    directory: Path,
    url: str,
    env: dict[str, str],
    doctor: dict[str, Any],
    assignment: dict[str, Any],
    place: dict[str, Any],
) -> None:
    tablet, pc = directory / "tablet", directory / "clinic-pc"
    today = datetime.now(CHINA).date()
    _say(f"4. Tablet of {doctor['name']}: logs two patrol sessions offline, then syncs")
    _client(tablet, "login", "--server", url, "--username", "doctor", env=env)
    ids = []
    for days_ago, patients, note in ((1, 11, "高血压随访"), (0, 7, "儿童体检")):
        day = today - timedelta(days=days_ago)
        out = _client(
            tablet,
            "visit",
            "add",
            "--place",
            place["code"],
            "--kind",
            "patrol",
            "--assignment",
            assignment["id"],
            "--check-in",
            f"{day}T08:30:00+08:00",
            "--check-out",
            f"{day}T12:10:00+08:00",
            "--patients",
            str(patients),
            "--notes",
            note,
            "--lat",
            str(place.get("lat") or 23.0),
            "--lon",
            str(place.get("lon") or 108.0),
            env=env,
        )
        ids.append(out.strip().splitlines()[-1])
    _client(tablet, "status", env=env)
    _client(tablet, "sync", env=env)

    _say("5. The clinic PC of the same doctor syncs, and both edit the same visit offline")
    _client(pc, "login", "--server", url, "--username", "doctor", env=env)
    _client(pc, "sync", env=env)
    _client(tablet, "visit", "edit", ids[1], "--patients", "9", env=env)
    _client(pc, "visit", "edit", ids[1], "--patients", "12", env=env)
    _client(tablet, "sync", env=env)
    _client(pc, "sync", env=env)
    _client(pc, "conflicts", env=env)


def _pages(url: str) -> None:
    """Sign in to the pages as the reviewer, the way a browser does (the form's CSRF token,
    the session cookie), and open the review overview: the pages answer under gunicorn."""
    _say("7. The review pages (as the township reviewer, through the login form)")
    http = requests.Session()
    form = http.get(f"{url}/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        raise click.ClickException("the login page has no form token")
    signed_in = http.post(
        f"{url}/login",
        data={
            "csrf_token": html.unescape(token[1]),
            "username": "reviewer",
            "password": DEMO_PASSWORD,
        },
        timeout=30,
    )
    overview = http.get(f"{url}/review", timeout=60, allow_redirects=False)
    if signed_in.status_code != 200 or overview.status_code != 200:
        raise click.ClickException(
            f"the review pages did not answer: login {signed_in.status_code}, "
            f"/review {overview.status_code}"
        )
    doctors = overview.text.count('<th scope="row">')
    click.echo(
        f"  {url}/review answers: {doctors} doctors of the township, {len(overview.content)} bytes"
    )


def _report(url: str) -> None:
    _say("6. What reached the server (as the county admin)")
    http = requests.Session()
    token = http.post(
        f"{url}/api/v1/auth/login",
        timeout=30,
        json={"username": "county", "password": DEMO_PASSWORD},
    ).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    flags = http.get(
        f"{url}/api/v1/flags", params={"state": "open", "limit": 5000}, timeout=60
    ).json()["items"]
    by_rule: dict[str, int] = {}
    for flag in flags:
        by_rule[flag["rule"]] = by_rule.get(flag["rule"], 0) + 1
    conflicts = http.get(f"{url}/api/v1/conflicts", timeout=30).json()["items"]
    visits, offset = 0, 0
    while True:
        page = http.get(
            f"{url}/api/v1/visits", params={"limit": 1000, "offset": offset}, timeout=60
        ).json()["items"]
        visits += len(page)
        offset += 1000
        if len(page) < 1000:
            break
    click.echo(f"  visits on the server: {visits}")
    click.echo(f"  open flags by rule: {json.dumps(by_rule, ensure_ascii=False)}")
    click.echo(f"  open conflicts: {len(conflicts)} (both versions kept for a reviewer)")
