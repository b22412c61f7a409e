"""`ecsrunner runners exec`: ExecuteCommand, then session-manager-plugin with exactly the
arguments the AWS CLI gives it (awscli/customizations/ecs/executecommand.py).

moto implements neither ExecuteCommand nor the container `runtimeId`, so the fault proxy in
front of ECS answers those two calls with ECS's documented shapes (the HTTP edge: botocore
still serialises the request and parses the answer). The plugin is the process edge: a
stand-in executable on PATH that records its argv.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecsrunner.ecs_exec import INSTALL_URL
from local_mode import stack
from tests.cli.conftest import Cli, advance, queue, task_exits
from tests.control_plane.harness import ACCOUNT, REGION, Fleet

pytestmark = pytest.mark.usefixtures("held_tasks")

RUNTIME_ID = "8a8b5bb1e7c44c1fa4c2b3b1d2e6f0a1-3421806932"
SESSION = {  # the members of ECS's Session shape, in its order
    "sessionId": "ecs-execute-command-0d2b3c4e5f6a7b8c9",
    "streamUrl": (
        "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/"
        "ecs-execute-command-0d2b3c4e5f6a7b8c9?role=publish_subscribe&cell-number=AAEAAQ"
    ),
    "tokenValue": "AAEAAcjWj8e0Ex4xBzTnAhSdZsVtqMuXA6SdpGtiIPbT3HYyAAAAAGb6yWTs3cret0ken",
}
PLUGIN_SCRIPT = """#!{python}
# session-manager-plugin stand-in: records its argv and whether Ctrl-C reaches its parent
import json, signal, sys
from pathlib import Path
here = Path(__file__).parent
seen = {{"argv": sys.argv[1:], "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN}}
(here / "calls.jsonl").open("a").write(json.dumps(seen) + "\\n")
code = here / "exit_code"
sys.exit(int(code.read_text()) if code.exists() else 0)
"""


@dataclass
class Plugin:
    bin_dir: Path

    @property
    def calls(self) -> list[dict[str, Any]]:
        log = self.bin_dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def exits_with(self, code: int) -> None:
        (self.bin_dir / "exit_code").write_text(str(code))

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "session-manager-plugin"
    script.write_text(PLUGIN_SCRIPT.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return Plugin(bin_dir)


def ecs_answers_exec(fleet: Fleet, task_arn: str) -> None:
    """ECS's answers to ExecuteCommand and to the DescribeTasks that finds the runtime id."""
    cluster_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{fleet.prefix}"
    fleet.ecs_proxy.add(
        {
            "operation": "ExecuteCommand",
            "status": 200,
            "body": {
                "clusterArn": cluster_arn,
                "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{fleet.prefix}/x",
                "containerName": "runner",
                "interactive": True,
                "session": SESSION,
                "taskArn": task_arn,
            },
        }
    )
    fleet.ecs_describes(
        {
            "taskArn": task_arn,
            "clusterArn": cluster_arn,
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "enableExecuteCommand": True,
            "containers": [
                {
                    "name": "runner",
                    "lastStatus": "RUNNING",
                    "runtimeId": RUNTIME_ID,
                    "managedAgents": [{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}],
                }
            ],
        }
    )


@pytest.fixture
def busy(fleet: Fleet) -> int:
    job_id = queue(fleet)
    advance(fleet, job_id, "busy")
    ecs_answers_exec(fleet, fleet.record(job_id)["task_arn"])
    return job_id


def test_the_plugin_gets_what_the_aws_cli_gives_it(
    fleet: Fleet, run: Cli, plugin: Plugin, busy: int
) -> None:
    task_arn = fleet.record(busy)["task_arn"]
    task_id = task_arn.rsplit("/", 1)[1]

    result = run("runners", "exec", fleet.runner_name(busy), env=plugin.env)

    assert result.exit_code == 0, result.output
    (call,) = plugin.calls
    assert call["argv"] == [
        json.dumps(SESSION),
        REGION,
        "StartSession",
        "",  # no profile
        json.dumps({"Target": f"ecs:{fleet.prefix}_{task_id}_{RUNTIME_ID}"}),
        fleet.ecs_proxy.url,  # the ECS endpoint in use (here AWS_ENDPOINT_URL_ECS)
    ]
    assert call["sigint_ignored"]  # Ctrl-C is the remote shell's, as with the AWS CLI
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after
    (request,) = fleet.ecs_proxy.requests("ExecuteCommand")
    assert request["body"] == {
        "cluster": fleet.prefix,
        "task": task_arn,
        "container": "runner",
        "command": "/bin/bash",
        "interactive": True,
    }
    assert SESSION["tokenValue"] not in result.output  # the session token goes to the plugin only


def test_a_command_and_a_profile(
    fleet: Fleet, run: Cli, plugin: Plugin, busy: int, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(f"[profile fleet-ops]\nregion = {REGION}\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[fleet-ops]\naws_access_key_id = testing\naws_secret_access_key = x\n")
    env = {
        **plugin.env,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
    }

    result = run(
        "runners", "exec", str(busy), "--command", "df -h", "--profile", "fleet-ops", env=env
    )

    assert result.exit_code == 0, result.output
    (call,) = plugin.calls
    assert call["argv"][3] == "fleet-ops"
    assert fleet.ecs_proxy.requests("ExecuteCommand")[0]["body"]["command"] == "df -h"


def test_the_plugin_missing_is_exit_2_with_the_install_link(
    fleet: Fleet, run: Cli, busy: int, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    result = run("runners", "exec", str(busy), env={"PATH": str(empty)})

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: session-manager-plugin is not installed; ECS Exec needs it: {INSTALL_URL}\n"
    )
    assert INSTALL_URL.startswith("https://docs.aws.amazon.com/systems-manager/")
    assert not fleet.ecs_proxy.requests("ExecuteCommand")  # no session opened in vain


def test_local_mode_has_no_ecs_exec(fleet: Fleet, run: Cli, tmp_path: Path) -> None:
    """What `source .local/env` exports (local_mode/stack.py) makes exec say so, and not ask
    for the plugin: the emulator implements no ExecuteCommand."""
    job_id = queue(fleet)
    advance(fleet, job_id, "busy")
    local = stack.env_values(
        {
            "aws_endpoint_url": fleet.moto_url,
            "region": REGION,
            "runner_table": f"{fleet.prefix}-state",
            "class_sizes_parameter": f"/{fleet.prefix}/config/class-sizes",
            "cluster_name": fleet.prefix,
            "name_prefix": fleet.prefix,
            "github_api_url": fleet.github.url,
            "webhook_url": "http://127.0.0.1:9/webhook",
        }
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    name = fleet.runner_name(job_id)

    result = run("runners", "exec", name, env={**local, "PATH": str(empty)})

    assert result.exit_code == 1
    assert result.stderr == (
        "error: local mode has no ECS Exec: the emulator runs no containers to enter "
        f"(`ecsrunner runners details {name}` shows the runner and its task)\n"
    )
    assert not fleet.ecs_proxy.requests("ExecuteCommand")


def test_the_plugin_failing_is_exit_1(fleet: Fleet, run: Cli, plugin: Plugin, busy: int) -> None:
    plugin.exits_with(255)
    result = run("runners", "exec", str(busy), env=plugin.env)
    assert result.exit_code == 1
    assert result.stderr == "error: session-manager-plugin exited with 255\n"


def test_ecs_refusing_is_one_line(fleet: Fleet, run: Cli, plugin: Plugin) -> None:
    job_id = queue(fleet)
    advance(fleet, job_id, "running")
    message = (
        "The execute command failed because execute command was not enabled when the task "
        "was run or the execute command agent isn't running."
    )
    fleet.ecs_proxy.add(
        {
            "operation": "ExecuteCommand",
            "status": 400,
            "body": {"__type": "InvalidParameterException", "message": message},
        }
    )

    result = run("runners", "exec", str(job_id), env=plugin.env)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: AWS refused ExecuteCommand: InvalidParameterException: {message}\n"
    )
    assert plugin.calls == []


def test_a_container_without_runtime_id(fleet: Fleet, run: Cli, plugin: Plugin) -> None:
    job_id = queue(fleet)  # starting: moto's DescribeTasks has no runtimeId
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.ecs_proxy.add(
        {
            "operation": "ExecuteCommand",
            "status": 200,
            "body": {
                "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{fleet.prefix}",
                "containerName": "runner",
                "interactive": True,
                "session": SESSION,
                "taskArn": task_arn,
            },
        }
    )

    result = run("runners", "exec", str(job_id), env=plugin.env)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the runner container of {fleet.runner_name(job_id)} has no runtime id yet: "
        "is it running?\n"
    )
    assert plugin.calls == []


def test_a_finished_runner(fleet: Fleet, run: Cli, plugin: Plugin) -> None:
    job_id = queue(fleet)
    advance(fleet, job_id, "busy")
    task_exits(fleet, job_id, exit_code=1)

    result = run("runners", "exec", str(job_id), env=plugin.env)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: runner {fleet.runner_name(job_id)} has finished (failed): no task to enter\n"
    )
    assert not fleet.ecs_proxy.requests("ExecuteCommand")


def test_a_rejected_job_has_no_task(fleet: Fleet, run: Cli, plugin: Plugin) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:huge"))
    result = run("runners", "exec", str(job_id), env=plugin.env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: runner {fleet.runner_name(job_id)} has no task (status rejected)\n"
    )


def test_an_unknown_runner(fleet: Fleet, run: Cli, plugin: Plugin) -> None:
    result = run("runners", "exec", f"{fleet.prefix}-5", env=plugin.env)
    assert result.exit_code == 1
    assert result.stderr == f"error: no runner {fleet.prefix}-5 in table {fleet.prefix}-state\n"
    assert plugin.calls == []
