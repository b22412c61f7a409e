"""The cleanup's ECS work: stop tasks that must not run on, reconcile records whose task is gone.

- A live task of this fleet (startedBy `${name_prefix}-${job_id}[-${n}]`) is stopped when it
  ran past the runner timeout, its runner took no job within the idle limit (and GitHub
  does not show it busy), it has no record that owns it (orphan), or its record ended long
  ago. StopTask carries the reason; an owned record becomes `stopped` with it. Idle and
  spare runners (their job ran on another runner) are deregistered first (retire.py): one
  that has just taken a job is kept. A task handed over to another job stops only past the
  timeout.
- A non-terminal record whose task is no longer live gets the status its stop implies
  (lifecycle.stopped_outcome, as for the ECS event that did not arrive), or `failed` with
  stop reason `TaskGone` when ECS no longer knows the task.
- A task still waiting for EC2 capacity (PROVISIONING) past DOCKER_CAPACITY_WAIT_MINUTES is
  logged as an error and counted (TasksWaitingForCapacity, every run, 0 included); it is not
  idle (idle counts from its start) and the runner timeout stops it in the end.
Tasks of the cluster that this fleet did not start are left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from control_plane import launcher, lifecycle, log, metrics, retire, retry
from control_plane.cleanup import policy
from control_plane.cleanup.context import CleanupRun
from control_plane.state import TERMINAL
from control_plane.workflow_job import job_id_of_runner

ECS_PAGE = 100  # ListTasks and DescribeTasks take at most 100


def ecs_call(run: CleanupRun, operation: Callable[..., Any], **kwargs: Any) -> Any:
    return retry.with_retries(
        lambda: operation(**kwargs),
        launcher.transient_delay,
        run.svc.deadline,
        max_attempts=4,
        what=f"ecs:{operation.__name__}",
    )


def describe(run: CleanupRun, arns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The tasks ECS still knows, by ARN (an unknown ARN is simply absent)."""
    arns = list(arns)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(arns), ECS_PAGE):
        response = ecs_call(
            run,
            run.svc.ecs.describe_tasks,
            cluster=run.svc.settings.cluster_name,
            tasks=arns[start : start + ECS_PAGE],
        )
        found.update({task["taskArn"]: task for task in response.get("tasks", [])})
    return found


def live_tasks(run: CleanupRun) -> dict[str, dict[str, Any]]:
    """The cluster's tasks that are meant to run (desiredStatus RUNNING), up to the limit."""
    if run.live is not None:
        return run.live
    arns: list[str] = []
    request: dict[str, Any] = {
        "cluster": run.svc.settings.cluster_name,
        "desiredStatus": "RUNNING",
        "maxResults": ECS_PAGE,
    }
    while len(arns) < run.limits.listed_tasks:
        response = ecs_call(run, run.svc.ecs.list_tasks, **request)
        arns.extend(response.get("taskArns", []))
        if not response.get("nextToken"):
            break
        request["nextToken"] = response["nextToken"]
    else:
        run.deferred.add("listed_tasks")
    run.live = {
        arn: task
        for arn, task in describe(run, arns[: run.limits.listed_tasks]).items()
        if task.get("desiredStatus", "RUNNING") == "RUNNING" and task.get("lastStatus") != "STOPPED"
    }
    return run.live


def stop_tasks(run: CleanupRun) -> None:
    """Stops this fleet's tasks that ran too long, sit idle, have no record or outlived it."""
    prefix = run.svc.settings.name_prefix
    for arn, task in live_tasks(run).items():
        runner = task.get("startedBy")
        job_id = job_id_of_runner(prefix, runner)
        if job_id is None:
            continue  # not started by this fleet
        verdict = policy.task_verdict(task, run.record(job_id), run.now, run.thresholds)
        if verdict is not None:  # confirmed on the record as it is now
            record = run.record(job_id, fresh=True)
            verdict = policy.task_verdict(task, record, run.now, run.thresholds)
        if verdict is None:
            continue
        if not run.take("task_stops"):
            return
        if verdict.kind in ("idle", "spare"):  # a runner GitHub may give a job any moment
            with log.bound(task_arn=arn, job_id=job_id, runner_name=runner):
                if record and retire.retire(run.svc, record, verdict.reason, verdict.kind):
                    run.stopped.add(arn)
                    run.count(f"tasks_stopped_{verdict.kind}")
                    log.warning("cleanup: task stopped", kind=verdict.kind, reason=verdict.reason)
                run.changed(job_id)
            continue
        _stop(run, arn, job_id, runner, record, verdict)


def report_capacity_waits(run: CleanupRun) -> None:
    """Logs each of this fleet's tasks that has waited for capacity past the limit, and
    publishes how many: per Docker class and per class with such a task (0 included, so that
    the alarm sees the count fall), fleet-wide when no class has a line (the [Fleet] sum is
    the fleet's count: a task without a record counts fleet-wide only)."""
    prefix = run.svc.settings.name_prefix
    waiting: Counter[str | None] = Counter()
    for arn, task in live_tasks(run).items():
        job_id = job_id_of_runner(prefix, task.get("startedBy"))
        if job_id is None or arn in run.stopped:
            continue
        record = run.record(job_id)
        waited = policy.capacity_wait(task, record, run.now, run.thresholds)
        if waited is None:
            continue
        class_name = (record or {}).get("class_name")
        waiting[class_name] += 1
        run.count("tasks_waiting_for_capacity")
        log.error(
            "cleanup: task waiting for capacity",
            task_arn=arn,
            job_id=job_id,
            class_name=class_name,
            capacity_provider=task.get("capacityProviderName"),
            waited_minutes=int(waited // 60),
            limit_minutes=int(run.thresholds.capacity_wait_s // 60),
        )
    try:
        docker = {n for n, size in run.svc.class_sizes().classes.items() if size.docker}
    except Exception as exc:  # still published, fleet-wide
        log.error("cleanup: class sizes unreadable", error=retry.describe(exc))
        docker = set()
    classes = sorted(docker | {c for c in waiting if c})
    for class_name in classes:
        metrics.emit(run.svc.settings, "TasksWaitingForCapacity", waiting[class_name], class_name)
    if waiting[None] or not classes:
        metrics.emit(run.svc.settings, "TasksWaitingForCapacity", waiting[None])


def _stop(
    run: CleanupRun,
    arn: str,
    job_id: int,
    runner: str | None,
    record: dict[str, Any] | None,
    verdict: policy.TaskVerdict,
) -> None:
    with log.bound(task_arn=arn, job_id=job_id, runner_name=runner):
        ecs_call(
            run,
            run.svc.ecs.stop_task,
            cluster=run.svc.settings.cluster_name,
            task=arn,
            reason=f"{policy.STOP_REASON_PREFIX}: {verdict.reason}"[:255],
        )
        run.stopped.add(arn)
        run.count(f"tasks_stopped_{verdict.kind}")
        recorded = False
        if verdict.owned and record and record.get("status") not in TERMINAL:
            recorded = run.svc.store.transition(
                job_id,
                "stopped",
                reason=verdict.reason,
                task_arn=arn,
                fields={"stopped_by": verdict.kind},
            )
            run.changed(job_id)
        log.warning(
            "cleanup: task stopped", kind=verdict.kind, reason=verdict.reason, recorded=recorded
        )


def reconcile_records(run: CleanupRun) -> None:
    """Records still in flight whose task is no longer live get the status its stop implies."""
    live = live_tasks(run)
    candidates: dict[str, int] = {}
    for job_id in run.recent:
        record = run.record(job_id)
        arn = (record or {}).get("task_arn")
        if record and arn and record.get("status") not in TERMINAL and arn not in live:
            candidates[arn] = job_id
    if not candidates:
        return
    known = describe(run, candidates)
    for arn, job_id in candidates.items():
        task = known.get(arn)
        record = run.record(job_id) or {}
        if task is not None and task.get("lastStatus") != "STOPPED":
            continue  # started after this run listed the tasks, or still stopping
        if task is None and not policy.missing_task_is_gone(record, run.now, run.thresholds):
            continue
        if not run.take("record_updates"):
            return
        if task is None:
            status, facts = policy.gone_task_outcome()
        else:
            status, facts = lifecycle.stopped_outcome(task)
        reason = f"reconciled by the cleanup: {facts.get('stop_reason') or 'task stopped'}"
        with log.bound(task_arn=arn, job_id=job_id, runner_name=record.get("runner_name")):
            moved = run.svc.store.transition(
                job_id, status, reason=reason, task_arn=arn, fields=facts
            )
            run.changed(job_id)
            if moved:
                run.count("records_reconciled")
                log.warning("cleanup: record reconciled", status=status, reason=reason)
