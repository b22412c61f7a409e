"""uv.lock, which `make setup` installs, agrees with pyproject.toml, and its exports are current.

uv.lock pins every library and tool with hashes; requirements/uv.txt (uv's own pin, installed
first) and lambda/requirements.txt (the Lambda's dependencies, which scripts/build_lambda.py
installs with pip) are exported from it by `make lock`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")
EXPORTS = {
    "uv": REPO_ROOT / "requirements" / "uv.txt",
    "lambda": REPO_ROOT / "lambda" / "requirements.txt",
}


def uv(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), *args, "--offline", "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_lock_agrees_with_pyproject() -> None:
    result = uv("lock", "--check")
    assert result.returncode == 0, result.stderr


def test_a_requirement_the_lock_lacks_fails_the_check(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pytest>=8",', '"pytest>=8", "six>=1",'))
    result = uv("lock", "--check", cwd=tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr


def test_every_locked_package_has_hashes() -> None:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    for package in lock["package"]:
        if package["source"].get("editable") == ".":
            continue  # this project
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files, package["name"]
        assert all(file["hash"].startswith("sha256:") for file in files), package["name"]


def without_header(text: str) -> list[str]:
    """The export's lines but its header comment, which names the command that wrote it."""
    return [line for line in text.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("group", sorted(EXPORTS))
def test_exports_match_the_lock(group: str, tmp_path: Path) -> None:
    """Each export is what its own header's command (the Makefile's `lock`) gives today."""
    current = EXPORTS[group].read_text()
    command = shlex.split(current.splitlines()[1].lstrip("# "))
    assert command[:2] == ["uv", "export"] and "--frozen" in command, command
    assert command[command.index("--only-group") + 1] == group
    exported = tmp_path / "export.txt"
    output = command.index("-o") + 1
    result = uv(*command[1:output], str(exported), *command[output + 1 :], "--quiet")
    assert result.returncode == 0, result.stderr
    assert without_header(current) == without_header(exported.read_text()), (
        f"{EXPORTS[group]}: run `make lock`"
    )
    assert any(line.strip().startswith("--hash=sha256:") for line in without_header(current))


def test_the_lambda_export_pins_what_the_lambda_imports() -> None:
    lines = EXPORTS["lambda"].read_text().splitlines()
    pinned = {line.split("==")[0].lower() for line in lines if "==" in line}
    assert {"requests", "pyjwt", "cryptography"} <= pinned
    assert "boto3" not in pinned  # the Lambda runtime has it
