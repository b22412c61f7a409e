"""A queued workflow_job through the real handler: verified, selected, sized, launched once."""

from __future__ import annotations

import json
import re
import threading

import pytest
from control_plane.classes import ClassSizesError

from local_mode.runner_sim import decode_jit_config
from tests.control_plane.harness import (
    REPO,
    WEBHOOK_SECRET,
    Fleet,
    job_payload,
    webhook,
)


def only(items: list) -> object:
    assert len(items) == 1, items
    return items[0]


def test_a_queued_job_gets_one_task_of_its_class(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted", "class:medium"])
    job_id = payload["workflow_job"]["id"]
    name = fleet.runner_name(job_id)

    result = fleet.deliver(payload)

    task_arn = only(fleet.tasks())
    assert result == {"result": "launched", "task_arn": task_arn}
    task = fleet.describe(task_arn)
    assert task["startedBy"] == name
    assert task["taskDefinitionArn"].split("/")[-1].startswith(f"{fleet.prefix}-medium:")
    assert {t["key"]: t["value"] for t in task["tags"]} == {
        "job_id": str(job_id),
        "run_id": str(payload["workflow_job"]["run_id"]),
        "repository": REPO,
        "class": "medium",
        "runner_name": name,
    }

    # what was asked of ECS: the contract's launch parameters, and no secret in the overrides
    request = only(fleet.run_task_calls())["body"]
    assert request["cluster"] == fleet.prefix
    assert request["taskDefinition"] == f"{fleet.prefix}-medium"
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": [fleet.subnet_id],
        "securityGroups": [fleet.security_group_id],
        "assignPublicIp": "DISABLED",
    }
    assert request["enableExecuteCommand"] is True
    key = only(fleet.jit_keys(name))
    assert request["overrides"] == {
        "containerOverrides": [
            {
                "name": "runner",
                "environmentFiles": [
                    {"value": f"arn:aws:s3:::{fleet.jit_bucket}/{key}", "type": "s3"}
                ],
            }
        ]
    }
    assert request["clientToken"] == f"{job_id}-1-ondemand"
    assert len(request["clientToken"]) <= 64

    # GitHub: one JIT runner named after the job, with the job's labels, in the runner group
    jit_call = only(fleet.jit_requests())
    assert jit_call["path"] == f"/repos/{REPO}/actions/runners/generate-jitconfig"
    assert jit_call["headers"]["Authorization"].startswith("Bearer ghp_")
    assert jit_call["body"]["name"] == name
    assert jit_call["body"]["labels"] == ["self-hosted", "class:medium"]
    assert jit_call["body"]["runner_group_id"] == 1

    # the JIT config is in its own S3 object, under a key no one can guess, and nowhere else
    runner = only(fleet.github.runners())
    stored = fleet.jit_value(name)
    assert stored == runner["_jit"]
    assert decode_jit_config(stored)["AgentName"] == name
    assert re.fullmatch(rf"jit/{name}/[0-9a-f]{{40}}\.env", key)
    record = fleet.record(job_id)
    assert stored not in json.dumps(record, default=str)
    assert stored not in json.dumps(task, default=str)

    assert record["status"] == "starting"
    assert record["task_arn"] == task_arn
    assert record["runner_name"] == name
    assert (record["class_name"], record["cpu"], record["memory"]) == ("medium", 1024, 2048)
    assert record["labels"] == ["self-hosted", "class:medium"]
    assert record["repository"] == REPO
    assert record["kind"] == "runner"
    assert record["jit_object"] == key
    assert [h["status"] for h in record["history"]] == ["pending", "starting"]
    assert "lease_owner" not in record and "lease_until" not in record
    assert record["expires_at"] > 0


def test_no_class_label_runs_the_default_class(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted"])
    fleet.deliver(payload)
    record = fleet.record(payload["workflow_job"]["id"])
    assert (record["class_name"], record["cpu"], record["memory"]) == ("small", 512, 1024)
    assert only(fleet.run_task_calls())["body"]["taskDefinition"] == f"{fleet.prefix}-small"


def test_labels_match_case_insensitively(fleet: Fleet) -> None:
    payload = job_payload(labels=["Self-Hosted", "LINUX", "Class:LARGE"])
    assert fleet.deliver(payload)["result"] == "launched"
    record = fleet.record(payload["workflow_job"]["id"])
    assert record["class_name"] == "large"


@pytest.mark.parametrize(
    "labels",
    [
        ["ubuntu-latest"],  # GitHub-hosted
        ["self-hosted", "gpu"],  # a label this fleet does not serve
        ["self-hosted", "class:medium", "windows"],
    ],
)
def test_jobs_with_labels_of_others_are_ignored(fleet: Fleet, labels: list[str], capsys) -> None:
    payload = job_payload(labels=labels)
    assert fleet.deliver(payload)["result"] == "ignored"
    assert fleet.tasks() == []
    assert fleet.records() == []
    assert fleet.github.requests() == []
    assert "ignored: not this fleet's labels" in capsys.readouterr().out


def test_githubs_own_example_payload_is_not_ours(fleet: Fleet, load_payload) -> None:
    payload = load_payload("workflow_job/queued")  # runs-on: ubuntu-latest, unchanged
    assert fleet.deliver(payload)["result"] == "ignored"
    assert fleet.tasks() == [] and fleet.records() == []


def test_extra_labels_of_the_fleet_are_served(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted", "linux", "x64"])
    assert fleet.deliver(payload)["result"] == "launched"


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (["self-hosted", "class:huge"], "unknown class 'huge'"),
        (["self-hosted", "class:small", "class:large"], "more than one class label"),
        (["self-hosted", "image:ubuntu:22.04", "image:debian:12"], "more than one image label"),
        (["self-hosted", "image:ubuntu:22.04"], "image builds are not enabled"),
    ],
)
def test_jobs_no_runner_can_serve_are_rejected_with_a_reason(
    fleet: Fleet, labels: list[str], reason: str
) -> None:
    payload = job_payload(labels=labels)
    result = fleet.deliver(payload)
    assert result["result"] == "rejected"
    assert reason in result["reason"]
    record = fleet.record(payload["workflow_job"]["id"])
    assert record["status"] == "rejected"
    assert reason in record["reason"]
    assert [h["status"] for h in record["history"]] == ["rejected"]
    assert fleet.tasks() == []
    assert fleet.github.requests() == []  # no runner registered
    # a redelivery changes nothing
    assert fleet.deliver(payload)["result"] == "rejected"
    assert len(fleet.records()) == 1 and fleet.tasks() == []


def test_unknown_class_lists_the_fleets_classes(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted", "class:xl"])
    fleet.deliver(payload)
    record = fleet.record(payload["workflow_job"]["id"])
    assert record["reason"] == "unknown class 'xl' (this fleet has: large, medium, small)"
    assert record["class_name"] == "xl"


@pytest.mark.parametrize("repository", ["Codertocat/Other-Repo", "someone-else/Hello-World"])
def test_repositories_outside_the_repo_scope_are_refused(fleet: Fleet, repository: str) -> None:
    payload = job_payload(labels=["self-hosted"], repository=repository)
    result = fleet.deliver(payload)
    assert result == {"result": "refused", "reason": "repository outside the fleet's scope"}
    assert fleet.tasks() == [] and fleet.records() == [] and fleet.github.requests() == []


def test_org_scope_serves_every_repository_of_the_org_and_only_those(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    monkeypatch.setenv("GITHUB_REPO", "")
    other_org = job_payload(labels=["self-hosted"], repository="octo-org/octo-repo")
    assert fleet.deliver(other_org)["result"] == "refused"

    payload = job_payload(labels=["self-hosted"], repository="Codertocat/Any-Repo")
    assert fleet.deliver(payload)["result"] == "launched"
    call = only(fleet.jit_requests())
    assert call["path"] == "/orgs/Codertocat/actions/runners/generate-jitconfig"


@pytest.mark.parametrize(
    ("action", "fixture"), [("waiting", "workflow_job/waiting"), ("in_progress", None)]
)
def test_only_queued_starts_a_runner(fleet: Fleet, action: str, fixture, load_payload) -> None:
    payload = load_payload(fixture) if fixture else job_payload(action, labels=["self-hosted"])
    payload["workflow_job"]["labels"] = ["self-hosted"]
    payload["repository"]["full_name"] = REPO
    assert fleet.deliver(payload)["result"] == "ignored"
    assert fleet.tasks() == [] and fleet.records() == []


def test_redelivery_three_times_launches_one_task(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted", "class:small"])
    event = webhook(payload, delivery="11111111-2222-3333-4444-555555555555")
    first = fleet.invoke(event)
    again = [fleet.invoke(event) for _ in range(3)]  # GitHub's "Redeliver", EventBridge retries

    assert first["result"] == "launched"
    assert again == [{"result": "duplicate", "status": "starting"}] * 3
    assert fleet.tasks() == [first["task_arn"]]
    assert len(fleet.run_task_calls()) == 1
    assert len(fleet.jit_requests()) == 1
    assert len(fleet.records()) == 1


def test_concurrent_deliveries_of_the_same_job_launch_one_task(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted"])
    event = webhook(payload)
    barrier = threading.Barrier(6)
    outcomes: list[object] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        try:
            outcome: object = fleet.invoke(event)["result"]
        except Exception as exc:  # a live attempt elsewhere: the event is retried later
            outcome = type(exc).__name__
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == 6, outcomes  # no delivery hung
    assert outcomes.count("launched") == 1, outcomes
    assert set(outcomes) <= {"launched", "duplicate", "JobBusy"}, outcomes
    assert len(fleet.tasks()) == 1
    assert len(fleet.run_task_calls()) == 1
    assert len(fleet.jit_requests()) == 1
    # the retries of the busy ones find the job handled
    for _ in range(outcomes.count("JobBusy")):
        assert fleet.invoke(event)["result"] == "duplicate"
    assert len(fleet.tasks()) == 1


def test_a_different_job_gets_its_own_task(fleet: Fleet) -> None:
    first, second = job_payload(), job_payload()
    fleet.deliver(first)
    fleet.deliver(second)
    assert len(fleet.tasks()) == 2
    names = {fleet.describe(arn)["startedBy"] for arn in fleet.tasks()}
    assert names == {
        fleet.runner_name(first["workflow_job"]["id"]),
        fleet.runner_name(second["workflow_job"]["id"]),
    }


def test_a_rerun_attempt_gets_a_runner_name_with_the_attempt(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted"], run_attempt=2)
    job_id = payload["workflow_job"]["id"]
    fleet.deliver(payload)
    record = fleet.record(job_id)
    assert record["runner_name"] == f"{fleet.prefix}-{job_id}-2"
    assert only(fleet.run_task_calls())["body"]["clientToken"] == f"{job_id}-2-ondemand"


def test_github_app_auth_launches_with_a_cached_installation_token(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_AUTH", "app")
    for _ in range(3):  # three invocations of a warm Lambda
        assert fleet.deliver(job_payload(labels=["self-hosted"]))["result"] == "launched"
    token_call = only(fleet.github.requests(path="/access_tokens$"))
    assert token_call["path"] == "/app/installations/777/access_tokens"
    assert token_call["status"] == 201
    assert len(fleet.github.state.jwt_ids) == 1  # one JWT, verified RS256 by the stand-in
    headers = {r["headers"]["Authorization"] for r in fleet.jit_requests()}
    assert len(headers) == 1 and headers.pop().startswith("Bearer ghs_")
    assert len(fleet.tasks()) == 3


def test_invalid_class_sizes_fail_the_invocation_and_record_nothing(fleet: Fleet) -> None:
    fleet.client("ssm").put_parameter(
        Name=fleet.env["CLASS_SIZES_PARAM"],
        Value='{"classes": {"tiny": {"cpu": 128, "memory": 256}}}',
        Type="String",
        Overwrite=True,
    )
    with pytest.raises(ClassSizesError, match="cpu 128"):
        fleet.deliver(job_payload(labels=["self-hosted"]))
    assert fleet.records() == [] and fleet.tasks() == []


def test_webhook_secret_comes_from_ssm(fleet: Fleet) -> None:
    # signed with the right secret → launched; the same body signed otherwise → refused
    payload = job_payload()
    refused = fleet.deliver(payload, secret=WEBHOOK_SECRET + "x")
    assert refused == {"result": "refused", "reason": "signature does not match"}
    assert fleet.deliver(payload)["result"] == "launched"
