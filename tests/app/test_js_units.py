"""The app's own logic (outbox, store, sync state, backoff, week counting, form checks) under
Node's built-in test runner, on the vendored SQLite build, as part of `make test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNITS = Path(__file__).with_name("js")


def test_the_app_s_javascript_units_pass_under_node_test() -> None:
    node = shutil.which("node")
    assert node, "Node 20 runs the app's unit tests (it is on the machine and on CI)"
    files = sorted(str(p) for p in UNITS.glob("*.test.mjs"))
    assert len(files) >= 4
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    passed = int(done.stdout.split("# pass ")[1].split()[0])
    assert passed >= 20, done.stdout[-2000:]
