"""The push-ingest benchmark still runs: a tiny run as a subprocess, no speed asserted.

CI runs `make test` only, so this is where a broken `bench/` shows up (issue 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_push_benchmark_runs_end_to_end_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_push.py"),
         "--visits", "300", "--doctors", "5", "--no-save"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| production `zhuxun serve` |" in done.stdout
    assert "| bare Flask + marshmallow (floor) |" in done.stdout
    assert "| raw sqlite3 executemany (limit) |" in done.stdout
    assert "peak RSS of a production worker" in done.stdout
