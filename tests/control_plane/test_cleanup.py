"""The scheduled cleanup against the emulator and the GitHub stand-in, with real records made
by the webhook path: what it stops, reconciles, relaunches, replays, launches and deletes,
that a second run does nothing more, and that every run stays within its bounds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from control_plane import cleanup_github, cleanup_jit, cleanup_tasks
from control_plane.cleanup_context import TIME_RESERVE_SECONDS, CleanupRun, Limits

from tests.control_plane.cleanup_helpers import (
    acted,
    age,
    clean,
    connect,
    dead_letter,
    interrupt,
    launch,
    queue_messages,
    register,
    registrations,
    run_task,
    seed_job,
    services,
    set_online,
    task_status,
)
from tests.control_plane.harness import (
    PAT,
    WEBHOOK_SECRET,
    Fleet,
    job_payload,
    task_state_change,
    webhook,
)

HOUR = 3600.0
# GitHub refusing a JIT config: a failure, not a rate limit (which holds every launch: pacing.py)
REFUSED = {"message": "Resource not accessible by integration"}


@pytest.fixture(autouse=True)
def held_tasks(moto_server) -> Iterator[None]:
    """ECS tasks stay where RunTask and StopTask leave them (moto would otherwise move a task
    towards STOPPED on every DescribeTasks, and the cleanup describes tasks)."""
    moto_server.hold_ecs_tasks()
    yield
    requests.post(
        f"{moto_server.url}/moto-api/state-manager/unset-transition",
        json={"model_name": "ecs::task"},
        timeout=10,
    ).raise_for_status()


@pytest.fixture
def dlq(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fleet.client("sqs").create_queue(QueueName=f"{fleet.prefix}-events-dlq")["QueueUrl"]
    monkeypatch.setenv("DLQ_URL", url)
    return url


def scheduled_event(fleet: Fleet) -> dict:
    return {
        "version": "0",
        "id": "5d2f0c57-cleanup",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{fleet.prefix}-cleanup"],
        "detail": {},
    }


# --------------------------------------------------------------------------- routing


def test_the_scheduled_event_runs_the_cleanup_and_logs_one_summary(
    fleet: Fleet, dlq: str, capsys
) -> None:
    orphan = run_task(fleet, f"{fleet.prefix}-990001")
    summary = fleet.invoke(scheduled_event(fleet))
    assert summary["result"] == "cleaned"
    assert summary["complete"] is True
    assert acted(summary) == {"tasks_stopped_orphan": 1}
    assert task_status(fleet, orphan)[0] == "STOPPED"

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [entry for entry in lines if entry["msg"] == "cleanup finished"]
    assert line["tasks_stopped_orphan"] == 1
    assert line["rule"].endswith(f"rule/{fleet.prefix}-cleanup")
    assert line["detail_type"] == "Scheduled Event"


# --------------------------------------------------------------------------- tasks


def test_a_task_past_the_runner_timeout_is_stopped_and_its_record_says_why(fleet: Fleet) -> None:
    job_id = launch(fleet)
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    name = fleet.runner_name(job_id)
    connect(fleet, name)  # the runner took its job (GitHub shows it busy)...
    fleet.deliver(job_payload("in_progress", job_id=job_id, runner_name=name))
    age(fleet, job_id, 7 * HOUR)  # ...seven hours ago (timeout: 360 min)

    summary = clean()
    assert acted(summary) == {"tasks_stopped_timeout": 1}
    desired, reason = task_status(fleet, task_arn)
    assert desired == "STOPPED"
    assert reason.startswith("aws-runner-fleet cleanup: runner timeout: running for 4")
    record = fleet.record(job_id)
    assert record["status"] == "stopped"
    assert record["reason"] == "runner timeout: running for 420 min (limit 360 min)"
    assert acted(clean()) == {}  # a second run does nothing more


def test_an_idle_runner_is_stopped_but_not_a_busy_or_a_young_one(fleet: Fleet) -> None:
    idle, busy, young = launch(fleet), launch(fleet), launch(fleet)
    for job_id in (idle, busy, young):
        fleet.invoke(task_state_change(fleet, fleet.record(job_id)["task_arn"], "RUNNING"))
    connect(fleet, fleet.runner_name(busy))  # took a job; its in_progress event is late
    age(fleet, idle, 20 * 60)
    age(fleet, busy, 20 * 60)
    age(fleet, young, 5 * 60)

    assert acted(clean()) == {
        "tasks_stopped_idle": 1,
        "registrations_deleted": 1,  # the idle runner's, which never connected
    }  # its config was deleted when its task ran: ECS had read it
    assert not fleet.jit_keys()
    assert fleet.record(idle)["status"] == "stopped"
    assert fleet.record(idle)["reason"] == "idle runner: no job after 20 min (limit 15 min)"
    assert task_status(fleet, fleet.record(idle)["task_arn"])[0] == "STOPPED"
    for job_id in (busy, young):
        assert fleet.record(job_id)["status"] == "running"
        assert task_status(fleet, fleet.record(job_id)["task_arn"])[0] == "RUNNING"
    assert acted(clean()) == {}


def test_orphaned_tasks_are_stopped_and_others_tasks_left_alone(fleet: Fleet, capsys) -> None:
    job_id = launch(fleet)
    ours = fleet.record(job_id)["task_arn"]
    orphan = run_task(fleet, f"{fleet.prefix}-990002")  # no record
    stray = run_task(fleet, f"{fleet.prefix}-{job_id}-7")  # not the record's task
    foreign = run_task(fleet, "ecs-svc/123")  # not started by this fleet

    assert acted(clean()) == {"tasks_stopped_orphan": 2}
    assert task_status(fleet, orphan)[0] == task_status(fleet, stray)[0] == "STOPPED"
    assert task_status(fleet, ours)[0] == task_status(fleet, foreign)[0] == "RUNNING"
    assert fleet.record(job_id)["status"] == "starting"  # the record is not the stray's
    stops = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if "cleanup: task stopped" in line
    ]
    assert {s["task_arn"]: s["reason"] for s in stops} == {
        orphan: "orphaned task: no state record for its runner",
        stray: f"orphaned task: its job's record belongs to another attempt "
        f"({fleet.runner_name(job_id)})",
    }
    assert acted(clean()) == {}


# --------------------------------------------------------------------------- records


def test_a_record_whose_task_stopped_unseen_is_reconciled(fleet: Fleet) -> None:
    job_id = launch(fleet)
    task_arn = fleet.record(job_id)["task_arn"]
    # the task dies and its ECS event is lost; ECS describes it as it would (moto reports
    # exit code 0 and no stopCode for every stopped task, so the proxy gives ECS's answer)
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason="OOM")
    stopped = {
        "taskArn": task_arn,
        "clusterArn": fleet.describe(task_arn)["clusterArn"],
        "startedBy": fleet.runner_name(job_id),
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "runner", "exitCode": 137, "reason": "OutOfMemoryError"}],
    }
    fleet.ecs_describes(stopped)

    assert acted(clean()) == {
        "records_reconciled": 1,
        "registrations_deleted": 1,  # the runner that never connected
        "jit_configs_deleted": 1,
    }
    record = fleet.record(job_id)
    assert record["status"] == "failed"  # as lifecycle.stopped_outcome decides for the event
    assert record["exit_code"] == 137
    assert record["stop_reason"] == "EssentialContainerExited: Essential container in task exited"
    assert record["reason"] == (
        "reconciled by the cleanup: EssentialContainerExited: Essential container in task exited"
    )
    assert acted(clean()) == {}


def test_a_record_whose_task_ecs_forgot_is_failed_and_not_relaunched_if_not_queued(
    fleet: Fleet,
) -> None:
    job_id = launch(fleet)
    arn = fleet.record(job_id)["task_arn"]
    forgotten = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    fleet.client("dynamodb").update_item(
        TableName=f"{fleet.prefix}-state",
        Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression="SET task_arn = :t",
        ExpressionAttributeValues={":t": {"S": forgotten}},
    )
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=arn, reason="gone")
    age(fleet, job_id, 10 * 60)
    # GitHub no longer knows the job either

    assert acted(clean()) == {
        "records_reconciled": 1,
        "records_failed": 1,
        "registrations_deleted": 1,
        "jit_configs_deleted": 1,
    }
    record = fleet.record(job_id)
    assert record["status"] == "failed"
    assert record["stop_reason"] == "TaskGone: ECS no longer knows the task"
    assert record["reason"] == (
        "stopped before it ran the job (TaskGone: ECS no longer knows the task); "
        "not relaunched: GitHub no longer knows the job"
    )
    assert record["recovery_checked"]
    assert acted(clean()) == {}


# --------------------------------------------------------------------------- relaunch


def test_a_spot_interrupted_job_still_queued_is_relaunched_once(fleet: Fleet) -> None:
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    old_name = fleet.runner_name(job_id)
    old_task = interrupt(fleet, job_id, "SpotInterruption")
    assert fleet.record(job_id)["status"] == "stopped"

    assert acted(clean()) == {
        "jobs_relaunched": 1,
        "registrations_deleted": 1,  # the interrupted runner's registration
    }  # its config went with its task's STOPPED event
    assert not fleet.jit_keys(old_name)
    record = fleet.record(job_id)
    new_name = f"{old_name}-2"
    assert record["status"] == "starting"
    assert record["relaunches"] == 1
    assert record["runner_name"] == new_name
    assert [record["jit_object"]] == fleet.jit_keys(new_name)
    assert record["retired_tasks"] == [old_task]
    assert record["task_arn"] != old_task
    assert [e["status"] for e in record["history"]] == [
        "pending",
        "starting",
        "running",
        "stopped",
        "pending",
        "starting",
    ]
    assert record["history"][4]["reason"].startswith("relaunch 1 of 2: stopped before it ran")
    (relaunch,) = fleet.run_task_calls()[1:]
    assert relaunch["body"]["startedBy"] == new_name
    assert relaunch["body"]["clientToken"] == f"{job_id}-2-ondemand"
    assert registrations(fleet) == {new_name}
    assert fleet.jit_value(old_name) is None and fleet.jit_value(new_name) is not None

    # the old task's late events change nothing
    late = task_state_change(fleet, old_task, "STOPPED", stopCode="SpotInterruption")
    assert fleet.invoke(late)["result"] == "unchanged"
    assert fleet.record(job_id)["task_arn"] == record["task_arn"]
    assert acted(clean()) == {}
    assert len(fleet.run_task_calls()) == 2


def test_a_relaunch_that_fails_is_resumed_later_and_old_events_stay_out(fleet: Fleet) -> None:
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    old_task = interrupt(fleet, job_id)
    fleet.github.add_fault(r"generate-jitconfig$", status=403, count=1, method="POST", body=REFUSED)

    summary = acted(clean())
    assert summary["errors"] == 1 and "jobs_relaunched" not in summary
    record = fleet.record(job_id)
    assert (record["status"], record["relaunches"]) == ("pending", 1)
    assert "task_arn" not in record and "lease_owner" not in record
    assert record["reason"].startswith("launch attempt failed: GitHubError: POST")
    # a late event of the interrupted task cannot claim the reopened record
    late = task_state_change(fleet, old_task, "STOPPED", stopCode="SpotInterruption")
    assert fleet.invoke(late)["result"] == "unchanged"
    assert "task_arn" not in fleet.record(job_id)

    age(fleet, job_id, 10 * 60)
    assert acted(clean()) == {"launches_resumed": 1}
    record = fleet.record(job_id)
    assert (record["status"], record["runner_name"]) == ("starting", f"{fleet.prefix}-{job_id}-2")
    assert fleet.run_task_calls()[-1]["body"]["clientToken"] == f"{job_id}-2-ondemand"
    assert acted(clean()) == {}


def test_relaunches_stop_at_the_limit_and_the_job_fails_with_the_reason(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_RELAUNCHES", "1")
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    interrupt(fleet, job_id, "TaskFailedToStart")
    assert acted(clean())["jobs_relaunched"] == 1
    interrupt(fleet, job_id, "SpotInterruption")

    assert acted(clean()) == {
        "records_failed": 1,
        "registrations_deleted": 1,
    }
    assert not fleet.jit_keys()
    record = fleet.record(job_id)
    assert record["status"] == "failed"
    assert record["reason"] == (
        "stopped before it ran the job (SpotInterruption: Your Spot Task was interrupted.); "
        "relaunch limit reached (1 of 1)"
    )
    assert len(fleet.run_task_calls()) == 2
    assert acted(clean()) == {}


def test_an_interrupted_job_no_longer_queued_is_not_relaunched(fleet: Fleet) -> None:
    job_id = launch(fleet)
    seed_job(fleet, job_id, status="completed", conclusion="cancelled")
    interrupt(fleet, job_id)

    summary = acted(clean())
    assert summary.pop("records_failed") == 1
    record = fleet.record(job_id)
    assert record["status"] == "failed"
    assert record["reason"].endswith("not relaunched: GitHub shows the job completed")
    assert len(fleet.run_task_calls()) == 1


def test_a_job_that_took_its_job_is_never_relaunched(fleet: Fleet) -> None:
    job_id = launch(fleet)
    seed_job(fleet, job_id)  # even if GitHub (wrongly) still showed it queued
    name = fleet.runner_name(job_id)
    fleet.deliver(job_payload("in_progress", job_id=job_id, runner_name=name))
    interrupt(fleet, job_id)

    clean()
    assert fleet.record(job_id)["status"] == "stopped"
    assert len(fleet.run_task_calls()) == 1
    assert not fleet.github.requests(path=rf"/actions/jobs/{job_id}$")


def test_a_stalled_launch_is_resumed_while_queued_else_failed(fleet: Fleet) -> None:
    fleet.github.add_fault(r"generate-jitconfig$", status=403, count=2, method="POST", body=REFUSED)
    queued = job_payload(labels=["self-hosted"])
    gone = job_payload(labels=["self-hosted"])
    for payload in (queued, gone):
        with pytest.raises(Exception, match="403"):
            fleet.deliver(payload)  # every delivery of these events failed
    queued_id, gone_id = queued["workflow_job"]["id"], gone["workflow_job"]["id"]
    seed_job(fleet, queued_id)
    seed_job(fleet, gone_id, status="completed", conclusion="cancelled")
    age(fleet, queued_id, 10 * 60)
    age(fleet, gone_id, 10 * 60)

    assert acted(clean()) == {"launches_resumed": 1, "records_failed": 1}
    assert fleet.record(queued_id)["status"] == "starting"
    assert fleet.tasks(started_by=fleet.runner_name(queued_id))
    record = fleet.record(gone_id)
    assert record["status"] == "failed"
    assert record["reason"].startswith("launch never finished (launch attempt failed: ")
    assert record["reason"].endswith("not resumed: GitHub shows the job completed")
    assert "lease_owner" not in record
    assert acted(clean()) == {}


def test_two_overlapping_runs_never_undo_each_others_relaunch(fleet: Fleet) -> None:
    """The schedule's event can arrive twice: run A reads the records, run B relaunches a job
    meanwhile; A must not take B's new task, registration and config for leftovers."""
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    interrupt(fleet, job_id)
    run_a = CleanupRun(services(), Limits(), time.time())
    assert fleet.record(job_id)["status"] == run_a.record(job_id)["status"] == "stopped"

    assert acted(clean())["jobs_relaunched"] == 1  # run B
    new_name = f"{fleet.runner_name(job_id)}-2"
    new_task = fleet.record(job_id)["task_arn"]

    cleanup_tasks.stop_tasks(run_a)
    cleanup_github.delete_stale_registrations(run_a)
    cleanup_jit.delete_leftover_configs(run_a)
    assert acted({"counts": run_a.counts}) == {}
    assert task_status(fleet, new_task)[0] == "RUNNING"
    assert registrations(fleet) == {new_name}
    assert fleet.jit_value(new_name) is not None


# --------------------------------------------------------------------------- lost jobs


def test_dead_letters_are_replayed_and_poison_stays(fleet: Fleet, dlq: str) -> None:
    payload = job_payload(labels=["self-hosted", "class:medium"])
    job_id = payload["workflow_job"]["id"]
    dead_letter(fleet, dlq, webhook(payload))
    dead_letter(fleet, dlq, "{not an event")
    dead_letter(fleet, dlq, {"source": "aws.events", "detail-type": "Scheduled Event"})

    summary = clean()
    assert acted(summary) == {"dlq_replayed": 1, "dlq_dropped": 1, "dlq_left": 1}
    record = fleet.record(job_id)
    assert (record["status"], record["class_name"]) == ("starting", "medium")
    assert len(fleet.tasks(started_by=fleet.runner_name(job_id))) == 1
    assert queue_messages(fleet, dlq) == 1  # the poison message stays

    # the same event dead-lettered twice launches nothing more
    dead_letter(fleet, dlq, webhook(payload))
    assert acted(clean()) == {"dlq_replayed": 1}
    assert len(fleet.run_task_calls()) == 1


def test_a_dead_letter_whose_replay_fails_stays_for_a_later_run(fleet: Fleet, dlq: str) -> None:
    payload = job_payload(labels=["self-hosted"])
    dead_letter(fleet, dlq, webhook(payload))
    fleet.github.add_fault(r"generate-jitconfig$", status=403, count=1, method="POST", body=REFUSED)

    assert acted(clean()) == {"dlq_left": 1}
    assert queue_messages(fleet, dlq) == 1
    assert fleet.record(payload["workflow_job"]["id"])["status"] == "pending"


def test_queued_jobs_without_a_record_are_launched(fleet: Fleet) -> None:
    handled = launch(fleet)
    seed_job(fleet, handled)  # its webhook arrived: not launched again
    seed_job(fleet, 880001, run_id=77, labels=["self-hosted", "class:large"])  # lost
    seed_job(fleet, 880002, run_id=77, labels=["ubuntu-latest"])  # not ours
    seed_job(fleet, 880003, run_id=78, labels=["self-hosted"], created_at=None)  # just queued
    seed_job(fleet, 880004, run_id=79, labels=["self-hosted"], status="completed")

    assert acted(clean()) == {"queued_jobs_launched": 1}
    record = fleet.record(880001)
    assert (record["status"], record["class_name"], record["delivery_id"]) == (
        "starting",
        "large",
        "cleanup",
    )
    assert fleet.record(880002) is None and fleet.record(880003) is None
    assert len(fleet.run_task_calls()) == 2
    assert acted(clean()) == {}


def test_with_org_scope_lost_jobs_are_found_in_the_repositories_of_recent_records(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    monkeypatch.setenv("GITHUB_REPO", "")
    launch(fleet)  # a recent record names the repository
    seed_job(fleet, 880031, run_id=91, labels=["self-hosted"])

    assert acted(clean()) == {"queued_jobs_launched": 1}
    assert fleet.record(880031)["status"] == "starting"
    assert fleet.github.requests(path=r"^/orgs/Codertocat/actions/runners/generate-jitconfig$")


def test_launches_of_lost_jobs_are_bounded_per_run(fleet: Fleet) -> None:
    for job_id in (880021, 880022, 880023):
        seed_job(fleet, job_id, run_id=job_id, labels=["self-hosted"])
    first = clean(launches=2)
    assert acted(first) == {"queued_jobs_launched": 2}
    assert first["deferred"] == ["launches"]
    assert acted(clean(launches=2)) == {"queued_jobs_launched": 1}
    assert all(fleet.record(job_id)["status"] == "starting" for job_id in (880021, 880022, 880023))
    assert len(fleet.run_task_calls()) == 3


# --------------------------------------------------------------------------- GitHub and SSM


def test_stale_registrations_are_deleted_and_live_ones_kept(fleet: Fleet) -> None:
    live = launch(fleet)
    ended = launch(fleet)
    fleet.deliver(job_payload("completed", job_id=ended, runner_name=fleet.runner_name(ended)))
    fleet.client("ecs").stop_task(
        cluster=fleet.prefix, task=fleet.record(ended)["task_arn"], reason="done"
    )
    register(fleet, f"{fleet.prefix}-990003")  # no record, no task
    register(fleet, "another-fleet-990004")  # not this fleet's
    online = f"{fleet.prefix}-990005"
    register(fleet, online)
    set_online(fleet, online)  # connected, waiting for a job

    assert acted(clean()) == {"registrations_deleted": 2, "jit_configs_deleted": 1}
    assert registrations(fleet) == {fleet.runner_name(live), "another-fleet-990004", online}
    assert acted(clean()) == {}


def test_leftover_jit_configs_are_deleted_and_live_ones_kept(fleet: Fleet) -> None:
    live = launch(fleet)
    ended = launch(fleet)
    fleet.deliver(job_payload("completed", job_id=ended, runner_name=fleet.runner_name(ended)))
    fleet.put_jit(f"{fleet.prefix}-990006", "orphaned-config-0123456789")
    # not this fleet's runner names, or not a config's shape: not the cleanup's to judge
    foreign = [fleet.put_jit(f"another-fleet-{n}", "x") for n in (990006, 990016)]
    s3 = fleet.client("s3")
    s3.put_object(Bucket=fleet.jit_bucket, Key="notes/readme.txt", Body=b"kept")

    summary = acted(clean())
    assert summary.pop("jit_configs_deleted") == 2
    assert fleet.jit_value(fleet.runner_name(live)) is not None
    assert fleet.jit_value(fleet.runner_name(ended)) is None
    assert fleet.jit_value(f"{fleet.prefix}-990006") is None
    assert sorted(
        fleet.jit_keys("another-fleet-990006") + fleet.jit_keys("another-fleet-990016")
    ) == sorted(foreign)
    assert s3.get_object(Bucket=fleet.jit_bucket, Key="notes/readme.txt")
    assert acted(clean()) == {}


# --------------------------------------------------------------------------- bounds


def test_each_run_stays_within_its_limits_and_the_next_continues(fleet: Fleet) -> None:
    orphans = [run_task(fleet, f"{fleet.prefix}-99100{i}") for i in range(5)]
    for i in range(3):
        register(fleet, f"{fleet.prefix}-99200{i}")
    for i in range(25):
        fleet.put_jit(f"{fleet.prefix}-9930{i:02d}", f"unread-config-{i:02d}")
    limits = {"task_stops": 2, "registration_deletes": 2, "config_deletes": 12}

    first = clean(**limits)
    assert acted(first) == {
        "tasks_stopped_orphan": 2,
        "registrations_deleted": 2,
        "jit_configs_deleted": 12,
    }
    assert first["complete"] is False
    assert first["deferred"] == ["config_deletes", "registration_deletes", "task_stops"]
    second = clean(**limits)
    assert acted(second) == {
        "tasks_stopped_orphan": 2,
        "registrations_deleted": 1,
        "jit_configs_deleted": 12,
    }
    assert second["deferred"] == ["config_deletes", "task_stops"]
    third = clean(**limits)
    assert acted(third) == {"tasks_stopped_orphan": 1, "jit_configs_deleted": 1}
    assert third["complete"] is True
    assert all(task_status(fleet, arn)[0] == "STOPPED" for arn in orphans)
    assert not registrations(fleet)
    assert not fleet.jit_keys()
    assert acted(clean()) == {}


def test_a_run_without_time_left_does_nothing_and_says_so(fleet: Fleet) -> None:
    orphan = run_task(fleet, f"{fleet.prefix}-990007")
    summary = clean(budget=TIME_RESERVE_SECONDS - 1)
    assert acted(summary) == {}
    assert (summary["complete"], summary["deferred"]) == (False, ["time"])
    assert task_status(fleet, orphan)[0] == "RUNNING"


def test_an_outage_in_one_step_does_not_stop_the_others(fleet: Fleet) -> None:
    register(fleet, f"{fleet.prefix}-990008")
    fleet.put_jit(f"{fleet.prefix}-990008", "x" * 40)
    fleet.github.add_fault(r"/actions/runners$", status=401, count=1, method="GET")

    summary = acted(clean())
    assert summary == {"errors": 1, "jit_configs_deleted": 1}
    assert acted(clean()) == {"registrations_deleted": 1}


# --------------------------------------------------------------------------- secrets


def test_no_secret_is_logged(fleet: Fleet, dlq: str, capsys) -> None:
    relaunched = launch(fleet)
    seed_job(fleet, relaunched)
    interrupt(fleet, relaunched)
    dead_letter(fleet, dlq, webhook(job_payload(labels=["self-hosted"])))
    seed_job(fleet, 880010, labels=["self-hosted"])
    fleet.put_jit(f"{fleet.prefix}-990009", "leftover-jit-config-value-42")
    secrets = [PAT, WEBHOOK_SECRET, "leftover-jit-config-value-42"]
    secrets += [runner["_jit"] for runner in fleet.github.runners()]
    clean()
    clean()
    out = capsys.readouterr().out
    assert "cleanup finished" in out
    secrets += [runner["_jit"] for runner in fleet.github.runners()]
    assert len(set(secrets)) >= 6  # with the relaunched and the replayed runners' configs
    for secret in secrets:
        assert secret not in out
