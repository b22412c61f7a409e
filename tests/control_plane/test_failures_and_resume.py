"""Faults at the edges (GitHub over HTTP, ECS through the fault proxy) and what a retry finds.

Every failure after the job is recorded leaves it `pending` with the reason, releases the
attempt's lease and raises (the event is delivered again); the next delivery resumes from
what the failed attempt left, and the job still gets exactly one task.
"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from control_plane.github import GitHubError
from control_plane.jobs import JobBusy
from control_plane.launcher import CapacityUnavailable, LaunchError
from control_plane.pacing import NoSlotInTime

from local_mode import fault_proxy
from tests.control_plane.harness import REPO, Fleet, job_payload, webhook

JIT_PATH = r"/generate-jitconfig$"


def test_github_5xx_then_success(fleet: Fleet, capsys) -> None:
    fleet.github.add_fault(JIT_PATH, status=502, count=2)
    payload = job_payload()
    assert fleet.deliver(payload)["result"] == "launched"

    assert [r["status"] for r in fleet.jit_requests()] == [502, 502, 201]
    assert len(fleet.github.runners()) == 1
    assert len(fleet.tasks()) == 1
    assert capsys.readouterr().out.count('"msg":"retrying"') == 2


def test_a_lost_github_response_is_answered_by_409_and_handled(fleet: Fleet) -> None:
    # GitHub registered the runner but the answer was lost: the retry gets 409 (name taken)
    fleet.github.add_fault(JIT_PATH, status=502, count=1, after=True)
    payload = job_payload()
    assert fleet.deliver(payload)["result"] == "launched"

    assert [r["status"] for r in fleet.jit_requests()] == [502, 409, 201]
    (runner,) = fleet.github.runners()
    assert runner["id"] == 2  # the leftover registration (id 1) was deleted and replaced
    assert fleet.github.requests(path=r"/actions/runners/1$", method="DELETE")[0]["status"] == 204
    name = fleet.runner_name(payload["workflow_job"]["id"])
    assert fleet.jit_value(name) == runner["_jit"]
    assert len(fleet.tasks()) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1},
        {"status": 403, "rate_limit_reset_in": 0},
        {"status": 403, "retry_after": 1},
    ],
)
def test_rate_limits_are_waited_out(fleet: Fleet, fault: dict) -> None:
    fleet.github.add_fault(JIT_PATH, count=1, **fault)
    started = time.monotonic()
    assert fleet.deliver(job_payload())["result"] == "launched"
    assert time.monotonic() - started >= 0.9  # honoured Retry-After / x-ratelimit-reset
    assert [r["status"] for r in fleet.jit_requests()] == [fault["status"], 201]


def test_a_rate_limit_longer_than_the_budget_fails_fast_and_resumes(fleet: Fleet) -> None:
    fleet.github.add_fault(JIT_PATH, status=429, count=1, retry_after=4)
    payload = job_payload()
    started = time.monotonic()
    with pytest.raises(GitHubError):
        fleet.deliver(payload, timeout=5)  # 4 s of wait would not leave the 3 s reserve
    assert time.monotonic() - started < 2
    record = fleet.record(payload["workflow_job"]["id"])
    assert record["status"] == "pending"
    assert "429" in record["reason"]
    # the wait holds for every invocation (pacing.py): a redelivery too short for it gives up
    # without calling GitHub; one with the time waits it out and launches
    with pytest.raises(NoSlotInTime):
        fleet.deliver(payload, timeout=5)
    assert len(fleet.jit_requests()) == 1
    assert fleet.deliver(payload)["result"] == "launched"
    assert time.monotonic() - started >= 3.9
    assert [r["status"] for r in fleet.jit_requests()] == [429, 201]


def test_a_permission_error_is_not_retried_and_the_job_stays_resumable(fleet: Fleet) -> None:
    fleet.github.add_fault(
        JIT_PATH, status=403, count=1, body={"message": "Resource not accessible by integration"}
    )
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    with pytest.raises(GitHubError, match="403"):
        fleet.deliver(payload)
    assert len(fleet.jit_requests()) == 1  # no retry for a real 403
    record = fleet.record(job_id)
    assert record["status"] == "pending"
    assert "Resource not accessible by integration" in record["reason"]
    assert "lease_owner" not in record  # released: the next delivery may resume at once
    assert fleet.tasks() == []

    assert fleet.deliver(payload)["result"] == "launched"
    assert len(fleet.tasks()) == 1


def test_github_down_for_the_whole_invocation(fleet: Fleet) -> None:
    fleet.github.add_fault(JIT_PATH, status=503, count=100)
    payload = job_payload()
    with pytest.raises(GitHubError, match="503"):
        fleet.deliver(payload, timeout=6)
    assert fleet.tasks() == []
    assert fleet.record(payload["workflow_job"]["id"])["status"] == "pending"


def test_ecs_throttling_then_success(fleet: Fleet, capsys) -> None:
    fleet.ecs_proxy.add(fault_proxy.throttling("RunTask", count=2))
    payload = job_payload()
    result = fleet.deliver(payload)

    assert result["result"] == "launched"
    calls = fleet.run_task_calls()
    assert [(c["status"], c["injected"]) for c in calls] == [(400, True), (400, True), (200, False)]
    assert len({c["body"]["clientToken"] for c in calls}) == 1  # the same idempotency token
    assert fleet.tasks() == [result["task_arn"]]
    assert capsys.readouterr().out.count('"msg":"retrying"') == 2


def test_a_lost_run_task_response_is_retried_with_the_same_client_token(fleet: Fleet) -> None:
    fleet.ecs_proxy.add(fault_proxy.lost_response("RunTask", count=1))
    result = fleet.deliver(job_payload())

    assert result["result"] == "launched"
    assert len(fleet.run_task_calls()) == 2
    assert fleet.tasks() == [result["task_arn"]]  # ECS answered the retry with the first task


def test_ecs_failure_keeps_the_jit_config_and_the_retry_reuses_it(fleet: Fleet) -> None:
    fleet.ecs_proxy.add(fault_proxy.server_error("RunTask", count=100))
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    name = fleet.runner_name(job_id)
    with pytest.raises(ClientError, match="ServerException"):
        fleet.deliver(payload, timeout=6)
    record = fleet.record(job_id)
    assert record["status"] == "pending" and "ServerException" in record["reason"]
    stored = fleet.jit_value(name)
    assert stored is not None
    assert fleet.tasks() == []

    fleet.ecs_proxy.reset()
    assert fleet.deliver(payload)["result"] == "launched"
    assert len(fleet.jit_requests()) == 1  # the stored config was reused, no new registration
    assert fleet.jit_value(name) == stored
    assert len(fleet.tasks()) == 1
    assert fleet.record(job_id)["status"] == "starting"


def test_a_task_started_by_a_failed_attempt_is_adopted_not_doubled(fleet: Fleet) -> None:
    # RunTask went through every time but no answer came back: the attempt failed
    fleet.ecs_proxy.add(fault_proxy.lost_response("RunTask", count=100))
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    with pytest.raises(ClientError):
        fleet.deliver(payload, timeout=6)
    (started,) = fleet.tasks()
    assert fleet.record(job_id)["status"] == "pending"

    fleet.ecs_proxy.reset()
    result = fleet.deliver(payload)
    assert result == {"result": "launched", "task_arn": started}
    assert fleet.tasks() == [started]
    assert fleet.run_task_calls() == []  # found with ListTasks(startedBy), not launched again
    record = fleet.record(job_id)
    assert (record["status"], record["task_arn"]) == ("starting", started)


def test_a_registration_left_by_a_failed_attempt_is_replaced(fleet: Fleet) -> None:
    # every answer of GitHub lost: the runner got registered, the attempt failed
    fleet.github.add_fault(JIT_PATH, status=502, count=100, after=True)
    payload = job_payload()
    with pytest.raises(GitHubError):
        fleet.deliver(payload, timeout=6)
    (leftover,) = fleet.github.runners()
    assert fleet.jit_value(fleet.runner_name(payload["workflow_job"]["id"])) is None

    fleet.github.state.faults.clear()
    assert fleet.deliver(payload)["result"] == "launched"
    (runner,) = fleet.github.runners()
    assert runner["id"] != leftover["id"]
    assert len(fleet.tasks()) == 1


def test_a_connected_runner_with_the_name_is_never_deleted(fleet: Fleet) -> None:
    payload = job_payload()
    name = fleet.runner_name(payload["workflow_job"]["id"])
    scope = f"repos/{REPO.lower()}"
    made = fleet.github.call(
        fleet.github.state.generate_jit,
        scope,
        {"name": name, "runner_group_id": 1, "labels": ["self-hosted"]},
    )
    fleet.github.call(
        fleet.github.state.connect,
        {"runner_name": name, "encoded_jit_config": made["encoded_jit_config"]},
    )
    with pytest.raises(LaunchError, match="connected already"):
        fleet.deliver(payload)
    assert fleet.github.requests(method="DELETE") == []
    assert fleet.tasks() == []
    assert fleet.record(payload["workflow_job"]["id"])["status"] == "pending"


def test_spot_preferred_falls_back_to_fargate_when_spot_has_no_capacity(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("CAPACITY_STRATEGY", "spotPreferred")
    fleet.ecs_proxy.add(fault_proxy.spot_capacity_shortage(count=1))
    payload = job_payload()
    result = fleet.deliver(payload)

    assert result["result"] == "launched"
    first, second = fleet.run_task_calls()
    assert first["body"]["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1}
    ]
    assert first["injected"] and first["status"] == 200  # a failure inside a 200 answer
    assert second["body"]["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "weight": 1}
    ]
    assert first["body"]["clientToken"] != second["body"]["clientToken"]
    assert fleet.tasks() == [result["task_arn"]]
    record = fleet.record(payload["workflow_job"]["id"])
    assert record["capacity_provider"] == "FARGATE"
    assert "no Spot capacity: launching on FARGATE" in capsys.readouterr().out


def test_spot_preferred_uses_spot_when_there_is_capacity(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPACITY_STRATEGY", "spotPreferred")
    payload = job_payload()
    fleet.deliver(payload)
    (call,) = fleet.run_task_calls()
    assert call["body"]["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    assert fleet.record(payload["workflow_job"]["id"])["capacity_provider"] == "FARGATE_SPOT"


def test_spot_only_without_capacity_retries_then_fails_resumably(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPACITY_STRATEGY", "FARGATE_SPOT")
    fleet.ecs_proxy.add(fault_proxy.spot_capacity_shortage(count=100))
    payload = job_payload()
    with pytest.raises(CapacityUnavailable):
        fleet.deliver(payload, timeout=6)
    calls = fleet.run_task_calls()
    assert len(calls) >= 1
    assert all(
        c["body"]["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
        for c in calls
    )  # never on-demand: the user chose Spot only
    assert fleet.tasks() == []
    assert "Capacity is unavailable" in fleet.record(payload["workflow_job"]["id"])["reason"]


def test_a_live_attempt_elsewhere_makes_the_event_retry_later(fleet: Fleet) -> None:
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    table = fleet.client("dynamodb")
    # what an attempt in flight (or one that crashed a moment ago) leaves: pending, leased
    table.put_item(
        TableName=f"{fleet.prefix}-state",
        Item={
            "pk": {"S": f"job#{job_id}"},
            "kind": {"S": "runner"},
            "status": {"S": "pending"},
            "job_id": {"N": str(job_id)},
            "runner_name": {"S": fleet.runner_name(job_id)},
            "run_id": {"N": "1"},
            "run_attempt": {"N": "1"},
            "repository": {"S": REPO},
            "labels": {"L": [{"S": "self-hosted"}]},
            "class_name": {"S": "small"},
            "cpu": {"N": "512"},
            "memory": {"N": "1024"},
            "jit_object": {"S": f"jit/{fleet.runner_name(job_id)}/{'0' * 40}.env"},
            "lease_owner": {"S": "someone-else"},
            "lease_until": {"N": str(int(time.time()) + 600)},
        },
    )
    with pytest.raises(JobBusy):
        fleet.deliver(payload)
    assert fleet.tasks() == [] and fleet.github.requests() == []

    # the lease expires (the attempt crashed): the next delivery takes over and launches
    table.update_item(
        TableName=f"{fleet.prefix}-state",
        Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert fleet.deliver(payload)["result"] == "launched"
    assert len(fleet.tasks()) == 1
    assert "lease_owner" not in fleet.record(job_id)


def test_a_recorded_task_whose_status_was_not_moved_is_finished(fleet: Fleet) -> None:
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    fleet.deliver(payload)
    (task_arn,) = fleet.tasks()
    # a crash between recording the task and moving the status leaves this
    fleet.client("dynamodb").update_item(
        TableName=f"{fleet.prefix}-state",
        Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression="SET #s = :pending",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":pending": {"S": "pending"}},
    )
    assert fleet.invoke(webhook(payload))["result"] == "duplicate"
    record = fleet.record(job_id)
    assert (record["status"], record["task_arn"]) == ("starting", task_arn)
    assert fleet.tasks() == [task_arn]
