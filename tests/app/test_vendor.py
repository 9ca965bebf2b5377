"""The vendored JavaScript and WebAssembly the app serves are what package-lock.json pins:
the same package versions and integrity, and each copied file the sha256 recorded when
`make vendor` copied it (and, where node_modules is installed, the package's own file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "server" / "static" / "app" / "vendor"


def test_the_vendored_files_match_the_lock() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    record = json.loads((VENDOR / "VENDOR.json").read_text(encoding="utf-8"))
    assert set(record) == set(package["dependencies"])
    for name, vendored in record.items():
        locked = lock["packages"][f"node_modules/{name}"]
        assert package["dependencies"][name] == locked["version"], "pinned exactly"
        assert vendored["version"] == locked["version"]
        assert vendored["integrity"] == locked["integrity"]
        for file_name, meta in vendored["files"].items():
            data = (VENDOR / file_name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == meta["sha256"], file_name
            installed = ROOT / "node_modules" / name / meta["from"]
            if installed.exists():
                assert installed.read_bytes() == data, f"{file_name} differs from {installed}"
    served = {p.name for p in VENDOR.iterdir()} - {"VENDOR.json"}
    assert served == {f for v in record.values() for f in v["files"]}, "nothing unrecorded"


def test_the_app_loads_sqlite_from_the_vendored_build() -> None:
    worker = (ROOT / "server" / "static" / "app" / "js" / "db-worker.js").read_text("utf-8")
    assert "from '../vendor/sqlite3.mjs'" in worker
