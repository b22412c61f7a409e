"""Single-use Docker instances (docs/security.md "Single-use Docker instances").

A Docker class's task is privileged: a hostile job can reach its EC2 instance and leave
something there (a process reading the next task's environment and JIT config).
`distinctInstance` keeps two tasks off one instance at once, not one after the other. So
unless DOCKER_INSTANCE_REUSE is true:

- when a Docker task is PENDING or RUNNING, its container instance is set to DRAINING: ECS
  places no new task on a DRAINING instance, and a task that belongs to no service (ours)
  runs on ("Any PENDING or RUNNING tasks that do not belong to a service are not affected",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateContainerInstancesState.html);
- when it has STOPPED, its instance is terminated through its Auto Scaling group
  (`retire`), decrementing the group's desired capacity; at the group's minimum size AWS
  refuses that, and the group replaces the instance with a fresh one instead. It is
  terminated even when a task has landed on it since (a drain that came late, or a job that
  re-registered its host): that task stops and its job is relaunched, but a used instance
  never serves another job;
- the cleanup retires DRAINING instances that run nothing (cleanup/instances.py): what a
  lost STOPPED event left.

Instances of a capacity provider that a packing class (distinct_instance false) uses are
never drained: packing is reuse (the module refuses packing without DOCKER_INSTANCE_REUSE).
Every step is idempotent: events come twice and out of order, and an instance already
draining, terminated or deregistered counts as done.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from control_plane import launcher, log, retry
from control_plane.classes import FARGATE_PROVIDERS
from control_plane.services import Services

PLACED_STATES = ("PENDING", "RUNNING")  # the task has its instance from PENDING on
# AWS refuses to decrement a group at its minimum size with this message
MIN_SIZE_REFUSAL = "violate group's min size constraint"


def instance_of(detail: dict[str, Any]) -> str | None:
    """The container instance ARN of a task on an EC2 capacity provider, or None (pure)."""
    arn = detail.get("containerInstanceArn")
    if not arn or detail.get("capacityProviderName") in FARGATE_PROVIDERS:
        return None
    return str(arn)


def idle(instance: dict[str, Any]) -> bool:
    """Whether a described container instance runs and starts no task (pure)."""
    return not instance.get("runningTasksCount") and not instance.get("pendingTasksCount")


def ours(instance: dict[str, Any], name_prefix: str) -> bool:
    """Whether a container instance belongs to one of this fleet's Docker capacity providers
    (pure). The fleet's cluster holds only those instances: one that names no capacity
    provider counts as ours (IAM confines termination to the `<prefix>-docker-*` groups)."""
    provider = instance.get("capacityProviderName")
    return not provider or provider.startswith(f"{name_prefix}-docker-")


def _ecs(svc: Services, operation: str, **kwargs: Any) -> dict[str, Any]:
    """One ECS call with the launcher's retries (the ECS client makes a single attempt)."""
    call = getattr(svc.ecs, operation)
    return retry.with_retries(
        lambda: call(cluster=svc.settings.cluster_name, **kwargs),
        launcher.transient_delay,
        svc.deadline,
        max_attempts=4,
        what=f"ecs:{operation}",
    )


def describe(svc: Services, arns: list[str]) -> list[dict[str, Any]]:
    """The container instances ECS still knows (at most 100 ARNs)."""
    if not arns:
        return []
    response = _ecs(svc, "describe_container_instances", containerInstances=arns)
    return response.get("containerInstances") or []


def _packs(svc: Services, provider: str | None) -> bool:
    """Whether a packing class runs on `provider` (its instances serve task after task)."""
    try:
        classes = svc.class_sizes().classes.values()
    except Exception as exc:  # unreadable: the safe side is to drain
        log.warning("class sizes unreadable: instance drained", error=retry.describe(exc))
        return False
    return any(
        c.docker and not c.distinct_instance and c.capacity_provider == provider for c in classes
    )


def drain(svc: Services, instance: dict[str, Any]) -> bool:
    """Sets an ACTIVE container instance to DRAINING; True when it is (or was) draining."""
    status = instance.get("status")
    if status == "ACTIVE":
        arn = instance["containerInstanceArn"]
        _ecs(svc, "update_container_instances_state", containerInstances=[arn], status="DRAINING")
        log.info("container instance drained: single use", container_instance=arn)
        return True
    return status == "DRAINING"


def terminate(svc: Services, ec2_instance_id: str) -> bool:
    """Terminates an instance through its Auto Scaling group, decrementing the group's
    desired capacity, or, at the group's minimum size, letting the group replace it. False
    when there was nothing to terminate (already gone, terminating, or in no group)."""
    for decrement in (True, False):
        try:
            svc.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=ec2_instance_id, ShouldDecrementDesiredCapacity=decrement
            )
            log.warning(
                "Docker instance terminated: single use",
                ec2_instance_id=ec2_instance_id,
                replaced=not decrement,
            )
            return True
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") != "ValidationError":
                raise
            if decrement and MIN_SIZE_REFUSAL in error.get("Message", ""):
                continue  # the group's minimum: a fresh instance replaces this one
            log.info(
                "Docker instance not terminated: gone or in no group",
                ec2_instance_id=ec2_instance_id,
                reason=error.get("Message", "")[:300],
            )
            return False
    raise AssertionError("unreachable: the second attempt does not decrement")


def retire(svc: Services, instance: dict[str, Any], used: bool = False) -> str:
    """Terminates a container instance, draining it first: `terminated`, `busy` (it runs or
    starts a task, and is not `used`: the cleanup retires it once idle) or `gone`. A `used`
    instance (its Docker task has stopped) is terminated whatever it runs now."""
    if not drain(svc, instance):
        return "gone"  # deregistered: its EC2 instance has gone
    if not used and not idle(instance):
        log.info(
            "Docker instance still runs a task: left to the cleanup",
            container_instance=instance.get("containerInstanceArn"),
        )
        return "busy"
    ec2_instance_id = instance.get("ec2InstanceId")
    return "terminated" if ec2_instance_id and terminate(svc, ec2_instance_id) else "gone"


def on_task_state(detail: dict[str, Any], svc: Services) -> str | None:
    """Drains a placed Docker task's instance; retires it when the task has stopped. Returns
    what was done (for the handler's result), None when nothing applies."""
    last_status = detail.get("lastStatus")
    if svc.settings.docker_instance_reuse or last_status not in (*PLACED_STATES, "STOPPED"):
        return None
    arn = instance_of(detail)
    if arn is None or _packs(svc, detail.get("capacityProviderName")):
        return None
    with log.bound(container_instance=arn):
        found = describe(svc, [arn])
        if not found:
            return "gone"
        if last_status == "STOPPED":
            return retire(svc, found[0], used=True)
        return "draining" if drain(svc, found[0]) else "gone"
