"""ECS tasks as the CLI shows them: one runner's live task, and a cluster's tasks counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from control_plane.launcher import CONTAINER
from control_plane.lifecycle import STARTING_STATES

from ecsrunner.output import jsonable
from ecsrunner.records import cluster_of

DESCRIBE_BATCH = 100  # DescribeTasks takes at most 100 tasks


def describe(ecs: Any, task_arn: str) -> dict[str, Any] | None:
    """The task as ECS describes it now, or None when ECS no longer knows it (ECS forgets a
    stopped task after about an hour)."""
    tasks = ecs.describe_tasks(cluster=cluster_of(task_arn), tasks=[task_arn]).get("tasks") or []
    return tasks[0] if tasks else None


def runner_container(task: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in task.get("containers") or [] if c.get("name") == CONTAINER), {})


def is_live(task: dict[str, Any] | None) -> bool:
    """Whether the task still runs or is about to (not stopped, not being stopped)."""
    return bool(task) and "STOPPED" not in (task.get("lastStatus"), task.get("desiredStatus"))


def container_status(task: dict[str, Any]) -> str | None:
    """The runner container's status, None when ECS reports none or one its task's status
    rules out: an essential container runs once its task does and has stopped once its task
    has (the emulator reports PENDING for every container, whatever its task does)."""
    status = runner_container(task).get("lastStatus")
    task_status = task.get("lastStatus")
    if task_status == "STOPPED" and status != "STOPPED":
        return None
    if task_status not in STARTING_STATES and status == "PENDING":
        return None
    return status


def view(task: dict[str, Any]) -> dict[str, Any]:
    """The task's live state (`runners details`, JSON field `task`): only what ECS reports
    and its task's status allows. A container has an exit code only once it has stopped (the
    emulator reports 0 for every container)."""
    container = runner_container(task)
    status = container_status(task)
    return jsonable(
        {
            "task_arn": task.get("taskArn"),
            "last_status": task.get("lastStatus"),
            "desired_status": task.get("desiredStatus"),
            "stop_code": task.get("stopCode"),
            "stopped_reason": task.get("stoppedReason") or None,
            "container_status": status,
            "exit_code": container.get("exitCode") if status == "STOPPED" else None,
            "capacity_provider": task.get("capacityProviderName") or task.get("launchType"),
            "cpu": task.get("cpu"),
            "memory": task.get("memory"),
            "created_at": task.get("createdAt"),
            "started_at": task.get("startedAt"),
            "stopped_at": task.get("stoppedAt"),
        }
    )


# ---------------------------------------------------------------------- cluster


def running_tasks(ecs: Any, cluster: str) -> Iterator[dict[str, Any]]:
    """Every task of the cluster that is meant to run (desired RUNNING), with its tags."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING"):
        arns.extend(page.get("taskArns", []))
    for start in range(0, len(arns), DESCRIBE_BATCH):
        batch = arns[start : start + DESCRIBE_BATCH]
        yield from ecs.describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"])["tasks"]


def class_of(task: dict[str, Any], name_prefix: str) -> str:
    """The runner class: the task's `class` tag, else its family `<name_prefix>-<class>`."""
    tags = {t.get("key"): t.get("value") for t in task.get("tags") or []}
    if tags.get("class"):
        return tags["class"]
    family = str(task.get("taskDefinitionArn", "")).rsplit("/", 1)[-1].rsplit(":", 1)[0]
    return family.removeprefix(f"{name_prefix}-")


def phase(task: dict[str, Any]) -> str:
    """running, pending (being placed or started) or stopping."""
    status = task.get("lastStatus")
    if status == "RUNNING":
        return "running"
    if status in STARTING_STATES:
        return "pending"
    return "stopping"


def count(tasks: Iterable[dict[str, Any]], name_prefix: str) -> list[dict[str, Any]]:
    """Tasks per (class, capacity provider): running, pending, stopping."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for task in tasks:
        provider = task.get("capacityProviderName") or task.get("launchType") or "-"
        counts[(class_of(task, name_prefix), provider, phase(task))] += 1
    groups = sorted({(cls, provider) for cls, provider, _ in counts})
    return [
        {
            "class": cls,
            "capacity_provider": provider,
            **{p: counts[(cls, provider, p)] for p in ("running", "pending", "stopping")},
        }
        for cls, provider in groups
    ]
