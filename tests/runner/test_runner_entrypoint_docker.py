"""runner/entrypoint.sh on the docker image's path (RUNNER_DOCKER=true, Docker classes), run for
real with stand-ins at the edge of its process: a fake `dockerd` that creates its socket after a
delay (or never, or fails), and fake `id`/`setpriv`, since a test runs neither as root nor with a
Docker engine. What the real image does as root (setpriv, the docker group) is not run here."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.runner_harness import EntrypointHarness
from tests.runner.test_runner_entrypoint import (
    CONFIG,
    CREDENTIAL_VARIABLES,
    TASK_ENV,
    log_lines,
)

DROP = ["--reuid=1001", "--regid=1001", "--init-groups", "--inh-caps=-all"]


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A short path for the socket (a unix socket's path is limited to 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))
    yield folder / "docker.sock"
    shutil.rmtree(folder, ignore_errors=True)


def docker_env(harness: EntrypointHarness, socket: Path, **fakes) -> dict[str, str]:
    return (
        TASK_ENV
        | CREDENTIAL_VARIABLES
        | harness.fake_docker_tools(**fakes)
        | {"RUNNER_DOCKER": "true", "RUNNER_DOCKER_SOCKET": str(socket)}
    )


def test_runner_starts_only_after_dockerd_created_its_socket(harness, socket_path):
    result = harness.run(docker_env(harness, socket_path), args=("--once",))
    assert result.returncode == 0, result.stderr
    assert (harness.out / "socket-created").exists()
    assert (harness.out / "socket").read_text().strip() == "present"  # as run.sh started
    assert result.recorded("dockerd-argv") == [f"--host=unix://{socket_path}", "--group=docker"]
    messages = [line["msg"] for line in log_lines(result.stderr)]
    assert messages.index("starting dockerd") < messages.index("dockerd is ready")
    assert result.runner_argv() == ["--once"]


def test_dockerd_gets_an_empty_environment(harness, socket_path):
    result = harness.run(docker_env(harness, socket_path))
    assert result.returncode == 0, result.stderr
    environ = result.dockerd_environ()
    assert set(environ) == {"PATH"}  # no JIT config, no credentials, nothing of the task's
    assert CONFIG not in (harness.out / "dockerd-environ").read_text()
    assert CONFIG not in result.stdout + result.stderr


def test_runner_drops_to_uid_1001_with_its_groups(harness, socket_path):
    result = harness.run(docker_env(harness, socket_path), args=("--once",))
    assert result.returncode == 0, result.stderr
    assert result.recorded("setpriv-argv") == DROP
    environ = result.runner_environ()
    assert environ["ACTIONS_RUNNER_INPUT_JITCONFIG"] == CONFIG  # only run.sh has it
    assert environ["HOME"] == "/home/runner"
    assert environ["DOCKER_HOST"] == f"unix://{socket_path}"  # a socket not at the default
    assert not {k for k in environ if k.startswith("RUNNER_DOCKER")}
    assert not set(CREDENTIAL_VARIABLES) & set(environ)
    assert CONFIG.encode() not in result.runner_cmdline()


def test_a_socket_that_never_comes_stops_the_task_with_exit_code_5(harness, socket_path):
    env = docker_env(harness, socket_path, dockerd="never") | {"RUNNER_DOCKER_WAIT_SECONDS": "1"}
    result = harness.run(env, timeout=30)
    assert result.returncode == 5
    assert not result.ran_runner
    assert f"dockerd did not create {socket_path} within 1s" in log_lines(result.stderr)[-1]["msg"]


def test_a_dockerd_that_fails_stops_the_task_at_once_with_exit_code_5(harness, socket_path):
    env = docker_env(harness, socket_path, dockerd="exit") | {"RUNNER_DOCKER_WAIT_SECONDS": "600"}
    result = harness.run(env, timeout=30)
    assert result.returncode == 5
    assert not result.ran_runner
    assert "dockerd: failed to start" in result.stderr  # its own log reaches the task's
    assert (
        "dockerd exited before its socket appeared"
        in log_lines(result.stderr.splitlines()[-1])[0]["msg"]
    )


@pytest.mark.parametrize(
    ("fakes", "extra", "message"),
    [
        ({"uid": 1001}, {}, "needs the docker image, started as root"),
        ({"dockerd": None}, {}, "dockerd is not installed"),
        ({}, {"RUNNER_DOCKER_WAIT_SECONDS": "soon"}, "RUNNER_DOCKER_WAIT_SECONDS must be"),
    ],
)
def test_misconfigured_docker_class_exits_4_before_anything_starts(
    harness, socket_path, fakes, extra, message
):
    env = docker_env(harness, socket_path, **fakes) | extra
    if fakes.get("dockerd", "") is None:  # no dockerd anywhere on PATH
        env["PATH"] = f"{harness.tmp_path / 'bin'}:/usr/bin:/bin"
        if shutil.which("dockerd", path=env["PATH"]):
            pytest.skip("this machine has a dockerd in /usr/bin")
    result = harness.run(env)
    assert result.returncode == 4
    assert not result.ran_runner
    assert not (harness.out / "dockerd-argv").exists()
    assert message in log_lines(result.stderr)[-1]["msg"]


@pytest.mark.parametrize("value", ["TRUE", "1", "yes", "", "false"])
def test_without_the_exact_switch_no_dockerd_starts(harness, socket_path, value):
    """The plain path, even as root: no daemon, no setpriv, run.sh exec'd itself (same pid)."""
    env = docker_env(harness, socket_path) | {"RUNNER_DOCKER": value}
    process = harness.popen(env)
    process.communicate(timeout=30)
    assert process.returncode == 0
    assert not (harness.out / "dockerd-argv").exists()
    assert not (harness.out / "setpriv-argv").exists()
    assert int((harness.out / "pid").read_text()) == process.pid


def test_cgroup_v2_processes_move_out_of_the_root_for_dockerd(harness, socket_path):
    """As the docker:dind image does: dockerd can only enable controllers for its containers
    in a cgroup without processes of its own."""
    env = docker_env(harness, socket_path)
    cgroup = Path(env["RUNNER_DOCKER_CGROUP"])
    cgroup.mkdir()
    (cgroup / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (cgroup / "cgroup.procs").write_text("1\n7\n")
    result = harness.run(env)
    assert result.returncode == 0, result.stderr
    assert (cgroup / "init" / "cgroup.procs").read_text().split() == ["1", "7"]
    assert (cgroup / "cgroup.subtree_control").read_text().split() == [
        "+cpuset",
        "+cpu",
        "+io",
        "+memory",
        "+pids",
    ]
