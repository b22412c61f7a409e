"""`ecsrunner --version`: the checkout's version (its pyproject.toml), else the installed one's."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

from ecsrunner.cli import DISTRIBUTION, PYPROJECT, cli, version


def test_version_is_the_checkouts() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ecsrunner, version {declared}\n"


def test_an_installed_copy_says_its_metadata_version(tmp_path: Path) -> None:
    """Installed (not editable), no pyproject.toml sits beside the package."""
    assert version(DISTRIBUTION, tmp_path / "pyproject.toml") == metadata.version(DISTRIBUTION)


def test_a_checkout_that_is_not_installed_says_its_pyproject_version(tmp_path: Path) -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]
    assert declared["name"] == DISTRIBUTION
    # a distribution name nothing installed: what a checkout run without `pip install` sees
    assert version("not-installed-anywhere", PYPROJECT) == "unknown"  # another project's file
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "not-installed-anywhere"\nversion = "9.8.7"\n')
    assert version("not-installed-anywhere", pyproject) == "9.8.7"
    assert version("not-installed-anywhere", tmp_path / "missing.toml") == "unknown"
    pyproject.write_text("[project\n")  # not TOML
    assert version("not-installed-anywhere", pyproject) == "unknown"
