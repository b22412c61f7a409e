"""The cleanup's decisions: pure functions of what it has read (no AWS, no GitHub calls).

Each function answers one question about one thing (a task, a record, a registration, a
JIT parameter, a queued job) and says why in words that go into the record or the log.
cleanup_*.py read the world, ask these, and act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from control_plane import labels
from control_plane.settings import Settings
from control_plane.state import (  # noqa: F401 - part of the policy
    DISPLACEMENTS,
    RELAUNCHES,
    TERMINAL,
    launch_attempt,
)
from control_plane.times import epoch

TASK_GONE = "TaskGone"  # stop_reason code of a record whose task ECS no longer knows
WAITING = ("pending", "starting", "running")  # the runner has not taken a job (yet)
DISPLACEABLE = ("busy", "completed", "stopped", "failed")  # a runner that took some job
STOP_REASON_PREFIX = "aws-runner-fleet cleanup"
# ECS task states before the containers start: waiting for capacity (PROVISIONING), for the
# network interface or the image (PENDING, ACTIVATING).
NOT_STARTED = ("PROVISIONING", "PENDING", "ACTIVATING")


@dataclass(frozen=True)
class Thresholds:
    timeout_s: float  # RUNNER_TIMEOUT_MINUTES
    idle_s: float  # RUNNER_IDLE_MINUTES
    stalled_launch_s: float = 180.0  # a pending launch nobody has touched for this long
    queued_job_min_age_s: float = 120.0  # younger queued jobs are left to their webhook
    missing_task_grace_s: float = 300.0  # ECS may not list a task it has just started
    capacity_wait_s: float = 900.0  # DOCKER_CAPACITY_WAIT_MINUTES

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            timeout_s=settings.runner_timeout_minutes * 60.0,
            idle_s=settings.runner_idle_minutes * 60.0,
            capacity_wait_s=settings.docker_capacity_wait_minutes * 60.0,
        )


def _minutes(seconds: float) -> int:
    return int(seconds // 60)


# --------------------------------------------------------------------------- running tasks


@dataclass(frozen=True)
class TaskVerdict:
    """Why a live task should be stopped. `owned`: the record is this task's own, so the
    reason goes into it; otherwise (orphan) only into the log."""

    kind: str  # timeout | idle | orphan | lingering
    reason: str
    owned: bool


def owns(record: Mapping[str, Any] | None, task: Mapping[str, Any]) -> bool:
    """Whether `record` is the state of `task`: its recorded task, or (a launch between
    RunTask and recording the task) the runner name the task was started with."""
    if not record:
        return False
    if record.get("task_arn"):
        return record["task_arn"] == task.get("taskArn")
    return record.get("runner_name") == task.get("startedBy")


def task_started_at(task: Mapping[str, Any], record: Mapping[str, Any] | None) -> float | None:
    """When the task started (the runner timeout counts from here, so that a task that never
    gets going is stopped too): ECS's own times, else when its record says it was started."""
    for field in ("startedAt", "createdAt"):
        found = epoch(task.get(field))
        if found is not None:
            return found
    if not record:
        return None
    for entry in reversed(record.get("history") or []):
        if entry.get("status") == "starting":
            return epoch(entry.get("at"))
    return epoch(record.get("created_at"))


def running_since(task: Mapping[str, Any], record: Mapping[str, Any] | None) -> float | None:
    """Since when the task's runner could take a job (the idle limit counts from here): ECS's
    startedAt; None while the task waits to start (for EC2 capacity, for its image), however
    long ago it was created; else (ECS gives no time) when it started, as above."""
    started = epoch(task.get("startedAt"))
    if started is not None:
        return started
    if task.get("lastStatus") in NOT_STARTED:
        return None
    return task_started_at(task, record)


def capacity_wait(
    task: Mapping[str, Any], record: Mapping[str, Any] | None, now: float, limits: Thresholds
) -> float | None:
    """How long a task has waited for capacity (ECS PROVISIONING: no instance has room yet)
    when that is longer than the limit, else None."""
    if task.get("lastStatus") != "PROVISIONING":
        return None
    created = task_started_at(task, record)  # not started yet: its createdAt
    waited = None if created is None else now - created
    return waited if waited is not None and waited >= limits.capacity_wait_s else None


def task_verdict(
    task: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    now: float,
    limits: Thresholds,
) -> TaskVerdict | None:
    """Whether a live task of this fleet (by its startedBy) should be stopped, and why.

    `idle` means the records say the runner has taken no job within the idle limit; the
    caller confirms with GitHub that its registration is not busy before stopping it.
    """
    if record and task.get("taskArn") in (record.get("handed_over") or []):
        return _handed_over_verdict(task, record, now, limits)
    if not owns(record, task):
        if record is None:
            why = "no state record for its runner"
        else:
            why = f"its job's record belongs to another attempt ({record.get('runner_name')})"
        return TaskVerdict("orphan", f"orphaned task: {why}", owned=False)
    started = task_started_at(task, record)
    age = None if started is None else now - started
    status = record.get("status")
    if age is not None and age >= limits.timeout_s:
        return TaskVerdict(
            "timeout",
            f"runner timeout: running for {_minutes(age)} min "
            f"(limit {_minutes(limits.timeout_s)} min)",
            owned=True,
        )
    if status in TERMINAL:
        since = epoch(record.get("updated_at"))
        if since is not None and now - since >= limits.idle_s:
            return TaskVerdict(
                "lingering",
                f"still running {_minutes(now - since)} min after its runner was {status}",
                owned=True,
            )
        return None
    if status in WAITING and settled_elsewhere(record):
        return TaskVerdict("spare", f"spare runner: its job {settled_elsewhere(record)}", True)
    running = running_since(task, record)
    idle = None if running is None else now - running
    if status in WAITING and idle is not None and idle >= limits.idle_s:
        return TaskVerdict(
            "idle",
            f"idle runner: no job after {_minutes(idle)} min (limit {_minutes(limits.idle_s)} min)",
            owned=True,
        )
    return None


def settled_elsewhere(record: Mapping[str, Any]) -> str | None:
    """How the record's job was settled without its own runner (`served_by`: the runner that
    ran it, empty if it ended before any runner took it), or None."""
    if "served_by" not in record:
        return None
    runner = record["served_by"]
    return f"ran on {runner}" if runner else "ended before a runner took it"


def _handed_over_verdict(
    task: Mapping[str, Any], record: Mapping[str, Any], now: float, limits: Thresholds
) -> TaskVerdict | None:
    """A task whose runner took another job, its record relaunched: only the timeout applies."""
    started = task_started_at(task, None)
    if started is None or now - started < limits.timeout_s:
        return None
    return TaskVerdict(
        "timeout",
        f"runner timeout: running another job for {_minutes(now - started)} min "
        f"(limit {_minutes(limits.timeout_s)} min)",
        owned=False,
    )


# --------------------------------------------------------------------------- records


def missing_task_is_gone(record: Mapping[str, Any], now: float, limits: Thresholds) -> bool:
    """A recorded task ECS does not describe is gone, unless the record is very recent."""
    updated = epoch(record.get("updated_at"))
    return updated is None or now - updated >= limits.missing_task_grace_s


def gone_task_outcome() -> tuple[str, dict[str, Any]]:
    """Status and facts of a record whose task ECS no longer knows (no stop event came)."""
    return "failed", {"stop_reason": f"{TASK_GONE}: ECS no longer knows the task"}


def current_attempt(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The history entries of the record's current runner (since its last `pending`)."""
    history = list(record.get("history") or [])
    starts = [i for i, entry in enumerate(history) if entry.get("status") == "pending"]
    return history[starts[-1] if starts else 0 :]


def interruption(record: Mapping[str, Any] | None) -> str | None:
    """Why the record's runner stopped before it took a job (whatever stopped it: Spot,
    capacity, a failed start, the entrypoint exiting, the task gone, a user), or None: its
    runner took a job, its job ran on another runner, the cleanup stopped it (idle, spare,
    timeout: `stopped_by`), or this was decided already."""
    if not record or record.get("status") not in ("stopped", "failed"):
        return None
    if not record.get("task_arn") or record.get("recovery_checked"):
        return None
    took_a_job = any(entry.get("status") == "busy" for entry in current_attempt(record))
    if took_a_job or record.get("served_job_id") or record.get("conclusion"):
        return None
    if settled_elsewhere(record) or record.get("stopped_by"):
        return None  # its job ran on another runner, or this fleet stopped it on purpose
    if record.get("stop_reason"):
        return str(record["stop_reason"])
    if record.get("exit_code") is not None:
        return f"runner exited with code {record['exit_code']}"
    return str(record.get("reason") or record.get("status"))


def displacement(record: Mapping[str, Any] | None) -> str | None:
    """Why the record's job needs a new runner: GitHub gave its runner another job
    (`served_job_id`; the runner may have finished it already, events arrive in any order),
    or None."""
    if not record or record.get("status") not in DISPLACEABLE or not record.get("served_job_id"):
        return None
    if not record.get("task_arn") or record.get("recovery_checked"):
        return None
    return f"its runner {record.get('runner_name')} took job {record['served_job_id']}"


def github_view(job: Mapping[str, Any] | None) -> str:
    """What GitHub says of a job, for the reason of a job not relaunched or resumed."""
    return f"GitHub shows the job {job.get('status')}" if job else "GitHub no longer knows the job"


@dataclass(frozen=True)
class Recovery:
    action: str  # relaunch | fail
    reason: str


def recovery(
    record: Mapping[str, Any],
    cause: str,
    job: Mapping[str, Any] | None,
    max_relaunches: int,
    displaced: bool = False,
) -> Recovery:
    """Relaunch the job while GitHub still shows it queued: after its runner stopped before
    a job, at most `max_relaunches` times; after its runner took another job, whenever that
    happens (a displacement is no failure: that runner ran another queued job, and GitHub
    gives the oldest first, so they end), unless relaunches are off. Otherwise it is not
    relaunched, with the reason (`fail` closes an interrupted record)."""
    done = int(record.get(DISPLACEMENTS if displaced else RELAUNCHES) or 0)
    what = cause if displaced else f"stopped before it ran the job ({cause})"
    status = (job or {}).get("status")
    if status != "queued":
        return Recovery("fail", f"{what}; not relaunched: {github_view(job)}")
    if max_relaunches <= 0:
        return Recovery("fail", f"{what}; not relaunched: relaunches are off (max_relaunches 0)")
    if displaced:
        return Recovery("relaunch", f"relaunch after displacement {done + 1}: {what}")
    if done >= max_relaunches:
        return Recovery("fail", f"{what}; relaunch limit reached ({done} of {max_relaunches})")
    return Recovery("relaunch", f"relaunch {done + 1} of {max_relaunches}: {what}")


def stalled_launch(record: Mapping[str, Any] | None, now: float, limits: Thresholds) -> bool:
    """A `pending` record without a task whose launch nobody is working on (lease free or
    expired) and nobody has touched for a while: every delivery of its event failed."""
    if not record or record.get("status") != "pending" or record.get("task_arn"):
        return False
    lease_until = record.get("lease_until")
    if lease_until is not None and float(lease_until) >= now:
        return False
    updated = epoch(record.get("updated_at"))
    return updated is None or now - updated >= limits.stalled_launch_s


# --------------------------------------------------------------------------- GitHub and SSM


def stale_registration(
    runner: Mapping[str, Any], record: Mapping[str, Any] | None, live_runners: Iterable[str]
) -> str | None:
    """Why a runner registration of this fleet should be deleted, or None to keep it.
    Kept: online or busy, a live task of that name, or a record still in flight (its launch
    may be between registering the runner and starting the task)."""
    name = runner.get("name")
    if runner.get("busy") or runner.get("status") == "online" or name in set(live_runners):
        return None
    if record is None:
        return "offline, no task and no state record"
    if record.get("runner_name") != name:
        return "offline registration of an earlier attempt"
    if record.get("status") in TERMINAL:
        return f"offline, no task, runner {record['status']}"
    return None


def leftover_config(key: str, record: Mapping[str, Any] | None) -> str | None:
    """Why a JIT config object should be deleted: ECS has read it (the task ran), or its
    runner will never read it."""
    if record is None:
        return "no state record"
    status = record.get("status")
    if record.get("jit_object", key) != key:
        return "config of an earlier attempt"
    if status in TERMINAL or status in ("running", "busy"):
        return f"runner {status}"
    return None


def queued_for(job: Mapping[str, Any], now: float, extra_labels: Iterable[str]) -> float | None:
    """How long GitHub has shown a job with labels this fleet serves queued (inf when GitHub
    gives no time); None for a job not queued, or not this fleet's."""
    if job.get("status") != "queued":
        return None
    if not labels.select(job.get("labels") or [], extra_labels).ours:
        return None
    created = epoch(job.get("created_at"))
    return float("inf") if created is None else now - created


def lost_job(
    job: Mapping[str, Any], now: float, extra_labels: Iterable[str], limits: Thresholds
) -> bool:
    """A job GitHub shows queued, with labels this fleet serves, old enough that its webhook
    should have been handled (the caller then checks that it has no record)."""
    waited = queued_for(job, now, extra_labels)
    return waited is not None and waited >= limits.queued_job_min_age_s


def stranded_job(
    job: Mapping[str, Any], now: float, extra_labels: Iterable[str], after_seconds: float
) -> bool:
    """A job of this fleet that GitHub has shown queued for longer than `after_seconds`: no
    runner has taken it, whatever the fleet's records say (the stranded-jobs alarm)."""
    waited = queued_for(job, now, extra_labels)
    return waited is not None and waited > after_seconds
