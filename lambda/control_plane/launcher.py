"""ECS RunTask for one runner (docs/CONTRACTS.md "ECS task launch").

- the class's task definition family, awsvpc with the module's subnets and security groups,
  `enableExecuteCommand` (ENABLE_EXECUTE_COMMAND), tags, `startedBy = <runner name>`, and one
  container override: the S3 object of the JIT config as an `environmentFiles` entry, which
  ECS's agent reads with the execution role (never the config itself: overrides are visible
  to whoever may describe the task);
- `clientToken` derived from the job id, run attempt and capacity provider: ECS answers a
  repeated call with the task of the first one (a second guard behind the state table);
- where (`placement`, from the class): a Fargate class runs on its own capacity_strategy or
  the module-wide one: FARGATE, FARGATE_SPOT, or spotPreferred = FARGATE_SPOT first and, when
  Spot has no capacity (RunTask reports that in `failures`, not as an error), FARGATE. A
  capacity provider strategy never falls back by itself. A Docker class runs on its EC2
  capacity provider, without a public IP (awsvpc tasks on EC2 get none), and with the
  `distinctInstance` constraint unless the class packs tasks: a privileged container can
  reach its host, so by default no two jobs share an instance. When the provider has no room
  ECS starts the task in PROVISIONING and managed scaling adds an instance.
- throttling and transient errors are retried with jittered backoff within the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from control_plane import log, retry
from control_plane.classes import ClassSize
from control_plane.settings import Settings

CONTAINER = "runner"
MAX_ATTEMPTS = 6
PROVIDERS = {
    "FARGATE": ("FARGATE",),
    "FARGATE_SPOT": ("FARGATE_SPOT",),
    "spotPreferred": ("FARGATE_SPOT", "FARGATE"),
}
RETRYABLE_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServerException",
    "ServiceUnavailable",
    "InternalFailure",
}
TRANSPORT_ERRORS = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


class LaunchError(Exception):
    """RunTask did not start the task (the reason is ECS's)."""


class CapacityUnavailable(LaunchError):
    """No Fargate (Spot) capacity right now."""


@dataclass(frozen=True)
class Placement:
    """Where a class's tasks run: the capacity providers in the order tried, and whether they
    are a Docker class's EC2 ones (one task per instance when `distinct_instance`)."""

    providers: tuple[str, ...]
    docker: bool = False
    distinct_instance: bool = False


def placement(size: ClassSize, settings: Settings) -> Placement:
    """The one place that says where a class runs."""
    if size.docker:  # parse_class_sizes makes sure it names its capacity provider
        return Placement((size.capacity_provider or "",), True, size.distinct_instance)
    return Placement(PROVIDERS[size.capacity_strategy or settings.capacity_strategy])


@dataclass(frozen=True)
class RunnerTask:
    """What to launch for one runner."""

    runner_name: str
    family: str
    jit_config_arn: str
    job_id: int
    run_id: int
    run_attempt: int
    repository: str
    class_name: str
    placement: Placement


@dataclass(frozen=True)
class Launched:
    task_arn: str
    capacity_provider: str


def client_token(task: RunnerTask, provider: str) -> str:
    """ECS idempotency token (≤ 64 characters): one per job, attempt and capacity provider."""
    if task.placement.docker:
        short = "docker"
    else:
        short = "spot" if provider == "FARGATE_SPOT" else "ondemand"
    return f"{task.job_id}-{task.run_attempt}-{short}"[:64]


def run_task_request(settings: Settings, task: RunnerTask, provider: str) -> dict[str, Any]:
    """The RunTask parameters for `task` on `provider` (pure: what is sent is tested)."""
    tags = {
        "job_id": str(task.job_id),
        "run_id": str(task.run_id),
        "repository": task.repository,
        "class": task.class_name,
        "runner_name": task.runner_name,
    }
    public_ip = settings.assign_public_ip and not task.placement.docker
    request: dict[str, Any] = {
        "cluster": settings.cluster_name,
        "taskDefinition": task.family,
        "count": 1,
        "capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1}],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(settings.subnet_ids),
                "securityGroups": list(settings.security_group_ids),
                "assignPublicIp": "ENABLED" if public_ip else "DISABLED",
            }
        },
        "enableExecuteCommand": settings.enable_execute_command,
        "startedBy": task.runner_name,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "overrides": {
            "containerOverrides": [
                {
                    "name": CONTAINER,
                    "environmentFiles": [{"value": task.jit_config_arn, "type": "s3"}],
                }
            ]
        },
        "clientToken": client_token(task, provider),
    }
    if task.placement.distinct_instance:
        request["placementConstraints"] = [{"type": "distinctInstance"}]
        # distinctInstance separates the tasks of one task group (by default the family's):
        # one group for every Docker class keeps any two Docker jobs off a shared instance.
        request["group"] = docker_group(settings)
    return request


def docker_group(settings: Settings) -> str:
    return f"{settings.name_prefix}-docker"


def is_capacity_shortage(reason: str) -> bool:
    return "capacity" in reason.lower()


def transient_delay(error: Exception, attempt: int) -> float | None:
    """Backoff for ECS throttling, 5xx and connection errors (the ECS client makes a single
    attempt); None for anything else."""
    if isinstance(error, TRANSPORT_ERRORS):
        return retry.backoff(attempt)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in RETRYABLE_CODES or status >= 500:
            return retry.backoff(attempt)
    return None


def launch(ecs: Any, settings: Settings, task: RunnerTask, deadline: retry.Deadline) -> Launched:
    """Starts the runner's task; raises LaunchError (or the AWS error) when it cannot."""
    providers = task.placement.providers
    for index, provider in enumerate(providers):
        fallback = index + 1 < len(providers)
        request = run_task_request(settings, task, provider)

        def call(request: dict[str, Any] = request, provider: str = provider) -> Launched:
            response = ecs.run_task(**request)
            tasks = response.get("tasks") or []
            if tasks:
                return Launched(task_arn=tasks[0]["taskArn"], capacity_provider=provider)
            reasons = "; ".join(
                f"{f.get('reason', '')} {f.get('detail', '') or ''}".strip()
                for f in response.get("failures") or []
            )
            if is_capacity_shortage(reasons):
                raise CapacityUnavailable(f"{provider}: {reasons}")
            raise LaunchError(f"RunTask started no task on {provider}: {reasons or 'no reason'}")

        def delay_for(error: Exception, attempt: int, fallback: bool = fallback) -> float | None:
            if isinstance(error, CapacityUnavailable):
                # Spot with an on-demand fallback: fall back now; otherwise try again later
                return None if fallback else retry.backoff(attempt, base=1.0)
            return transient_delay(error, attempt)

        try:
            return retry.with_retries(
                call, delay_for, deadline, max_attempts=MAX_ATTEMPTS, what=f"ecs:RunTask {provider}"
            )
        except CapacityUnavailable as exc:
            if not fallback:
                raise
            log.warning("no Spot capacity: launching on FARGATE", error=str(exc)[:300])
    raise AssertionError("unreachable: the last provider has no fallback")


def launched_task(ecs: Any, cluster: str, runner_name: str) -> str | None:
    """A task an earlier attempt already started for this runner (running or stopped)."""
    for desired in ("RUNNING", "STOPPED"):
        arns = ecs.list_tasks(cluster=cluster, startedBy=runner_name, desiredStatus=desired).get(
            "taskArns", []
        )
        if arns:
            return arns[0]
    return None
