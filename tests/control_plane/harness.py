"""Test harness of the control plane: a fleet in the emulator, the GitHub stand-in, events.

Events are built exactly as the module builds them: the webhook's raw bytes and headers go
through the module's own API Gateway mapping template (rendered by local_mode/vtl.py)
and are wrapped in the EventBridge envelope a Lambda target receives (as local mode's
webhook endpoint wraps them: `webhook_server.eventbridge_envelope`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from control_plane import signature
from control_plane.handler import lambda_handler

from local_mode import send_job, vtl
from local_mode.fault_proxy import FaultProxy
from local_mode.github_api import GitHubAPI
from local_mode.webhook_server import FakeLambdaContext, eventbridge_envelope

REGION = "us-east-1"
ACCOUNT = "123456789012"
OWNER = "Codertocat"
REPO = f"{OWNER}/Hello-World"  # the repository of GitHub's example payloads
PAT = "ghp_controlplanetesttoken0000000000000000"
WEBHOOK_SECRET = "whsec-control-plane-test-5b1d0c7e"
APP_ID = "424242"
INSTALLATION_ID = "777"
EXTRA_LABELS = ("linux", "x64")


@dataclass(frozen=True)
class AppKey:
    """A GitHub App's RSA key pair (PEM)."""

    private_pem: str
    public_pem: str


def webhook(
    payload: dict[str, Any] | bytes,
    *,
    event: str = "workflow_job",
    secret: str | None = WEBHOOK_SECRET,
    signature_header: str | None = None,
    delivery: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event for one GitHub webhook request."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }
    if signature_header is not None:
        headers["X-Hub-Signature-256"] = signature_header
    elif secret is not None:
        headers["X-Hub-Signature-256"] = signature.sign(secret, body)
    return eventbridge_envelope(vtl.put_events_entry(body, headers))


def job_payload(
    action: str = "queued",
    *,
    labels: tuple[str, ...] | list[str] = ("self-hosted",),
    job_id: int | None = None,
    repository: str = REPO,
    **fields: Any,
) -> dict[str, Any]:
    """A workflow_job payload from GitHub's example payloads (tests/fixtures/github)."""
    return send_job.workflow_job_payload(
        action,
        labels=list(labels),
        job_id=job_id or send_job.new_job_id(),
        repository=repository,
        **fields,
    )


def task_state_change(
    fleet: Fleet, task_arn: str, last_status: str, *, exit_code: int | None = None, **detail: Any
) -> dict[str, Any]:
    """An "ECS Task State Change" event as ECS emits it for a task of the fleet."""
    task = fleet.describe(task_arn)
    body: dict[str, Any] = {
        "clusterArn": task["clusterArn"],
        "taskArn": task_arn,
        "taskDefinitionArn": task["taskDefinitionArn"],
        "startedBy": task.get("startedBy", ""),
        "group": task.get("group", ""),
        "lastStatus": last_status,
        "desiredStatus": "STOPPED" if last_status == "STOPPED" else "RUNNING",
        "launchType": "FARGATE",
        "overrides": task.get("overrides", {}),  # ECS's events carry the RunTask overrides
        "containers": [{"name": "runner", "lastStatus": last_status, "taskArn": task_arn}],
        "version": 2,
    }
    if exit_code is not None:
        body["containers"][0]["exitCode"] = exit_code
    body.update(detail)
    return eventbridge_envelope(
        {
            "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "resources": [task_arn],
            "detail": body,
        }
    )


@dataclass
class Fleet:
    """One fleet (its own name prefix) in the emulator, configured like the module does."""

    prefix: str
    moto_url: str
    github: GitHubAPI
    ecs_proxy: FaultProxy
    subnet_id: str
    security_group_id: str
    env: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.moto_url, region_name=REGION)

    # ---------------------------------------------------------------- invoking

    def invoke(self, event: dict[str, Any], timeout: int = 30) -> dict[str, Any]:
        context = FakeLambdaContext(
            function_name=f"{self.prefix}-control-plane",
            function_version="$LATEST",
            invoked_function_arn=(
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.prefix}-control-plane"
            ),
            memory_limit_in_mb=256,
            timeout_seconds=timeout,
        )
        return lambda_handler(event, context)

    def deliver(self, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        timeout = kwargs.pop("timeout", 30)
        return self.invoke(webhook(payload, **kwargs), timeout=timeout)

    # ---------------------------------------------------------------- arranging

    def service_role(self, name: str, service: str) -> str:
        """An IAM role `service` (e.g. lambda.amazonaws.com) may assume; returns its ARN."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
        return self.client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]

    def ecs_describes(self, *tasks: dict[str, Any]) -> None:
        """ECS answers the next DescribeTasks that names the first task with `tasks` (through
        the fault proxy): what moto cannot show, such as exit codes or placement states."""
        self.ecs_proxy.add(
            {
                "operation": "DescribeTasks",
                "status": 200,
                "body_contains": tasks[0]["taskArn"],
                "body": {"tasks": list(tasks), "failures": []},
            }
        )

    # ---------------------------------------------------------------- looking

    def runner_name(self, job_id: int) -> str:
        return f"{self.prefix}-{job_id}"

    def item(self, pk: str) -> dict[str, Any] | None:
        """The state table's item `pk` (`job#<id>`, `build#<tag>`), read consistently."""
        item = (
            self.client("dynamodb")
            .get_item(TableName=f"{self.prefix}-state", Key={"pk": {"S": pk}}, ConsistentRead=True)
            .get("Item")
        )
        if not item:
            return None
        deserializer = TypeDeserializer()
        return {k: deserializer.deserialize(v) for k, v in item.items()}

    def record(self, job_id: int) -> dict[str, Any] | None:
        return self.item(f"job#{job_id}")

    def records(self) -> list[dict[str, Any]]:
        """Job and build records (every item with a `kind`: not the JIT pacer's schedule)."""
        items = self.client("dynamodb").scan(TableName=f"{self.prefix}-state").get("Items", [])
        deserializer = TypeDeserializer()
        return [
            {k: deserializer.deserialize(v) for k, v in item.items()}
            for item in items
            if "kind" in item
        ]

    def tasks(self, started_by: str | None = None) -> list[str]:
        ecs = self.client("ecs")
        arns: set[str] = set()
        for desired in ("RUNNING", "STOPPED"):
            kwargs: dict[str, Any] = {"cluster": self.prefix, "desiredStatus": desired}
            if started_by:
                kwargs["startedBy"] = started_by
            arns.update(ecs.list_tasks(**kwargs)["taskArns"])
        return sorted(arns)

    def describe(self, task_arn: str) -> dict[str, Any]:
        return self.client("ecs").describe_tasks(
            cluster=self.prefix, tasks=[task_arn], include=["TAGS"]
        )["tasks"][0]

    @property
    def jit_bucket(self) -> str:
        return f"{self.prefix}-jit"

    def jit_keys(self, runner_name: str | None = None) -> list[str]:
        """Keys of the stored JIT config objects (of one runner)."""
        prefix = f"jit/{runner_name}/" if runner_name else "jit/"
        listed = self.client("s3").list_objects_v2(Bucket=self.jit_bucket, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]

    def put_jit(self, runner_name: str, value: str) -> str:
        """Leaves a JIT config object for `runner_name`, as a launch would; returns its key."""
        key = f"jit/{runner_name}/{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}.env"
        body = f"ACTIONS_RUNNER_INPUT_JITCONFIG={value}\n".encode()
        self.client("s3").put_object(Bucket=self.jit_bucket, Key=key, Body=body)
        return key

    def jit_value(self, runner_name: str) -> str | None:
        """The config stored for `runner_name`, read from its `.env` object as ECS would."""
        keys = self.jit_keys(runner_name)
        if not keys:
            return None
        assert len(keys) == 1, keys
        body = self.client("s3").get_object(Bucket=self.jit_bucket, Key=keys[0])["Body"].read()
        name, _, value = body.decode().rstrip("\n").partition("=")
        assert name == "ACTIONS_RUNNER_INPUT_JITCONFIG"
        return value

    def run_task_calls(self) -> list[dict[str, Any]]:
        return self.ecs_proxy.requests("RunTask")

    def jit_requests(self) -> list[dict[str, Any]]:
        return self.github.requests(path=r"/generate-jitconfig$", method="POST")
