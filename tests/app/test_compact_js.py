"""The app expands a compact pull page (server/static/app/js/compact.js) to exactly what the
Python side (sync/compact.py) compacted: every flag of a demo county, key order included, and
period labels read the same by both (issue 14, the wire)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

from demo_county import generate_county
from rules import evaluate
from rules.ruleset import DEFAULT_PRESET, preset
from rules.scenario import trusted_scenario
from sync.compact import PageCompactor, period_days

APP_JS = Path(__file__).resolve().parents[2] / "server" / "static" / "app" / "js" / "compact.js"
EXPAND = """
import { readFileSync } from 'node:fs';
import { expandPage, periodDays } from '%s';
const input = JSON.parse(readFileSync(0, 'utf8'));
const page = expandPage(input.page);
process.stdout.write(JSON.stringify({
  data: page.changes.map((c) => JSON.stringify(c.data)),
  full: input.full.map((c) => JSON.stringify(c.data)),
  periods: input.periods.map((p) => periodDays(p)),
}));
"""
PERIODS = [
    "2024-W01", "2020-W53", "2021-W53", "2026-W52", "1000-W01", "9998-W52", "9999-W01",
    "2024-02", "2023-02", "2024-12", "9998-12", "9999-12", "2024", "1000", "0999", "2024-02-29",
    "2023-02-29", "2024-13", "2024-00", "2024-W00", "20240101", "2024-W01-1", "", "a/b",
    "2024-03-02/2024-06-30", "2024-03-02/2024-02-30", "2024-3-5",
]  # fmt: skip


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_the_app_expands_every_demo_county_flag_to_the_text_python_compacted() -> None:
    node = shutil.which("node")
    assert node, "Node runs the app's JavaScript in tests"
    county = generate_county(townships=2, villages=6, doctors=5, weeks=10)
    as_of = max(date.fromisoformat(v["check_in"][:10]) for v in county["visits"])
    found = evaluate(trusted_scenario(county), as_of=as_of, ruleset=preset(DEFAULT_PRESET))
    bodies = [f.to_dict() | {"state": "resolved" if n % 3 else "open"} for n, f in enumerate(found)]
    bodies += [bodies[0] | {"scope": "2024-01-01/2024-01-02"}, bodies[1] | {"rule": "other"}]
    changes = [
        {"collection": "flags", "id": b["key"], "version": 1, "deleted": False, "seq": n,
         "data": b, "meta": {}}
        for n, b in enumerate(bodies)
    ]  # fmt: skip
    compactor = PageCompactor(bodies)
    page = {"changes": [compactor.change(c) for c in changes], "cursor": "1", "has_more": False,
            "flags_shared": compactor.shared()}  # fmt: skip
    assert all("flag" in c for c in page["changes"])
    done = subprocess.run(
        [node, "--input-type=module", "-e", EXPAND % APP_JS.as_uri()],
        input=text({"page": page, "full": changes, "periods": PERIODS}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expanded = json.loads(done.stdout)
    # What the app stores from the full form (JSON.stringify of what it parsed) and from the
    # compact one, text for text.
    assert expanded["data"] == expanded["full"]
    assert len(expanded["data"]) == len(bodies)
    assert [tuple(p) if p else None for p in expanded["periods"]] == [
        period_days(p) for p in PERIODS
    ]
