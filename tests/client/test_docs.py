"""Every command of `zhuxun-client` is documented in offline_client/README.md."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from offline_client.cli import cli

README = (Path(__file__).parents[2] / "offline_client" / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, prefix=f"{path} "))
    return paths


@pytest.mark.parametrize("path", command_paths(cli))
def test_every_command_is_documented_in_the_readme(path):
    assert f"zhuxun-client {path}" in README or f"`{path}`" in README
