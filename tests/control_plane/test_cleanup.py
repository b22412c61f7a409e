"""The scheduled cleanup against the emulator and the GitHub stand-in, with real records made
by the webhook path: what it stops, reconciles, relaunches, replays, launches and deletes,
that a second run does nothing more, and that every run stays within its bounds."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from control_plane.cleanup import github, jit, tasks
from control_plane.cleanup.context import TIME_RESERVE_SECONDS, CleanupRun, Limits
from control_plane.recovery import RelaunchFailed

from tests.control_plane import emf
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
    REPO,
    WEBHOOK_SECRET,
    Fleet,
    job_payload,
    task_state_change,
    webhook,
)

HOUR = 3600.0
# GitHub refusing a JIT config: a failure, not a rate limit (which holds every launch: pacing.py)
REFUSED = {"message": "Resource not accessible by integration"}


pytestmark = pytest.mark.usefixtures("held_tasks")


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
        "tasks_stopped_idle": 1,  # deregistered first (it never connected), then stopped
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
        "records_failed": 1,  # it never took its job, and GitHub no longer knows the job
        "registrations_deleted": 1,  # the runner that never connected
        "jit_configs_deleted": 1,
    }
    record = fleet.record(job_id)
    assert record["status"] == "failed"  # as lifecycle.stopped_outcome decides for the event
    assert record["exit_code"] == 137
    assert record["stop_reason"] == "EssentialContainerExited: Essential container in task exited"
    assert [entry.get("reason") for entry in record["history"][-2:]] == [
        "reconciled by the cleanup: EssentialContainerExited: Essential container in task exited",
        "stopped before it ran the job (EssentialContainerExited: Essential container in task "
        "exited); not relaunched: GitHub no longer knows the job",
    ]
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
    """The cleanup relaunches what the STOPPED event did not (its invocation died after the
    status write)."""
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    old_name = fleet.runner_name(job_id)
    old_task = interrupt(fleet, job_id, "SpotInterruption", seen=False)
    assert fleet.record(job_id)["status"] == "stopped"

    assert acted(clean()) == {
        "jobs_relaunched": 1,
        "registrations_deleted": 1,  # the interrupted runner's registration
    }
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


@pytest.mark.parametrize(
    "stop",
    [
        {"stopCode": "EssentialContainerExited", "exit_code": 3},  # the entrypoint: no config
        {"stopCode": "EssentialContainerExited", "exit_code": 5},
        {
            "stopCode": "TaskFailedToStart",
            "exit_code": None,
            "stoppedReason": "CannotPullContainerError: pull image manifest has been retried",
        },
        {
            "stopCode": "TaskFailedToStart",
            "exit_code": None,
            "stoppedReason": "ResourceInitializationError: unable to pull secrets or registry auth",
        },
        {"stopCode": "SpotInterruption", "exit_code": 143},
    ],
    ids=["exit-3", "exit-5", "pull-error", "init-error", "spot"],
)
def test_a_runner_that_dies_before_its_job_is_relaunched_at_once(
    fleet: Fleet, stop: dict[str, Any]
) -> None:
    """Whatever stopped it: its STOPPED event relaunches the job GitHub still shows queued,
    once, however often the event arrives."""
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    old_task = fleet.record(job_id)["task_arn"]
    fleet.invoke(task_state_change(fleet, old_task, "RUNNING"))
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=old_task, reason="died")
    stopped = task_state_change(fleet, old_task, "STOPPED", **stop)

    for _ in range(2):  # at-least-once delivery
        fleet.invoke(stopped)
    record = fleet.record(job_id)
    assert (record["status"], record["relaunches"]) == ("starting", 1)
    assert record["runner_name"] == f"{fleet.runner_name(job_id)}-2"
    assert len(fleet.run_task_calls()) == 2
    assert acted(clean()) == {"registrations_deleted": 1}  # the dead runner's


def test_a_runner_lost_in_the_middle_of_its_job_is_recorded_not_relaunched(
    fleet: Fleet,
) -> None:
    job_id = launch(fleet)
    seed_job(fleet, job_id, status="in_progress")
    name = fleet.runner_name(job_id)
    task_arn = fleet.record(job_id)["task_arn"]
    fleet.invoke(task_state_change(fleet, task_arn, "RUNNING"))
    fleet.deliver(job_payload("in_progress", job_id=job_id, runner_name=name))
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=task_arn, reason="spot")
    fleet.invoke(
        task_state_change(
            fleet,
            task_arn,
            "STOPPED",
            stopCode="SpotInterruption",
            stoppedReason="Your Spot Task was interrupted.",
            exit_code=143,
        )
    )
    # GitHub fails the job whose runner it lost
    fleet.deliver(job_payload("completed", job_id=job_id, runner_name=name, conclusion="failure"))
    record = fleet.record(job_id)
    assert record["status"] == "stopped"
    assert record["stop_reason"] == "SpotInterruption: Your Spot Task was interrupted."
    assert record["conclusion"] == "failure"
    assert len(fleet.run_task_calls()) == 1
    assert not fleet.github.requests(path=rf"/actions/jobs/{job_id}$")


def failed_relaunch(fleet: Fleet) -> int:
    """A job whose runner was interrupted and whose relaunch failed (GitHub refused the JIT
    config): the STOPPED event's invocation fails, as Lambda then sees it."""
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    fleet.github.add_fault(r"generate-jitconfig$", status=403, count=1, method="POST", body=REFUSED)
    with pytest.raises(RelaunchFailed):
        interrupt(fleet, job_id)
    return job_id


def test_a_relaunch_that_fails_is_resumed_by_the_redelivery_and_old_events_stay_out(
    fleet: Fleet,
) -> None:
    job_id = failed_relaunch(fleet)
    old_task = fleet.record(job_id)["retired_tasks"][0]

    record = fleet.record(job_id)
    assert (record["status"], record["relaunches"]) == ("pending", 1)
    assert "task_arn" not in record and "lease_owner" not in record
    assert record["reason"].startswith("launch attempt failed: GitHubError: POST")
    # the redelivered event resumes the launch; the interrupted task cannot claim the record
    again = task_state_change(fleet, old_task, "STOPPED", stopCode="SpotInterruption")
    assert fleet.invoke(again)["recovery"] == "launched"
    record = fleet.record(job_id)
    assert (record["status"], record["runner_name"]) == ("starting", f"{fleet.prefix}-{job_id}-2")
    assert record["task_arn"] != old_task
    assert fleet.run_task_calls()[-1]["body"]["clientToken"] == f"{job_id}-2-ondemand"
    assert fleet.invoke(again)["result"] == "unchanged"
    assert len(fleet.run_task_calls()) == 2
    assert acted(clean()) == {"registrations_deleted": 1}


def test_a_failed_relaunch_the_events_never_retry_is_resumed_by_the_cleanup(
    fleet: Fleet,
) -> None:
    job_id = failed_relaunch(fleet)
    age(fleet, job_id, 10 * 60)
    assert acted(clean()) == {"launches_resumed": 1, "registrations_deleted": 1}
    assert fleet.record(job_id)["status"] == "starting"
    assert acted(clean()) == {}


def test_relaunches_stop_at_the_limit_and_the_job_fails_with_the_reason(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_RELAUNCHES", "1")
    job_id = launch(fleet)
    seed_job(fleet, job_id)
    interrupt(fleet, job_id, "TaskFailedToStart")
    assert fleet.record(job_id)["relaunches"] == 1
    interrupt(fleet, job_id, "SpotInterruption")

    assert acted(clean()) == {"registrations_deleted": 2}
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
    interrupt(fleet, job_id, seen=False)

    assert acted(clean()) == {"records_failed": 1, "registrations_deleted": 1}
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
    interrupt(fleet, job_id, seen=False)
    run_a = CleanupRun(services(), Limits(), time.time())
    assert fleet.record(job_id)["status"] == run_a.record(job_id)["status"] == "stopped"

    assert acted(clean())["jobs_relaunched"] == 1  # run B
    new_name = f"{fleet.runner_name(job_id)}-2"
    new_task = fleet.record(job_id)["task_arn"]

    tasks.stop_tasks(run_a)
    github.delete_stale_registrations(run_a)
    jit.delete_leftover_configs(run_a)
    assert acted({"counts": run_a.counts}) == {}
    assert task_status(fleet, new_task)[0] == "RUNNING"
    assert registrations(fleet) == {new_name}
    assert fleet.jit_value(new_name) is not None


# --------------------------------------------------------------------------- lost jobs


def test_dead_letters_are_replayed_and_poison_stays(fleet: Fleet, dlq: str, capsys) -> None:
    payload = job_payload(labels=["self-hosted", "class:medium"])
    job_id = payload["workflow_job"]["id"]
    dead_letter(fleet, dlq, webhook(payload))
    dead_letter(fleet, dlq, "{not an event")
    dead_letter(fleet, dlq, {"source": "aws.events", "detail-type": "Scheduled Event"})

    summary = clean()
    assert acted(summary) == {"dlq_replayed": 1, "dlq_dropped": 1, "dlq_left": 1}
    assert [m.value for m in emf.named(capsys.readouterr().out, "DeadLettersReplayed")] == [1]
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
    assert not fleet.github.requests(path=r"/repos$|^/installation/repositories$")  # one repo


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


LISTING = {"pat": r"^/orgs/Codertocat/repos$", "app": r"^/installation/repositories$"}
CURSOR = "cursor#lost-jobs"


@pytest.fixture(params=["pat", "app"])
def org_scope(request: pytest.FixtureRequest, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fleet serves its organization, with a PAT or as the GitHub App's installation."""
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    monkeypatch.setenv("GITHUB_REPO", "")
    monkeypatch.setenv("GITHUB_AUTH", request.param)
    return request.param


def scanned(fleet: Fleet, run: Callable[[], dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    """What a run did, and the repositories whose runs it listed, in order."""
    mark = len(fleet.github.requests())
    summary = acted(run())
    names: list[str] = []
    for request in fleet.github.requests()[mark:]:
        match = re.match(r"^/repos/([^/]+/[^/]+)/actions/runs$", request["path"])
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return summary, names


def cursor(fleet: Fleet) -> int | None:
    item = fleet.item(CURSOR)
    assert item is None or "kind" not in item  # never among the records
    return None if item is None else int(item["position"])


def test_with_org_scope_a_lost_job_in_a_repository_without_any_record_is_launched(
    fleet: Fleet, org_scope: str
) -> None:
    """Every delivery of the repository's events failed: no record names it."""
    never = "Codertocat/Never-Delivered"
    seed_job(fleet, 880041, run_id=92, labels=["self-hosted"], repository=never)
    assert fleet.records() == []

    assert acted(clean()) == {"queued_jobs_launched": 1}
    record = fleet.record(880041)
    assert (record["status"], record["repository"]) == ("starting", never)
    assert fleet.github.requests(path=LISTING[org_scope])
    assert fleet.github.requests(path=r"^/orgs/Codertocat/actions/runners/generate-jitconfig$")
    assert acted(clean()) == {}


def test_with_org_scope_runs_page_through_every_repository_and_wrap_around(
    fleet: Fleet, org_scope: str
) -> None:
    names = [f"Codertocat/repo-{i}" for i in range(7)]
    for i, name in enumerate(names):
        seed_job(fleet, 880100 + i, run_id=9100 + i, labels=["self-hosted"], repository=name)
    with fleet.github.state.lock:
        fleet.github.state.archived.add("codertocat/repo-4")  # runs no job: passed over
    listing = [REPO, *names]  # GitHub's order (the stand-in's: by name)

    def run() -> tuple[dict[str, int], list[str]]:
        return scanned(fleet, lambda: clean(repository_scans=3))

    done, first = run()
    assert (done, first) == ({"queued_jobs_launched": 2}, listing[0:3])
    assert cursor(fleet) == 3
    done, second = run()
    assert done == {"queued_jobs_launched": 2}
    assert second[:2] == listing[3:5]  # then the repositories of recent records
    assert cursor(fleet) == 6
    done, third = run()
    assert (done, third[:2]) == ({"queued_jobs_launched": 2}, listing[6:8])
    assert cursor(fleet) == 0  # the end of the listing: the next run starts over
    assert "Codertocat/repo-4" not in first + second + third
    assert [i for i in range(7) if fleet.record(880100 + i) is None] == [4]

    done, fourth = run()
    assert (done, fourth[:3]) == ({}, listing[0:3])
    assert cursor(fleet) == 3


def test_the_scan_of_the_organization_crosses_githubs_pages(fleet: Fleet, org_scope: str) -> None:
    names = [f"Codertocat/r{i:03d}" for i in range(101)]  # with Hello-World: 102, two pages
    jobs = [
        {
            "repository": name,
            "id": 881000 + i,
            "status": "completed",
            "created_at": "2025-01-01T00:00:00Z",
        }
        for i, name in enumerate(names)
    ]
    fleet.github.call(fleet.github.state.seed_jobs, jobs)
    seed_job(fleet, 881200, run_id=9200, labels=["self-hosted"], repository=names[98])
    seed_job(fleet, 881201, run_id=9201, labels=["self-hosted"], repository=names[99])
    fleet.client("dynamodb").put_item(
        TableName=f"{fleet.prefix}-state",
        Item={"pk": {"S": CURSOR}, "position": {"N": "98"}},  # where earlier runs stopped
    )

    done, looked = scanned(fleet, lambda: clean(repository_scans=3))
    assert (done, looked) == ({"queued_jobs_launched": 2}, names[97:100])
    assert [r["query"]["page"] for r in fleet.github.requests(path=LISTING[org_scope])] == [
        "1",
        "2",
    ]
    assert cursor(fleet) == 101
    done, looked = scanned(fleet, lambda: clean(repository_scans=3))
    assert (done, looked[:1]) == ({}, names[100:])
    assert cursor(fleet) == 0


def test_a_run_out_of_budget_leaves_the_scan_at_the_repository_it_did_not_finish(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    monkeypatch.setenv("GITHUB_REPO", "")
    names = [f"Codertocat/c-{i}" for i in range(3)]
    for i, name in enumerate(names):
        seed_job(fleet, 880300 + i, run_id=9300 + i, labels=["self-hosted"], repository=name)

    for i in range(3):
        summary = clean(launches=1)
        assert acted(summary) == {"queued_jobs_launched": 1}
        assert fleet.record(880300 + i)["status"] == "starting"
        assert cursor(fleet) == (i + 1 if i < 2 else 0)
    assert summary["deferred"] == []  # the last run finished the listing
    done, looked = scanned(fleet, clean)
    assert (done, looked[:4]) == ({}, [*names, REPO])


def test_a_repository_whose_runs_github_refuses_is_skipped_not_stalled_on(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SCOPE", "org")
    monkeypatch.setenv("GITHUB_REPO", "")
    seed_job(fleet, 880401, run_id=9401, labels=["self-hosted"], repository="Codertocat/a-1")
    seed_job(fleet, 880402, run_id=9402, labels=["self-hosted"], repository="Codertocat/b-2")
    refused = {"message": "Resource not accessible by personal access token"}
    fleet.github.add_fault(r"^/repos/Codertocat/a-1/actions/runs$", status=403, body=refused)

    assert acted(clean()) == {"queued_jobs_launched": 1, "errors": 1}
    assert fleet.record(880401) is None
    assert fleet.record(880402)["status"] == "starting"
    assert acted(clean()) == {"queued_jobs_launched": 1}  # looked at again by the next cycle
    assert fleet.record(880401)["status"] == "starting"


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
