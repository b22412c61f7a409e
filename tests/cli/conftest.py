"""Fixtures of the CLI tests: the control-plane tests' fleet (its own name prefix in the
session's moto server, the GitHub stand-in, a fault proxy in front of ECS), records written
by the real control plane, and the CLI run in process with click's CliRunner."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
from boto3.dynamodb.types import TypeSerializer
from click.testing import CliRunner, Result

from ecsrunner.cli import cli
from ecsrunner.config import LOCAL_MODE_VAR
from local_mode.fault_proxy import FaultProxy
from local_mode.moto_server import MotoServer, hold_ecs_tasks

# The control-plane tests' fixtures, unchanged (pytest finds fixtures imported into a conftest).
from tests.control_plane.conftest import app_key, ecs_proxy, fleet, github
from tests.control_plane.harness import Fleet, job_payload, task_state_change

__all__ = ["app_key", "ecs_proxy", "fleet", "github"]

# The members of a run in `runs list --output json`, in order (docs/cli.md).
RUN_FIELDS = [
    "job_id",
    "runner_name",
    "repository",
    "workflow_name",
    "job_name",
    "run_id",
    "run_attempt",
    "status",
    "conclusion",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "job_seconds",
    "queue_wait_seconds",
    "start_seconds",
    "billed_seconds",
    "cost_usd",
]


@dataclass
class Cli:
    """Runs `ecsrunner ...` in process against the fleet (RUNNER_TABLE, CLASS_SIZES_PARAM)."""

    fleet: Fleet

    @property
    def env(self) -> dict[str, str | None]:
        return {
            "RUNNER_TABLE": f"{self.fleet.prefix}-state",
            "CLASS_SIZES_PARAM": f"/{self.fleet.prefix}/config/class-sizes",
            "CLUSTER_NAME": self.fleet.prefix,
            LOCAL_MODE_VAR: None,  # the fleet of a test, not local mode's (even if sourced)
        }

    def __call__(
        self, *args: str, env: dict[str, str | None] | None = None, input: str | None = None
    ) -> Result:
        result = CliRunner().invoke(cli, list(args), env={**self.env, **(env or {})}, input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback is a defect: show it
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        result = self(*args, "--output", "json", **kwargs)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def run(fleet: Fleet) -> Cli:
    return Cli(fleet)


@pytest.fixture
def held_tasks(aws_env: MotoServer) -> Iterator[None]:
    """ECS tasks stay where RunTask and StopTask leave them (moto otherwise moves a task one
    step towards STOPPED on every DescribeTasks); moto's setting is restored afterwards."""
    url = f"{aws_env.url}/moto-api/state-manager"
    before = requests.get(f"{url}/get-transition", params={"model_name": "ecs::task"}, timeout=10)
    hold_ecs_tasks(aws_env.url)
    try:
        yield
    finally:
        requests.post(
            f"{url}/set-transition",
            json={"model_name": "ecs::task", "transition": before.json()},
            timeout=10,
        ).raise_for_status()


@pytest.fixture
def control_plane_function(fleet: Fleet) -> str:
    """The control-plane Lambda as the module deploys it: the fleet's settings in its
    environment (names only, no secret). The CLI reads GitHub settings from here."""
    role = fleet.service_role(f"{fleet.prefix}-control-plane", "lambda.amazonaws.com")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("control_plane/handler.py", "def lambda_handler(event, context): ...\n")
    name = f"{fleet.prefix}-control-plane"
    fleet.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="control_plane.handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {k: v for k, v in fleet.env.items() if not k.startswith("AWS_")}},
    )
    return name


@pytest.fixture
def aws_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy for the CLI's calls of one AWS service: point the CLI at it with
    `AWS_ENDPOINT_URL_<SERVICE>` (the control plane's calls still go straight to moto)."""
    proxy = FaultProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


# ---------------------------------------------------------------------- runners


def queue(fleet: Fleet, labels: tuple[str, ...] = ("self-hosted",), **fields: Any) -> int:
    """A queued job delivered to the real control plane; returns its job id."""
    payload = job_payload(labels=labels, **fields)
    result = fleet.deliver(payload)
    assert result["result"] in ("launched", "rejected"), result
    return payload["workflow_job"]["id"]


def job_event(fleet: Fleet, action: str, job_id: int, **fields: Any) -> None:
    payload = job_payload(
        action,
        labels=["self-hosted"],
        job_id=job_id,
        runner_name=fleet.runner_name(job_id),
        **fields,
    )
    fleet.deliver(payload)


def advance(fleet: Fleet, job_id: int, to: str, conclusion: str = "success") -> None:
    """Drives a launched runner forwards (running, busy, completed) with the events the
    control plane receives: ECS Task State Change and workflow_job webhooks."""
    task_arn = fleet.record(job_id)["task_arn"]
    steps: dict[str, Callable[[], Any]] = {
        "running": lambda: fleet.invoke(task_state_change(fleet, task_arn, "RUNNING")),
        "busy": lambda: job_event(fleet, "in_progress", job_id),
        "completed": lambda: job_event(fleet, "completed", job_id, conclusion=conclusion),
    }
    for step, event in steps.items():
        event()
        if step == to:
            return
    raise ValueError(f"cannot advance to {to}")


def task_exits(fleet: Fleet, job_id: int, exit_code: int = 0, **detail: Any) -> None:
    """The STOPPED Task State Change of the runner's task."""
    task_arn = fleet.record(job_id)["task_arn"]
    detail.setdefault("stopCode", "EssentialContainerExited")
    detail.setdefault("stoppedReason", "Essential container in task exited")
    fleet.invoke(task_state_change(fleet, task_arn, "STOPPED", exit_code=exit_code, **detail))


def measure(fleet: Fleet, job_id: int, **fields: float | str) -> None:
    """Sets fields of a job's record as the control plane stores them (docs/CONTRACTS.md):
    its measures (`queue_wait_seconds`, `cost_usd`..., numbers), or `created_at` (ISO 8601)."""
    serialize = TypeSerializer().serialize
    fleet.client("dynamodb").update_item(
        TableName=f"{fleet.prefix}-state",
        Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
        ExpressionAttributeNames={f"#{name}": name for name in fields},
        ExpressionAttributeValues={
            f":{name}": serialize(value if isinstance(value, str) else Decimal(str(value)))
            for name, value in fields.items()
        },
    )
