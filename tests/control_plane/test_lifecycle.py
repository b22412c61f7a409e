"""Status transitions after launch, from workflow_job webhooks and ECS Task State Change events,
in order, out of order and repeated: the status never moves backwards."""

from __future__ import annotations

import pytest

from tests.control_plane.harness import Fleet, job_payload, task_state_change


def launch(fleet: Fleet, **kwargs) -> tuple[int, str, str]:
    payload = job_payload(labels=["self-hosted"], **kwargs)
    job_id = payload["workflow_job"]["id"]
    task_arn = fleet.deliver(payload)["task_arn"]
    return job_id, fleet.runner_name(job_id), task_arn


def job_event(fleet: Fleet, action: str, job_id: int, runner: str | None, **fields) -> dict:
    payload = job_payload(
        action, labels=["self-hosted"], job_id=job_id, runner_name=runner, **fields
    )
    return fleet.deliver(payload)


def statuses(fleet: Fleet, job_id: int) -> list[str]:
    return [entry["status"] for entry in fleet.record(job_id)["history"]]


def test_in_order(fleet: Fleet) -> None:
    job_id, name, task_arn = launch(fleet)
    fleet.invoke(task_state_change(fleet, task_arn, "PROVISIONING"))
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    job_event(fleet, "in_progress", job_id, name, runner_id=1)
    job_event(fleet, "completed", job_id, name, conclusion="success")
    result = fleet.invoke(
        task_state_change(
            fleet,
            task_arn,
            "STOPPED",
            exit_code=0,
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
        )
    )
    assert result == {"result": "unchanged", "status": "completed"}

    record = fleet.record(job_id)
    assert statuses(fleet, job_id) == ["pending", "starting", "running", "busy", "completed"]
    assert record["status"] == "completed"
    assert record["conclusion"] == "success"
    assert record["exit_code"] == 0  # the late STOPPED event still left its facts
    assert record["stop_reason"] == "EssentialContainerExited: Essential container in task exited"
    assert all(entry["at"] for entry in record["history"])


def test_out_of_order_and_repeated_events_never_move_backwards(fleet: Fleet) -> None:
    job_id, name, task_arn = launch(fleet)
    assert job_event(fleet, "completed", job_id, name, conclusion="failure")["result"] == "moved"
    assert job_event(fleet, "in_progress", job_id, name)["result"] == "unchanged"
    assert fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))["result"] == "unchanged"
    assert job_event(fleet, "completed", job_id, name, conclusion="failure")["result"] == (
        "unchanged"
    )

    record = fleet.record(job_id)
    assert record["status"] == "completed"
    assert record["conclusion"] == "failure"  # the runner finished; the job failed
    assert statuses(fleet, job_id) == ["pending", "starting", "completed"]


def test_duplicate_events_add_no_history(fleet: Fleet) -> None:
    job_id, _, task_arn = launch(fleet)
    running = task_state_change(fleet, task_arn, "RUNNING")
    assert fleet.invoke(running)["result"] == "moved"
    assert fleet.invoke(running)["result"] == "unchanged"
    assert fleet.invoke(task_state_change(fleet, task_arn, "PENDING"))["result"] == "unchanged"
    assert statuses(fleet, job_id) == ["pending", "starting", "running"]


def test_busy_before_running(fleet: Fleet) -> None:
    job_id, name, task_arn = launch(fleet)
    job_event(fleet, "in_progress", job_id, name)
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    assert fleet.record(job_id)["status"] == "busy"


@pytest.mark.parametrize(
    ("exit_code", "stop_code", "status"),
    [
        (0, "EssentialContainerExited", "completed"),
        (1, "EssentialContainerExited", "failed"),
        (3, "EssentialContainerExited", "failed"),  # entrypoint: JIT parameter missing
        (None, "TaskFailedToStart", "failed"),
        (143, "UserInitiated", "stopped"),
        (143, "SpotInterruption", "stopped"),
    ],
)
def test_a_stopped_task_ends_the_runner(
    fleet: Fleet, exit_code: int | None, stop_code: str, status: str
) -> None:
    job_id, _, task_arn = launch(fleet)
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    fleet.invoke(
        task_state_change(
            fleet, task_arn, "STOPPED", exit_code=exit_code, stopCode=stop_code, stoppedReason="x"
        )
    )
    record = fleet.record(job_id)
    assert record["history"][3]["status"] == status  # then failed: GitHub does not know the job
    assert record.get("exit_code") == exit_code
    assert record["stop_reason"] == f"{stop_code}: x"


def test_the_completed_webhook_after_a_failed_task_keeps_failed(fleet: Fleet) -> None:
    job_id, name, task_arn = launch(fleet)
    fleet.invoke(task_state_change(fleet, task_arn, "STOPPED", exit_code=1))
    job_event(fleet, "completed", job_id, name, conclusion="cancelled")
    record = fleet.record(job_id)
    assert (record["status"], record["conclusion"]) == ("failed", "cancelled")


@pytest.mark.parametrize("runner", [None, "GitHub Actions 5", "other-fleet-123"])
def test_events_of_runners_that_are_not_ours_change_nothing(
    fleet: Fleet, runner: str | None
) -> None:
    job_id, _, _ = launch(fleet)
    before = fleet.record(job_id)
    other_job = job_id + 1  # not this fleet's job
    assert job_event(fleet, "completed", other_job, runner, conclusion="success")["result"] == (
        "ignored"
    )
    assert fleet.record(job_id) == before
    assert fleet.record(other_job) is None


@pytest.mark.parametrize("runner", [None, "other-fleet-123"])
def test_our_job_run_or_ended_without_our_runner_leaves_its_runner_spare(
    fleet: Fleet, runner: str | None
) -> None:
    job_id, _, _ = launch(fleet)
    job_event(fleet, "completed", job_id, runner, conclusion="cancelled")
    record = fleet.record(job_id)
    assert (record["status"], record["stopped_by"]) == ("stopped", "spare")
    assert record["served_by"] == (runner or "")
    assert record["conclusion"] == "cancelled"


def test_an_ecs_event_of_another_cluster_or_task_changes_nothing(fleet: Fleet) -> None:
    job_id, _, task_arn = launch(fleet)
    before = fleet.record(job_id)
    other_cluster = task_state_change(
        fleet, task_arn, "STOPPED", exit_code=1, clusterArn="arn:aws:ecs:us-east-1:1:cluster/x"
    )
    assert fleet.invoke(other_cluster)["result"] == "ignored"
    other_task = task_state_change(
        fleet,
        task_arn,
        "STOPPED",
        exit_code=1,
        taskArn=task_arn.rsplit("/", 1)[0] + "/0000000000000000",
    )
    assert fleet.invoke(other_task)["result"] == "unchanged"
    not_ours = task_state_change(fleet, task_arn, "STOPPED", exit_code=1, startedBy="someone")
    assert fleet.invoke(not_ours)["result"] == "ignored"
    assert fleet.record(job_id) == before


def test_an_event_for_a_job_without_record_is_ignored(fleet: Fleet) -> None:
    ghost = 987654321
    result = job_event(fleet, "in_progress", ghost, fleet.runner_name(ghost))
    assert result == {"result": "ignored", "reason": "no record"}
    assert fleet.records() == []


def test_rejected_jobs_stay_rejected(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted", "class:nope"])
    job_id = payload["workflow_job"]["id"]
    fleet.deliver(payload)
    job_event(fleet, "completed", job_id, fleet.runner_name(job_id), conclusion="cancelled")
    assert fleet.record(job_id)["status"] == "rejected"


def test_the_jit_config_goes_once_ecs_has_read_it_or_never_will(fleet: Fleet) -> None:
    ran_id, ran, ran_task = launch(fleet)
    never_id, never, never_task = launch(fleet)
    assert fleet.jit_keys(ran) and fleet.jit_keys(never)
    fleet.invoke(task_state_change(fleet, ran_task, "PROVISIONING"))
    assert fleet.jit_keys(ran)  # ECS reads it while the task starts: not yet
    fleet.invoke(task_state_change(fleet, ran_task, "RUNNING"))
    assert fleet.jit_keys(ran) == []
    # a task that never started (image pull failed): its config will never be read
    stopped = task_state_change(fleet, never_task, "STOPPED", stopCode="TaskFailedToStart")
    fleet.invoke(stopped)
    assert fleet.jit_keys(never) == []
    assert ran_id != never_id


def test_only_a_task_that_never_started_deletes_its_config_when_it_stops() -> None:
    from control_plane.lifecycle import config_read_or_moot

    assert config_read_or_moot({"lastStatus": "RUNNING"})
    assert config_read_or_moot({"lastStatus": "STOPPED"})
    ran = {"lastStatus": "STOPPED", "startedAt": "2026-11-27T18:00:00Z"}
    assert not config_read_or_moot(ran)  # deleted on RUNNING: no second S3 call
    for status in ("PROVISIONING", "PENDING", "ACTIVATING", "DEPROVISIONING"):
        assert not config_read_or_moot({"lastStatus": status})


def test_events_of_jobs_with_labels_not_ours_are_ignored_before_any_state_call(
    fleet: Fleet,
) -> None:
    """Another fleet's jobs (its labels) come to the same webhook: they cannot be this
    fleet's, so no record is looked for (no DynamoDB write per foreign event)."""
    payload = job_payload(
        "completed", labels=["windows", "gpu"], runner_name="other-fleet-1", conclusion="success"
    )
    assert fleet.deliver(payload) == {
        "result": "ignored",
        "reason": "labels not served by this fleet",
    }
