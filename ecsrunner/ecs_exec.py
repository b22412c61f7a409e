"""`runners exec`: ECS Exec into a runner's container, handed to session-manager-plugin exactly
as the AWS CLI's `aws ecs execute-command` does (awscli/customizations/ecs/executecommand.py):

    session-manager-plugin <session JSON> <region> StartSession <profile or ""> \\
        '{"Target": "ecs:<cluster>_<task id>_<container runtime id>"}' <ECS endpoint URL>

The session JSON carries a short-lived token: it goes to the plugin only, never to output.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

from control_plane.launcher import CONTAINER
from control_plane.state import TERMINAL

from ecsrunner import tasks
from ecsrunner.config import CliError, Config, ConfigError
from ecsrunner.records import cluster_of

PLUGIN = "session-manager-plugin"
INSTALL_URL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)
DEFAULT_COMMAND = "/bin/bash"


def plugin_argv(
    plugin: str, response: dict[str, Any], runtime_id: str, region: str, profile: str, endpoint: str
) -> list[str]:
    """The plugin's command line for an ExecuteCommand response (pure)."""
    cluster = response["clusterArn"].split("/")[-1]
    task_id = response["taskArn"].split("/")[-1]
    target = {"Target": f"ecs:{cluster}_{task_id}_{runtime_id}"}
    return [
        plugin,
        json.dumps(response["session"]),
        region,
        "StartSession",
        profile,
        json.dumps(target),
        endpoint,
    ]


@contextlib.contextmanager
def plugin_owns_signals() -> Iterator[None]:
    """Ctrl-C, Ctrl-\\ and Ctrl-Z belong to the remote shell while the plugin runs (the
    plugin forwards them); the CLI must not die of them and leave the plugin behind."""
    names = ("SIGINT", "SIGQUIT", "SIGTSTP")
    signals = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = [signal.signal(sig, signal.SIG_IGN) for sig in signals]
    try:
        yield
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def require_ecs_exec(reference: str) -> None:
    """Local mode has no ECS Exec: the emulator implements no ExecuteCommand and runs no
    containers. Said before anything else, so no one is sent to install the plugin."""
    if Config.current().local_mode:
        raise CliError(
            "local mode has no ECS Exec: the emulator runs no containers to enter "
            f"(`ecsrunner runners details {reference}` shows the runner and its task)"
        )


def execute(record: dict[str, Any], command: str) -> None:
    name = record.get("runner_name")
    task_arn = record.get("task_arn")
    if not task_arn:
        raise CliError(f"runner {name} has no task (status {record.get('status')})")
    if record.get("status") in TERMINAL:
        raise CliError(f"runner {name} has finished ({record.get('status')}): no task to enter")
    plugin = shutil.which(PLUGIN)
    if plugin is None:  # checked before ExecuteCommand, as the AWS CLI does: no session in vain
        raise ConfigError(f"{PLUGIN} is not installed; ECS Exec needs it: {INSTALL_URL}")

    cfg = Config.current()
    ecs = cfg.client("ecs")
    response = ecs.execute_command(
        cluster=cluster_of(task_arn),
        task=task_arn,
        container=CONTAINER,
        command=command,
        interactive=True,
    )
    task = tasks.describe(ecs, task_arn)
    container_name = response.get("containerName") or CONTAINER
    container = next(
        (c for c in (task or {}).get("containers") or [] if c.get("name") == container_name), {}
    )
    runtime_id = container.get("runtimeId")
    if not runtime_id:
        raise CliError(f"the runner container of {name} has no runtime id yet: is it running?")
    argv = plugin_argv(
        plugin, response, runtime_id, ecs.meta.region_name, cfg.profile_name, ecs.meta.endpoint_url
    )
    with plugin_owns_signals():
        code = subprocess.call(argv)  # noqa: S603 - the plugin found on PATH, our arguments
    if code != 0:
        raise CliError(f"{PLUGIN} exited with {code}")
