"""Helpers of the cleanup tests: run the cleanup, age records, make orphans and dead letters."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from control_plane import handler, lifecycle
from control_plane.cleanup.context import Limits
from control_plane.cleanup.run import run_cleanup
from control_plane.retry import Deadline
from control_plane.services import Services
from control_plane.settings import Settings
from control_plane.state import iso

from tests.control_plane.harness import REPO, Fleet, job_payload, task_state_change

_serializer = TypeSerializer()


def services(budget: float = 60.0) -> Services:
    return Services(Settings.from_env(), Deadline(budget))


def clean(budget: float = 60.0, **limits: int) -> dict[str, Any]:
    """One cleanup run, as the scheduled event runs it (with the handler's routing)."""
    return run_cleanup(services(budget), replay=handler.route, limits=Limits(**limits))


def acted(summary: dict[str, Any]) -> dict[str, int]:
    """The non-zero counts of a run."""
    return {name: n for name, n in summary["counts"].items() if n}


def launch(fleet: Fleet, labels: tuple[str, ...] = ("self-hosted",), **fields: Any) -> int:
    """A queued job delivered through the webhook path; returns its job id."""
    payload = job_payload(labels=labels, **fields)
    assert fleet.deliver(payload)["result"] == "launched"
    return payload["workflow_job"]["id"]


def age(fleet: Fleet, job_id: int, seconds: float) -> None:
    """Moves every time of a record `seconds` into the past (as if it were that old)."""
    record = fleet.record(job_id)
    assert record is not None

    def earlier(value: str) -> str:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return iso(moment - seconds)

    values = {
        ":created": earlier(record["created_at"]),
        ":updated": earlier(record["updated_at"]),
        ":history": [{**e, "at": earlier(e["at"])} for e in record.get("history", [])],
    }
    update = "SET created_at = :created, updated_at = :updated, history = :history"
    if "lease_until" in record:
        values[":lease"] = int(record["lease_until"] - seconds)
        update += ", lease_until = :lease"
    fleet.client("dynamodb").update_item(
        TableName=f"{fleet.prefix}-state",
        Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression=update,
        ExpressionAttributeValues={k: _serializer.serialize(v) for k, v in values.items()},
    )


def run_task(
    fleet: Fleet, started_by: str, family: str = "small", provider: str = "FARGATE"
) -> str:
    """A task in the fleet's cluster started by someone else than the control plane."""
    response = fleet.client("ecs").run_task(
        cluster=fleet.prefix,
        taskDefinition=f"{fleet.prefix}-{family}",
        startedBy=started_by,
        capacityProviderStrategy=[{"capacityProvider": provider, "weight": 1}],
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [fleet.subnet_id],
                "securityGroups": [fleet.security_group_id],
            }
        },
    )
    return response["tasks"][0]["taskArn"]


def task_status(fleet: Fleet, task_arn: str) -> tuple[str, str]:
    task = fleet.describe(task_arn)
    return task["desiredStatus"], task.get("stoppedReason", "")


def interrupt(
    fleet: Fleet, job_id: int, stop_code: str = "SpotInterruption", *, seen: bool = True
) -> str:
    """The record's task is stopped by ECS before the runner took its job (the emulator's
    task is stopped too). `seen`: the ECS event reaches the handler (which relaunches at
    once); otherwise only its status write happened (the invocation died after it), which
    leaves the relaunch to the cleanup."""
    record = fleet.record(job_id)
    task_arn = record["task_arn"]
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    reason = {
        "SpotInterruption": "Your Spot Task was interrupted.",
        "TaskFailedToStart": "CannotPullContainerError: pull access denied",
    }[stop_code]
    event = task_state_change(
        fleet, task_arn, "STOPPED", stopCode=stop_code, stoppedReason=reason, exit_code=None
    )
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason=reason)
    if seen:
        fleet.invoke(event)
    else:
        status, facts = lifecycle.stopped_outcome(event["detail"])
        services().store.transition(job_id, status, task_arn=task_arn, fields=facts)
    return task_arn


def seed_job(
    fleet: Fleet, job_id: int, *, status: str = "queued", repository: str = REPO, **fields: Any
) -> None:
    """A job GitHub shows (the stand-in's /_local/jobs; its repository exists from then on)."""
    fields.setdefault("created_at", iso(time.time() - 600))
    fleet.github.call(
        fleet.github.state.seed_jobs,
        {"repository": repository, "id": job_id, "status": status, **fields},
    )


def register(fleet: Fleet, name: str, labels: tuple[str, ...] = ("self-hosted",)) -> dict:
    """A runner registration at GitHub (as a JIT config request leaves it)."""
    body = {"name": name, "runner_group_id": 1, "labels": list(labels)}
    return fleet.github.call(fleet.github.state.generate_jit, f"repos/{REPO.lower()}", body)


def connect(fleet: Fleet, name: str) -> None:
    """The runner connects with the JIT config ECS handed it (the control plane deleted the
    object when the task was RUNNING) and takes the job GitHub shows queued for it: GitHub
    then shows it busy."""
    (runner,) = [r for r in fleet.github.state.runners.values() if r["name"] == name]
    job_id = int(name.removeprefix(f"{fleet.prefix}-").split("-")[0])
    labels = [label["name"] for label in runner["labels"]]
    if job_id not in fleet.github.state.jobs:
        seed_job(fleet, job_id, labels=labels)
    fleet.github.call(
        fleet.github.state.connect, {"runner_name": name, "encoded_jit_config": runner["_jit"]}
    )
    assert fleet.github.state.runners[runner["id"]]["busy"]


def set_online(fleet: Fleet, name: str) -> None:
    with fleet.github.state.lock:
        for runner in fleet.github.state.runners.values():
            if runner["name"] == name:
                runner["status"] = "online"


def registrations(fleet: Fleet) -> set[str]:
    return {runner["name"] for runner in fleet.github.runners()}


def queue_messages(fleet: Fleet, url: str) -> int:
    attributes = fleet.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def dead_letter(fleet: Fleet, url: str, event: dict[str, Any] | str) -> None:
    """A message as EventBridge's dead-letter queue holds it: the event as the body."""
    body = event if isinstance(event, str) else json.dumps(event)
    fleet.client("sqs").send_message(QueueUrl=url, MessageBody=body)
