"""The layering of DEVELOPERS.md: the pure packages import no web framework or database."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("flask", "sqlalchemy", "psycopg", "sqlite3", "sqlite_utils", "werkzeug", "requests")


@pytest.mark.parametrize("package", ["sync", "rules", "forms"])
def test_a_pure_package_imports_neither_flask_nor_a_database(package: str) -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert leaked == [], f"{package} pulls in {leaked}"
