#!/usr/bin/env python3
"""Builds the control-plane Lambda zip (docs/CONTRACTS.md "Lambda package and zip").

The zip holds the `control_plane` package at its root and, beside it, the third-party
dependencies of lambda/requirements.txt installed by pip *for the Lambda platform*
(manylinux x86_64 wheels for CPython 3.12), whatever machine runs this. That file is exported
from uv.lock (`make lock`) and pins every package with its hashes: pip installs it with
--require-hashes, so a wheel that differs from the locked one fails the build. Dependencies are
cached under .build/ by a hash of the requirements, so rebuilding after a code change only
re-zips. The zip is reproducible: the same inputs and tools give the same bytes.

Size (Lambda's cold start reads all of it): files the function never loads stay out
(RUNTIME_UNNEEDED), and the shared objects lose the symbol tables that only debuggers read
when a `strip` for Linux objects is at hand (GNU binutils or LLVM; it is optional).

The Terraform module runs this script itself (terraform_data + local-exec) when the sources
change or the zip is missing; it needs nothing but python3 (3.8+) with pip. Prebuild a zip for
the module's `lambda_zip_path` where applies run without python3 or network:

    make lambda-zip      # python3 scripts/build_lambda.py --output .build/lambda.zip
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "control_plane"
HANDLER_MODULE = "handler.py"  # control_plane.handler.lambda_handler
# The Lambda runtime (python3.12 on x86_64) and pip's matching wheel tags.
PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
)
# 1980-01-01, the earliest time a zip can hold: fixed so that the same inputs give the same zip.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Files of the dependencies that the Lambda never loads (paths in the zip, fnmatch patterns):
# - cffi's Python package and pycparser generate C bindings at build time; at run time the
#   Rust extension of cryptography loads only cffi's compiled `_cffi_backend` (kept, with
#   cffi's dist-info and licence);
# - charset_normalizer's compiled speed-ups have pure-Python twins beside them, and requests
#   only guesses the encoding of a response that declares none (GitHub's JSON declares one);
# - urllib3 comes with the runtime's botocore (requests accepts 1.26 and 2.x): a bundled copy
#   would shadow the runtime's for botocore too, and costs ~50 ms of every cold start;
# - type stubs and markers.
RUNTIME_UNNEEDED = (
    "urllib3/*",
    "urllib3-*.dist-info/*",
    "cffi/*",
    "pycparser/*",
    "pycparser-*.dist-info/*",
    "charset_normalizer/*.so",
    "*.pyi",
    "*/py.typed",
)


class BuildError(Exception):
    """The package cannot be built; the message says why and what to do."""


def is_packaged(relative: Path) -> bool:
    """Bytecode caches and console scripts stay out (the module's source hash skips them too)."""
    return "__pycache__" not in relative.parts and relative.suffix != ".pyc"


def package_files(source: Path) -> list[tuple[str, Path]]:
    if not (source / HANDLER_MODULE).is_file():
        raise BuildError(
            f"{source / HANDLER_MODULE} is missing: the Lambda's handler is "
            f"{PACKAGE}.handler.lambda_handler"
        )
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and is_packaged(relative):
            files.append((f"{PACKAGE}/{relative.as_posix()}", path))
    return files


def requirements_digest(requirements: Path, stripped: bool = False) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(" ".join(PIP_PLATFORM_ARGS).encode())
    if stripped:
        digest.update(b"stripped")
    return digest.hexdigest()[:16]


def strip_command() -> list[str] | None:
    """`strip` of GNU binutils or LLVM (both handle Linux ELF objects; macOS's does not)."""
    for name in ("strip", "llvm-strip"):
        path = shutil.which(name)
        if path is None:
            continue
        version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        if version.returncode == 0 and ("GNU" in version.stdout or "LLVM" in version.stdout):
            return [path, "--strip-unneeded"]
    return None


def strip_shared_objects(root: Path, command: list[str]) -> None:
    """Drops the symbol tables the dynamic loader never reads (cryptography's Rust extension
    loses a fifth of its size). An object strip cannot handle is kept as it is."""
    for path in sorted(root.rglob("*.so")):
        stripped = path.with_name(path.name + ".stripped")
        result = subprocess.run(
            [*command, "-o", str(stripped), str(path)], capture_output=True, check=False
        )
        if result.returncode == 0:
            os.replace(stripped, path)
        else:
            stripped.unlink(missing_ok=True)


def install_dependencies(requirements: Path, cache_dir: Path) -> Path:
    """pip-installs the requirements for the Lambda platform once per requirements hash."""
    strip = strip_command()
    target = cache_dir / requirements_digest(requirements, stripped=strip is not None)
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=cache_dir))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # bytecode of this Python would not match the Lambda's
            "--require-hashes",
            "--target",
            str(staging),
            *PIP_PLATFORM_ARGS,
            "--requirement",
            str(requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            if "No module named pip" in result.stderr:
                raise BuildError(
                    f"pip is not available for {sys.executable}: install pip (e.g. the "
                    "python3-pip package), or build the zip elsewhere and pass lambda_zip_path"
                )
            raise BuildError(f"pip could not install {requirements}:\n{result.stderr.strip()}")
        if strip is not None:
            strip_shared_objects(staging, strip)
        try:
            staging.rename(target)  # atomic: a concurrent build may have won the race
        except OSError:
            if not target.is_dir():
                raise
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dependency_files(deps: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(deps.rglob("*")):
        relative = path.relative_to(deps)
        name = relative.as_posix()
        unneeded = any(fnmatch.fnmatch(name, pattern) for pattern in RUNTIME_UNNEEDED)
        if path.is_file() and relative.parts[0] != "bin" and is_packaged(relative) and not unneeded:
            files.append((name, path))
    return files


def write_zip(entries: list[tuple[str, Path]], output: Path) -> None:
    """Writes the zip next to `output`, then renames it into place (never a half-written zip)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build(source: Path, requirements: Path, output: Path, cache_dir: Path) -> int:
    """Builds the zip; returns the number of files in it."""
    code = package_files(source)
    deps = install_dependencies(requirements, cache_dir)
    packaged = {name for name, _ in code}
    clashes = sorted(name for name, _ in dependency_files(deps) if name in packaged)
    if clashes:
        raise BuildError(f"dependencies would overwrite package files: {clashes}")
    entries = code + dependency_files(deps)
    write_zip(entries, output)
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".build" / "lambda.zip")
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "lambda" / PACKAGE)
    parser.add_argument(
        "--requirements", type=Path, default=REPO_ROOT / "lambda" / "requirements.txt"
    )
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".build" / "lambda-deps")
    args = parser.parse_args(argv)
    try:
        count = build(args.source, args.requirements, args.output, args.cache_dir)
    except BuildError as error:
        print(f"build_lambda: {error}", file=sys.stderr)
        return 1
    size = args.output.stat().st_size
    print(f"build_lambda: {args.output} ({count} files, {size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
