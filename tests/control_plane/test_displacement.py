"""GitHub gives a queued job to any idle runner whose labels cover it (not the runner made for
it): the displaced job gets a new runner at once, the spare one is deregistered and stopped.

Runner R_B was launched for job B `[self-hosted, class:large]`; GitHub gives it the older job A
`[self-hosted]`, whose own runner R_A is still starting.
"""

from __future__ import annotations

import pytest

from tests.control_plane.cleanup_helpers import (
    acted,
    clean,
    launch,
    registrations,
    seed_job,
    services,
    task_status,
)
from tests.control_plane.harness import Fleet, job_payload, task_state_change

SMALL = ("self-hosted",)
LARGE = ("self-hosted", "class:large")


def took(fleet: Fleet, action: str, job_id: int, runner: str, **fields) -> dict:
    """GitHub's `in_progress`/`completed` for `job_id`, run by `runner`."""
    payload = job_payload(action, labels=SMALL, job_id=job_id, runner_name=runner, **fields)
    return fleet.deliver(payload)


@pytest.fixture
def jobs(fleet: Fleet) -> tuple[int, int]:
    """Job A (small) and job B (large), both launched, both queued on GitHub."""
    job_a = launch(fleet, SMALL)
    job_b = launch(fleet, LARGE)
    seed_job(fleet, job_a, labels=list(SMALL))
    seed_job(fleet, job_b, labels=list(LARGE))
    for job_id in (job_a, job_b):  # ECS has started both (and read their configs)
        fleet.invoke(task_state_change(fleet, fleet.record(job_id)["task_arn"], "RUNNING"))
    return job_a, job_b


def test_the_displaced_job_gets_a_new_runner_and_the_spare_one_stops(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, job_b = jobs
    runner_b = fleet.runner_name(job_b)
    task_a, task_b = fleet.record(job_a)["task_arn"], fleet.record(job_b)["task_arn"]

    for _ in range(2):  # at-least-once delivery: the second changes nothing
        took(fleet, "in_progress", job_a, runner_b)

    record_b = fleet.record(job_b)
    assert record_b["status"] == "starting"  # its new runner's
    assert record_b["runner_name"] == f"{runner_b}-2"
    assert record_b["displacements"] == 1
    assert record_b["handed_over"] == record_b["retired_tasks"] == [task_b]
    assert record_b["history"][-2]["reason"] == (
        f"relaunch after displacement 1: its runner {runner_b} took job {job_a}"
    )
    (relaunch,) = fleet.run_task_calls()[2:]
    assert relaunch["body"]["startedBy"] == f"{runner_b}-2"
    assert relaunch["body"]["clientToken"] == f"{job_b}-2-ondemand"

    record_a = fleet.record(job_a)
    assert (record_a["status"], record_a["served_by"]) == ("stopped", runner_b)
    assert record_a["stopped_by"] == "spare"
    assert task_status(fleet, task_a)[0] == "STOPPED"
    assert task_status(fleet, task_b)[0] == "RUNNING"  # it runs job A
    assert registrations(fleet) == {runner_b, f"{runner_b}-2"}  # A's own runner: deregistered

    # A ends on R_B: A's record keeps the outcome; B's record belongs to its new runner
    took(fleet, "completed", job_a, runner_b, conclusion="success")
    assert fleet.record(job_a)["conclusion"] == "success"
    assert fleet.record(job_b)["status"] == "starting"
    # the spare runner's STOPPED event relaunches nothing: its job ran elsewhere
    spare_stopped = task_state_change(fleet, task_a, "STOPPED", stopCode="UserInitiated")
    fleet.invoke(spare_stopped)
    assert fleet.record(job_a)["status"] == "stopped"
    assert len(fleet.run_task_calls()) == 3
    # the cleanup leaves the handed-over task alone (only the timeout applies to it)
    assert acted(clean()) == {}
    assert task_status(fleet, task_b)[0] == "RUNNING"


def test_a_spare_runner_that_just_took_a_job_is_not_stopped(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, job_b = jobs
    runner_a = fleet.runner_name(job_a)
    with fleet.github.state.lock:  # R_A has just taken some other job
        for runner in fleet.github.state.runners.values():
            if runner["name"] == runner_a:
                runner.update(status="online", busy=True)

    took(fleet, "in_progress", job_a, fleet.runner_name(job_b))
    record_a = fleet.record(job_a)
    assert record_a["status"] == "running" and record_a["served_by"]
    assert task_status(fleet, record_a["task_arn"])[0] == "RUNNING"
    assert runner_a in registrations(fleet)


def test_a_displaced_job_no_longer_queued_keeps_its_runner_record(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, job_b = jobs
    seed_job(fleet, job_b, labels=list(LARGE), status="in_progress")  # another runner has it
    took(fleet, "in_progress", job_a, fleet.runner_name(job_b))
    record_b = fleet.record(job_b)
    assert (record_b["status"], record_b["served_job_id"]) == ("busy", job_a)
    assert record_b["not_relaunched"].endswith("GitHub shows the job in_progress")
    assert len(fleet.run_task_calls()) == 2
    assert acted(clean()) == {}  # and the cleanup does not ask GitHub again


def test_no_displacement_relaunch_when_relaunches_are_off(
    fleet: Fleet, jobs: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_RELAUNCHES", "0")
    job_a, job_b = jobs
    took(fleet, "in_progress", job_a, fleet.runner_name(job_b))
    assert fleet.record(job_b)["not_relaunched"].endswith("relaunches are off (max_relaunches 0)")
    assert len(fleet.run_task_calls()) == 2


def test_the_cleanup_relaunches_a_displacement_the_event_missed(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, job_b = jobs
    fleet.github.add_fault(rf"/actions/jobs/{job_b}$", status=502, count=20)
    with pytest.raises(Exception, match="502"):
        took(fleet, "in_progress", job_a, fleet.runner_name(job_b))
    assert fleet.record(job_b)["status"] == "busy"
    fleet.github.state.faults.clear()

    # the displaced job first, then the spare runner the failed event never reached
    assert acted(clean()) == {"jobs_relaunched": 1, "tasks_stopped_spare": 1}
    assert fleet.record(job_b)["runner_name"] == f"{fleet.runner_name(job_b)}-2"


def test_the_cleanup_stops_a_spare_runner_whose_launch_was_under_way(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    """A's task started after the event looked (its launch was under way): the cleanup
    deregisters and stops it at its next run, without waiting for the idle limit."""
    job_a, _ = jobs
    task_a = fleet.record(job_a)["task_arn"]
    services().store.annotate(job_a, {"served_by": "some-runner"})
    assert acted(clean()) == {"tasks_stopped_spare": 1}
    assert task_status(fleet, task_a)[0] == "STOPPED"
    assert fleet.runner_name(job_a) not in registrations(fleet)
    assert acted(clean()) == {}


def test_a_completed_event_alone_still_relaunches_the_displaced_job(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    """GitHub does not redeliver: the in_progress event may never come."""
    job_a, job_b = jobs
    runner_b = fleet.runner_name(job_b)
    took(fleet, "completed", job_a, runner_b, conclusion="success")
    record_b = fleet.record(job_b)
    assert (record_b["runner_name"], record_b["displacements"]) == (f"{runner_b}-2", 1)
    assert "served_conclusion" not in record_b  # the other job's outcome left with its runner
    record_a = fleet.record(job_a)
    assert (record_a["conclusion"], record_a["stopped_by"]) == ("success", "spare")


def test_a_failed_relaunch_fails_the_event_and_its_redelivery_resumes_it(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, job_b = jobs
    runner_b = fleet.runner_name(job_b)
    fleet.github.add_fault(
        r"generate-jitconfig$", status=422, count=1, method="POST", body={"message": "no"}
    )
    with pytest.raises(Exception, match="relaunch of job"):
        took(fleet, "in_progress", job_a, runner_b)
    assert fleet.record(job_b)["status"] == "pending"  # reopened, its lease released
    took(fleet, "in_progress", job_a, runner_b)  # Lambda delivers the event again
    record_b = fleet.record(job_b)
    assert (record_b["status"], record_b["runner_name"]) == ("starting", f"{runner_b}-2")
    assert len(fleet.run_task_calls()) == 3


def test_a_job_cancelled_while_queued_leaves_its_runner_spare(
    fleet: Fleet, jobs: tuple[int, int]
) -> None:
    job_a, _ = jobs
    payload = job_payload("completed", labels=SMALL, job_id=job_a, conclusion="cancelled")
    assert fleet.deliver(payload)["spare_stopped"] is True
    record_a = fleet.record(job_a)
    assert (record_a["status"], record_a["stopped_by"]) == ("stopped", "spare")
    assert record_a["reason"].endswith("ended before a runner took it")
    assert fleet.runner_name(job_a) not in registrations(fleet)
