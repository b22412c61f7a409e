"""The handler's routing, and the logs: one JSON line per decision, never a secret."""

from __future__ import annotations

import json

import pytest
from control_plane import log
from control_plane.settings import SettingsError

from local_mode import fault_proxy
from tests.control_plane.harness import (
    PAT,
    WEBHOOK_SECRET,
    Fleet,
    job_payload,
    task_state_change,
    webhook,
)


def test_scheduled_cleanup_is_routed_to_its_hook(fleet: Fleet, capsys) -> None:
    event = {
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{fleet.prefix}-cleanup"],
        "detail": {},
    }
    assert fleet.invoke(event)["result"] == "cleaned"  # tests/control_plane/test_cleanup.py
    assert '"msg":"cleanup finished"' in capsys.readouterr().out


def test_codebuild_events_are_routed_to_their_hook(fleet: Fleet) -> None:
    event = {
        "source": "aws.codebuild",
        "detail-type": "CodeBuild Build State Change",
        "detail": {"build-status": "SUCCEEDED", "build-id": "b:1", "project-name": "p"},
    }
    # image builds are off in this fleet: the event is not its own (test_image_builds.py)
    assert fleet.invoke(event) == {
        "result": "ignored",
        "reason": "build of another CodeBuild project",
    }
    assert fleet.records() == []


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"},
        {"source": "aws.ecs", "detail-type": "ECS Container Instance State Change"},
        {},
    ],
)
def test_unknown_events_are_ignored(fleet: Fleet, event: dict) -> None:
    assert fleet.invoke(event) == {"result": "ignored", "reason": "unknown event"}


def test_a_broken_environment_fails_loudly(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPACITY_STRATEGY", "cheapest")
    with pytest.raises(SettingsError, match="CAPACITY_STRATEGY"):
        fleet.invoke(webhook(job_payload()))


def test_redaction_guard_masks_registered_secrets(capsys) -> None:
    log.register_secret("s3cr3t-value-123")
    log.register_secret("short")  # too short to redact safely: ignored
    log.info("oops s3cr3t-value-123", field="x s3cr3t-value-123 y", other="short")
    line = json.loads(capsys.readouterr().out)
    assert line["msg"] == "oops ***"
    assert line["field"] == "x *** y"
    assert line["other"] == "short"


def test_logs_are_json_lines_with_context_and_no_secret(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, app_key, capsys
) -> None:
    delivery = "d0c0ffee-0000-4000-8000-000000000001"
    payload = job_payload(labels=["self-hosted", "class:medium"])
    job_id = payload["workflow_job"]["id"]
    name = fleet.runner_name(job_id)

    fleet.deliver(payload, secret="forged-secret-1234")  # refused
    fleet.github.add_fault("generate-jitconfig", status=502, count=1, after=True)
    fleet.ecs_proxy.add(fault_proxy.server_error("RunTask", count=100))
    with pytest.raises(Exception):  # noqa: B017 - any failure: the event is retried
        fleet.deliver(payload, delivery=delivery, timeout=5)
    fleet.ecs_proxy.reset()
    result = fleet.deliver(payload, delivery=delivery)
    fleet.invoke(task_state_change(fleet, result["task_arn"], "RUNNING"))
    fleet.deliver(job_payload("in_progress", job_id=job_id, runner_name=name))
    fleet.deliver(job_payload("completed", job_id=job_id, runner_name=name, conclusion="success"))
    monkeypatch.setenv("GITHUB_AUTH", "app")  # and a job through the GitHub App
    fleet.deliver(job_payload(labels=["self-hosted"]))

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "msg"} <= set(line) for line in lines)

    secrets = [WEBHOOK_SECRET, PAT, "forged-secret-1234", app_key.private_pem.splitlines()[1]]
    for runner in fleet.github.runners():
        secrets.append(runner["_jit"])  # the JIT configs, whole
    secrets += list(fleet.github.state.tokens)  # installation tokens
    assert len(secrets) >= 7
    for secret in secrets:
        assert secret not in out
    assert payload["workflow_job"]["node_id"] not in out  # never the body

    launched = [line for line in lines if line["msg"] == "runner launched"]
    assert launched[0]["job_id"] == job_id
    assert launched[0]["delivery_id"] == delivery
    assert launched[0]["runner_name"] == name
    decisions = {line["msg"] for line in lines}
    assert {
        "refused: signature does not match",
        "retrying",
        "launch failed: the job stays pending for a retry",
        "resuming an interrupted launch",
        "status moved",
    } <= decisions
