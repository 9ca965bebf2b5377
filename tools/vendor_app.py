"""Copy the doctor's app's pinned JavaScript and WebAssembly dependencies from node_modules
(installed by `npm ci` from package-lock.json) into server/static/app/vendor/, and record
what was copied in vendor/VENDOR.json: each package's version and lock integrity, and each
file's sha256. `make vendor` runs it; tests/app/test_vendor.py checks the result against
the lock, so the server and `make demo` need no Node at run time."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "server" / "static" / "app" / "vendor"
# package -> {file in vendor/: path inside the package}. Only what the app loads: the
# ES-module build of SQLite (it finds sqlite3.wasm next to itself) and the WebAssembly.
FILES = {
    "@sqlite.org/sqlite-wasm": {
        "sqlite3.mjs": "sqlite-wasm/jswasm/sqlite3.mjs",
        "sqlite3.wasm": "sqlite-wasm/jswasm/sqlite3.wasm",
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    VENDOR.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {}
    for package, files in FILES.items():
        locked = lock["packages"][f"node_modules/{package}"]
        source = ROOT / "node_modules" / package
        installed = json.loads((source / "package.json").read_text(encoding="utf-8"))
        if installed["version"] != locked["version"]:
            print(f"{package}: node_modules has {installed['version']}, the lock "
                  f"{locked['version']}; run npm ci", file=sys.stderr)  # fmt: skip
            return 1
        copied = {}
        for name, inside in files.items():
            shutil.copyfile(source / inside, VENDOR / name)
            copied[name] = {"from": inside, "sha256": sha256(VENDOR / name)}
        record[package] = {
            "version": locked["version"],
            "license": locked.get("license"),
            "integrity": locked["integrity"],
            "files": copied,
        }
    (VENDOR / "VENDOR.json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"vendored {sum(len(f) for f in FILES.values())} file(s) into {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
