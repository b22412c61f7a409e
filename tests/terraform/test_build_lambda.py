"""scripts/build_lambda.py: the Lambda zip the module deploys (docs/CONTRACTS.md)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.terraform.tfharness import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "build_lambda.py"
PACKAGE = REPO_ROOT / "lambda" / "control_plane"


def build(output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # python3 as the module runs it (terraform_data + local-exec), not this virtualenv.
    python = shutil.which("python3") or sys.executable
    return subprocess.run(
        [python, str(SCRIPT), "--output", str(output), *extra],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("lambda") / "lambda.zip"
    result = build(output)
    assert result.returncode == 0, result.stderr
    return output


def test_zip_holds_the_package_at_its_root_and_the_dependencies_beside_it(built_zip: Path) -> None:
    names = set(zipfile.ZipFile(built_zip).namelist())
    package = {
        f"control_plane/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert "control_plane/handler.py" in names  # handler control_plane.handler.lambda_handler
    assert package <= names
    for dependency in ["requests/__init__.py", "jwt/__init__.py", "cryptography/__init__.py"]:
        assert dependency in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert not any(name.startswith("bin/") for name in names)
    assert "boto3/__init__.py" not in names  # the Lambda runtime has it


def test_native_dependencies_are_built_for_the_lambda_platform(built_zip: Path) -> None:
    """Linux x86_64 ELF objects for CPython 3.12 (or the stable ABI), whatever this machine is."""
    archive = zipfile.ZipFile(built_zip)
    shared = [name for name in archive.namelist() if name.endswith(".so")]
    assert any(name.startswith("cryptography/") for name in shared)
    for name in shared:
        data = archive.read(name)
        assert data[:4] == b"\x7fELF", name
        assert int.from_bytes(data[18:20], "little") == 0x3E, f"{name} is not x86_64"
        tag = Path(name).name.split(".", 1)[1]
        assert tag in {"abi3.so", "so"} or "cpython-312-x86_64-linux-gnu" in tag, name


def test_two_builds_on_clean_caches_give_the_same_bytes(tmp_path: Path) -> None:
    zips = []
    for run in ("first", "second"):
        output = tmp_path / run / "lambda.zip"
        result = build(output, "--cache-dir", str(tmp_path / run / "cache"))
        assert result.returncode == 0, result.stderr
        zips.append(hashlib.sha256(output.read_bytes()).hexdigest())
    assert zips[0] == zips[1]


def test_bytecode_caches_stay_out_of_the_zip(tmp_path: Path) -> None:
    source = tmp_path / "control_plane"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    (source / "stale.pyc").write_bytes(b"\0")
    output = tmp_path / "lambda.zip"
    assert build(output, "--source", str(source)).returncode == 0
    names = zipfile.ZipFile(output).namelist()
    assert "control_plane/handler.py" in names
    assert not [name for name in names if name.endswith(".pyc")]


def test_a_package_without_its_handler_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "control_plane"
    source.mkdir()
    (source / "__init__.py").write_text("")
    output = tmp_path / "lambda.zip"
    result = build(output, "--source", str(source))
    assert result.returncode == 1
    assert "handler.py is missing" in result.stderr
    assert not output.exists()
    assert not list(tmp_path.glob(".lambda.zip.*")), "a partial zip was left behind"


@pytest.mark.parametrize(
    ("requirement", "reason"),
    [
        # The Lambda's dependencies come from the hashed lock only (lambda/requirements.txt).
        ("requests==2.32.3", "Hashes are required in --require-hashes mode"),
        # A wheel that is not there: pip fails without asking any index.
        ("{tmp}/missing-1.0-py3-none-any.whl --hash=sha256:" + "0" * 64, "missing-1.0"),
    ],
)
def test_a_bad_requirement_fails_with_pips_reason(
    requirement: str, reason: str, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(requirement.format(tmp=tmp_path) + "\n")
    output = tmp_path / "lambda.zip"
    result = build(
        output, "--requirements", str(requirements), "--cache-dir", str(tmp_path / "cache")
    )
    assert result.returncode == 1
    assert "pip could not install" in result.stderr and reason in result.stderr
    assert not output.exists()
    assert not [p for p in (tmp_path / "cache").iterdir()], "a failed install was cached"
