"""The cleanup's decisions, as pure functions: each rule and its edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from control_plane.cleanup import policy
from control_plane.settings import Settings, SettingsError
from control_plane.state import iso

NOW = 1_750_000_000.0
LIMITS = policy.Thresholds(timeout_s=360 * 60, idle_s=15 * 60)
ARN = "arn:aws:ecs:us-east-1:123456789012:task/fleet/abc"


def record(status: str = "running", minutes_ago: float = 0, **fields) -> dict:
    at = iso(NOW - minutes_ago * 60)
    return {
        "job_id": 42,
        "runner_name": "fleet-42",
        "task_arn": ARN,
        "status": status,
        "created_at": at,
        "updated_at": at,
        "history": [{"status": "pending", "at": at}, {"status": "starting", "at": at}],
        **fields,
    }


def task(**fields) -> dict:
    return {"taskArn": ARN, "startedBy": "fleet-42", "lastStatus": "RUNNING", **fields}


# --------------------------------------------------------------------------- tasks


def test_a_task_without_a_record_is_an_orphan() -> None:
    verdict = policy.task_verdict(task(), None, NOW, LIMITS)
    assert verdict == policy.TaskVerdict(
        "orphan", "orphaned task: no state record for its runner", owned=False
    )


def test_a_task_that_is_not_its_records_task_is_an_orphan() -> None:
    other = record(task_arn=ARN + "-other")
    verdict = policy.task_verdict(task(), other, NOW, LIMITS)
    assert (verdict.kind, verdict.owned) == ("orphan", False)


def test_a_launch_between_runtask_and_recording_its_task_owns_the_task() -> None:
    in_flight = record("pending", task_arn=None)
    assert policy.owns(in_flight, task())
    assert policy.task_verdict(task(), in_flight, NOW, LIMITS) is None
    assert not policy.owns(record("pending", task_arn=None, runner_name="fleet-42-2"), task())


@pytest.mark.parametrize(
    ("status", "minutes", "kind"),
    [
        ("busy", 361, "timeout"),
        ("busy", 359, None),
        ("running", 16, "idle"),
        ("starting", 16, "idle"),
        ("pending", 16, "idle"),
        ("running", 14, None),
        ("busy", 100, None),
        ("completed", 16, "lingering"),
        ("completed", 14, None),
    ],
)
def test_owned_task_verdicts(status: str, minutes: float, kind: str | None) -> None:
    verdict = policy.task_verdict(task(), record(status, minutes), NOW, LIMITS)
    assert (verdict.kind if verdict else None) == kind
    if verdict:
        assert verdict.owned


def test_ecs_times_come_before_the_records() -> None:
    started = datetime.fromtimestamp(NOW - 400 * 60, UTC)
    verdict = policy.task_verdict(task(startedAt=started), record("busy", 1), NOW, LIMITS)
    assert verdict.reason == "runner timeout: running for 400 min (limit 360 min)"
    assert policy.task_started_at(task(createdAt=NOW - 5), None) == NOW - 5
    assert policy.task_started_at(task(), None) is None


def test_a_relaunched_record_counts_from_its_last_start() -> None:
    relaunched = record("running", 30)
    relaunched["history"].append({"status": "starting", "at": iso(NOW - 60)})
    assert policy.task_started_at(task(), relaunched) == pytest.approx(NOW - 60, abs=0.01)


@pytest.mark.parametrize("state", ["PROVISIONING", "PENDING", "ACTIVATING"])
def test_a_task_not_started_yet_is_never_idle_and_the_timeout_still_applies(state: str) -> None:
    created = NOW - 20 * 60  # waiting for EC2 capacity (or its image) for 20 minutes
    waiting = task(lastStatus=state, createdAt=created)
    assert policy.running_since(waiting, record("starting", 20)) is None
    assert policy.task_verdict(waiting, record("starting", 20), NOW, LIMITS) is None
    stuck = task(lastStatus=state, createdAt=NOW - 400 * 60)
    assert policy.task_verdict(stuck, record("starting", 400), NOW, LIMITS).kind == "timeout"


def test_capacity_waits_past_the_limit() -> None:
    limits = policy.Thresholds(timeout_s=360 * 60, idle_s=15 * 60, capacity_wait_s=15 * 60)
    waiting = task(lastStatus="PROVISIONING", createdAt=NOW - 16 * 60)
    assert policy.capacity_wait(waiting, None, NOW, limits) == 16 * 60
    assert policy.capacity_wait({**waiting, "createdAt": NOW - 14 * 60}, None, NOW, limits) is None
    assert policy.capacity_wait({**waiting, "lastStatus": "PENDING"}, None, NOW, limits) is None
    untimed = task(lastStatus="PROVISIONING")  # ECS gives no time: the record's start
    assert policy.capacity_wait(untimed, record("starting", 20), NOW, limits) == pytest.approx(
        20 * 60, abs=0.01
    )


# --------------------------------------------------------------------------- records


def test_interruptions_before_the_job() -> None:
    spot = record("stopped", stop_reason="SpotInterruption: Your Spot Task was interrupted.")
    assert policy.interruption(spot) == spot["stop_reason"]
    assert policy.interruption(record("failed", stop_reason="TaskFailedToStart: pull"))
    assert policy.interruption(record("failed", stop_reason="TaskGone: ECS no longer knows"))
    capacity = record("failed", stop_reason="Capacity is unavailable at this time.")
    assert policy.interruption(capacity)
    # whatever the stop code: the entrypoint exiting before the runner connected, a user
    exited = record("failed", stop_reason="EssentialContainerExited: exited", exit_code=3)
    assert policy.interruption(exited) == "EssentialContainerExited: exited"
    assert policy.interruption(record("stopped", stop_reason="UserInitiated: operator"))
    assert policy.interruption(record("failed", exit_code=5)) == "runner exited with code 5"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "stopped", "stop_reason": "UserInitiated: cleanup", "stopped_by": "idle"},
        {"status": "stopped", "stop_reason": "UserInitiated: x", "served_by": "fleet-7"},
        {"status": "running", "stop_reason": "SpotInterruption: x"},
        {"status": "stopped", "stop_reason": "SpotInterruption: x", "conclusion": "success"},
        {"status": "stopped", "stop_reason": "SpotInterruption: x", "served_job_id": 7},
        {"status": "stopped", "stop_reason": "SpotInterruption: x", "recovery_checked": "t"},
        {"status": "stopped", "stop_reason": "SpotInterruption: x", "task_arn": None},
    ],
)
def test_not_interruptions(fields: dict) -> None:
    assert policy.interruption({**record(), **fields}) is None


def test_a_runner_that_took_its_job_was_not_interrupted_before_it() -> None:
    busy = record("stopped", stop_reason="SpotInterruption: x")
    busy["history"].append({"status": "busy", "at": iso(NOW)})
    assert policy.interruption(busy) is None


def test_only_the_current_runner_counts_after_a_relaunch() -> None:
    """A record relaunched after its runner took another job has `busy` in its history: the
    new runner dying before its job is still an interruption."""
    relaunched = record("failed", stop_reason="EssentialContainerExited: exited")
    relaunched["history"] += [
        {"status": "busy", "at": iso(NOW - 50)},
        {"status": "pending", "at": iso(NOW - 40)},
        {"status": "starting", "at": iso(NOW - 30)},
    ]
    assert policy.interruption(relaunched) == "EssentialContainerExited: exited"


def test_displacement_is_a_runner_that_took_another_job() -> None:
    assert policy.displacement(record("busy", served_job_id=7)) == (
        "its runner fleet-42 took job 7"
    )
    assert policy.displacement(record("busy")) is None
    # the runner may have finished the other job before its in_progress event came
    assert policy.displacement(record("completed", served_job_id=7))
    assert policy.displacement(record("running", served_job_id=7)) is None
    assert policy.displacement(record("busy", served_job_id=7, recovery_checked="t")) is None


@pytest.mark.parametrize(
    ("relaunches", "job", "action", "reason"),
    [
        (0, {"status": "queued"}, "relaunch", "relaunch 1 of 2: stopped before it ran the job (c)"),
        (1, {"status": "queued"}, "relaunch", "relaunch 2 of 2: stopped before it ran the job (c)"),
        (
            2,
            {"status": "queued"},
            "fail",
            "stopped before it ran the job (c); relaunch limit reached (2 of 2)",
        ),
        (
            0,
            {"status": "in_progress"},
            "fail",
            "stopped before it ran the job (c); not relaunched: GitHub shows the job in_progress",
        ),
        (
            0,
            None,
            "fail",
            "stopped before it ran the job (c); not relaunched: GitHub no longer knows the job",
        ),
    ],
)
def test_recovery(relaunches: int, job: dict | None, action: str, reason: str) -> None:
    decision = policy.recovery(record(relaunches=relaunches), "c", job, max_relaunches=2)
    assert decision == policy.Recovery(action, reason)


def test_the_launch_attempt_counts_github_attempts_and_relaunches() -> None:
    assert policy.launch_attempt({}) == 1
    assert policy.launch_attempt({"run_attempt": 2}) == 2
    assert policy.launch_attempt({"run_attempt": 2, "relaunches": 1}) == 3


def test_stalled_launches() -> None:
    stalled = record("pending", 4, task_arn=None)
    assert policy.stalled_launch(stalled, NOW, LIMITS)
    assert not policy.stalled_launch(record("pending", 2, task_arn=None), NOW, LIMITS)
    assert not policy.stalled_launch({**stalled, "lease_until": NOW + 30}, NOW, LIMITS)
    assert policy.stalled_launch({**stalled, "lease_until": NOW - 30}, NOW, LIMITS)
    assert not policy.stalled_launch(record("pending", 4), NOW, LIMITS)  # has a task
    assert not policy.stalled_launch(record("starting", 4, task_arn=None), NOW, LIMITS)
    assert not policy.stalled_launch(None, NOW, LIMITS)


def test_a_missing_task_is_gone_only_after_a_grace_period() -> None:
    assert not policy.missing_task_is_gone(record(minutes_ago=1), NOW, LIMITS)
    assert policy.missing_task_is_gone(record(minutes_ago=6), NOW, LIMITS)


# --------------------------------------------------------------------------- GitHub and SSM


def runner(name: str = "fleet-42", **fields) -> dict:
    return {"id": 1, "name": name, "status": "offline", "busy": False, **fields}


@pytest.mark.parametrize(
    ("registration", "state", "live", "why"),
    [
        (runner(), None, (), "offline, no task and no state record"),
        (runner(), record("stopped"), (), "offline, no task, runner stopped"),
        (
            runner(),
            record("starting", runner_name="fleet-42-2"),
            (),
            "offline registration of an earlier attempt",
        ),
        (runner(), record("starting"), (), None),  # in flight: the task may not exist yet
        (runner(), None, ("fleet-42",), None),  # a live task
        (runner(status="online"), None, (), None),
        (runner(busy=True), record("completed"), (), None),
    ],
)
def test_stale_registrations(registration, state, live, why) -> None:
    assert policy.stale_registration(registration, state, live) == why


def test_leftover_configs() -> None:
    key = "jit/fleet-42/" + "a" * 40 + ".env"
    assert policy.leftover_config(key, None) == "no state record"
    assert policy.leftover_config(key, record("failed", jit_object=key)) == "runner failed"
    newer = record("starting", jit_object="jit/fleet-42-2/" + "b" * 40 + ".env")
    assert policy.leftover_config(key, newer) == "config of an earlier attempt"
    # ECS read it when the task started: a delete that failed then is finished here
    assert policy.leftover_config(key, record("running", jit_object=key)) == "runner running"
    assert policy.leftover_config(key, record("busy", jit_object=key)) == "runner busy"
    for waiting in ("pending", "image-building", "starting"):
        assert policy.leftover_config(key, record(waiting, jit_object=key)) is None
        assert policy.leftover_config(key, record(waiting)) is None  # a record from before S3
    assert policy.leftover_config(key, record("completed")) == "runner completed"


@pytest.mark.parametrize(
    ("job", "lost"),
    [
        ({"status": "queued", "labels": ["self-hosted", "linux"], "created_at": iso(NOW - 300)}, 1),
        ({"status": "queued", "labels": ["self-hosted"]}, 1),
        ({"status": "queued", "labels": ["self-hosted"], "created_at": iso(NOW - 30)}, 0),
        ({"status": "queued", "labels": ["ubuntu-latest"], "created_at": iso(NOW - 300)}, 0),
        ({"status": "in_progress", "labels": ["self-hosted"], "created_at": iso(NOW - 300)}, 0),
    ],
)
def test_lost_jobs(job: dict, lost: int) -> None:
    assert policy.lost_job(job, NOW, ("linux",), LIMITS) is bool(lost)


def test_times_in_every_shape() -> None:
    assert policy.epoch("2025-06-15T12:00:00.000Z") == policy.epoch(
        datetime(2025, 6, 15, 12, tzinfo=UTC)
    )
    assert policy.epoch(5) == 5.0
    assert policy.epoch("") is None and policy.epoch("yesterday") is None


# --------------------------------------------------------------------------- settings

BASE_ENV = {
    "NAME_PREFIX": "fleet",
    "GITHUB_OWNER": "o",
    "GITHUB_REPO": "r",
    "SUBNET_IDS": "s",
    "JIT_BUCKET": "fleet-jit",
}
BASE_ENV["SECURITY_GROUP_IDS"] = "g"


def test_the_cleanup_settings_and_their_defaults() -> None:
    settings = Settings.from_env(BASE_ENV)
    assert (settings.runner_timeout_minutes, settings.runner_idle_minutes) == (360, 15)
    assert (settings.max_relaunches, settings.dlq_url) == (2, "")
    env = {
        **BASE_ENV,
        "RUNNER_TIMEOUT_MINUTES": "90",
        "RUNNER_IDLE_MINUTES": "5",
        "MAX_RELAUNCHES": "0",
        "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fleet-events-dlq",
    }
    settings = Settings.from_env(env)
    assert policy.Thresholds.from_settings(settings) == policy.Thresholds(90 * 60, 5 * 60)
    assert Settings.from_env(BASE_ENV).docker_capacity_wait_minutes == 15
    waits = Settings.from_env({**BASE_ENV, "DOCKER_CAPACITY_WAIT_MINUTES": "40"})
    assert policy.Thresholds.from_settings(waits).capacity_wait_s == 40 * 60
    assert settings.max_relaunches == 0
    assert settings.dlq_url.endswith("/fleet-events-dlq")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_RELAUNCHES", "-1"),
        ("MAX_RELAUNCHES", "two"),
        ("RUNNER_IDLE_MINUTES", "0"),
        ("DOCKER_CAPACITY_WAIT_MINUTES", "0"),
    ],
)
def test_bad_cleanup_settings_fail_loudly(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**BASE_ENV, name: value})
