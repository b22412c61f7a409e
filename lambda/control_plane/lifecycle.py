"""Status changes of a runner after launch, from GitHub and ECS events.

- `workflow_job` `in_progress` → `busy`, `completed` → `completed` (with the job's
  conclusion). The record is found through the runner's name, and must still have that
  runner. GitHub gives a queued job to any idle runner whose labels cover it, so the runner
  started for job B may run job A: displacement.py handles that.
- ECS Task State Change → `starting` (provisioning), `running`, and on STOPPED `completed`
  (exit code 0), `stopped` (stopped by someone: user, Spot interruption, scheduler) or `failed`.
  A runner that stopped before it took a job has its job relaunched at once (recovery.py);
  one lost in the middle of its job keeps the stop reason, and GitHub fails that job.
  From RUNNING on, ECS has read the task's JIT config file: its S3 object is deleted then (or on
  STOPPED, for a task that never started); the cleanup deletes what a failed delete left.
  A Docker task's EC2 instance is single use (instances.py): drained once the task is placed
  (PENDING, RUNNING), terminated once it has STOPPED. That comes last, after the status, and
  a failure propagates: the event is delivered again.

Each also records what it measures (measure.py: queue wait, job time, start time, cost).

Events arrive out of order and more than once: `StateStore.transition` only moves forwards;
a late event keeps its facts (conclusion, exit code, stop reason) without moving the status.
"""

from __future__ import annotations

from typing import Any

from control_plane import displacement, instances, jit_config, log, measure, recovery, retry
from control_plane.cleanup import policy
from control_plane.launcher import CONTAINER
from control_plane.services import Services
from control_plane.workflow_job import WorkflowJob, job_id_of_runner

STARTING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
STOPPED_BY_SOMEONE = ("UserInitiated", "SpotInterruption", "ServiceSchedulerInitiated")


def _apply(svc: Services, job_id: int, status: str, **kwargs: Any) -> dict[str, Any]:
    if svc.store.transition(job_id, status, **kwargs):
        log.info("status moved", status=status)
        return {"result": "moved", "status": status}
    record = svc.store.get(job_id)
    if record is None:
        log.info("ignored: no record for this runner", status=status)
        return {"result": "ignored", "reason": "no record"}
    log.info("status unchanged: duplicate or late event", status=status, current=record["status"])
    return {"result": "unchanged", "status": record["status"]}


def on_workflow_job(job: WorkflowJob, svc: Services) -> dict[str, Any]:
    """`in_progress` / `completed` for a job some runner took (or that ended without one)."""
    record_job = job_id_of_runner(svc.settings.name_prefix, job.runner_name)
    if record_job is None:
        return displacement.on_job_without_our_runner(job, svc)
    log.bind(runner_name=job.runner_name, record_job_id=record_job)
    if record_job != job.job_id:
        result = displacement.on_other_job(job, record_job, svc)
    elif job.action == "in_progress":
        result = _apply(svc, record_job, "busy", runner=job.runner_name)
    else:
        fields = {"conclusion": job.conclusion}
        result = _apply(svc, record_job, "completed", fields=fields, runner=job.runner_name)
    if job.action == "in_progress":  # the job's own record, whichever runner took it
        measure.job_started(job, svc)
    else:
        measure.job_completed(job, svc)
    return result


def stopped_outcome(detail: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Terminal status and facts of a STOPPED task (pure)."""
    containers = detail.get("containers") or []
    runner = next((c for c in containers if c.get("name") == CONTAINER), None)
    exit_code = (runner or {}).get("exitCode")
    stop_code = detail.get("stopCode") or ""
    reason = detail.get("stoppedReason") or ""
    facts = {
        "exit_code": exit_code,
        "stop_reason": f"{stop_code}: {reason}".strip(": ") or None,
    }
    if stop_code in STOPPED_BY_SOMEONE:
        return "stopped", facts
    if exit_code == 0:
        return "completed", facts
    return "failed", facts


def on_task_state_change(event: dict[str, Any], svc: Services) -> dict[str, Any]:
    detail = event.get("detail") or {}
    cluster_arn = str(detail.get("clusterArn", ""))
    task_arn = detail.get("taskArn")
    if not cluster_arn.endswith(f":cluster/{svc.settings.cluster_name}") or not task_arn:
        log.info("ignored: task of another cluster", cluster_arn=cluster_arn)
        return {"result": "ignored", "reason": "another cluster"}
    name = detail.get("startedBy")
    job_id = job_id_of_runner(svc.settings.name_prefix, name)
    if job_id is None:
        log.info("ignored: task not started by this fleet", task_arn=task_arn)
        return {"result": "ignored", "reason": "not this fleet's task"}
    log.bind(
        runner_name=name, job_id=job_id, task_arn=task_arn, last_status=detail.get("lastStatus")
    )
    result = _task_status(detail, svc, job_id, task_arn)
    instance = instances.on_task_state(detail, svc)
    if instance:
        result["instance"] = instance
    return result


def _task_status(
    detail: dict[str, Any], svc: Services, job_id: int, task_arn: str
) -> dict[str, Any]:
    """The record's status (and what goes with it) for the task's new state."""
    last_status = detail.get("lastStatus")
    if config_read_or_moot(detail):
        delete_jit_configs(detail, svc)
    if last_status in STARTING_STATES:
        return _apply(svc, job_id, "starting", task_arn=task_arn)
    if last_status == "RUNNING":
        result = _apply(svc, job_id, "running", task_arn=task_arn)
        measure.task_running(detail, svc, job_id)
        return result
    if last_status == "STOPPED":
        status, facts = stopped_outcome(detail)
        result = _apply(svc, job_id, status, task_arn=task_arn, fields=facts)
        record = svc.store.get(job_id)  # after the move: for the bill and the recovery
        measure.task_stopped(detail, svc, record)
        if status != "completed":  # a redelivered event finishes what a failed one began
            result["recovery"] = _recover_interrupted(svc, record)
        return result
    log.info("ignored: intermediate task state")
    return {"result": "ignored", "reason": f"lastStatus {last_status}"}


def _recover_interrupted(svc: Services, record: dict[str, Any] | None) -> str | None:
    """A runner that stopped before it took a job: its job gets a new runner at once."""
    cause = policy.interruption(record)
    if cause is None:  # or a relaunch whose launch failed: this redelivery resumes it
        return recovery.resume(svc, record)
    return recovery.recover(svc, record or {}, cause)


def config_read_or_moot(detail: dict[str, Any]) -> bool:
    """Whether the task's JIT config can go: ECS read it before RUNNING; a task that stops
    without having started never will. A task that ran had it deleted on RUNNING already (a
    failed delete is the cleanup's), so its STOPPED event costs no S3 call (pure)."""
    status = detail.get("lastStatus")
    return status == "RUNNING" or (status == "STOPPED" and not detail.get("startedAt"))


def jit_config_keys(detail: dict[str, Any], bucket: str) -> list[str]:
    """The keys of the task's JIT config files in `bucket`, from its overrides (pure)."""
    overrides = (detail.get("overrides") or {}).get("containerOverrides") or []
    files = [
        f for o in overrides if o.get("name") == CONTAINER for f in o.get("environmentFiles") or []
    ]
    keys = (jit_config.key_of_arn(str(f.get("value", "")), bucket) for f in files)
    return [key for key in keys if key]


def delete_jit_configs(detail: dict[str, Any], svc: Services) -> None:
    """A failed delete is left to the cleanup: the status change matters more."""
    for key in jit_config_keys(detail, svc.settings.jit_bucket):
        try:
            jit_config.delete(svc.s3, svc.settings.jit_bucket, key)
            log.info("JIT config deleted: ECS has read it", jit_object=key)
        except Exception as exc:
            log.warning(
                "could not delete the JIT config", jit_object=key, error=retry.describe(exc)
            )
