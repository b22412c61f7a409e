"""The cleanup's S3 work: one-shot JIT config objects (`jit/<runner name>/<random>.env`) that
ECS has read already, or that no runner will read, because their record ended, belongs to
another attempt, or does not exist.

The control plane deletes a config when its task is RUNNING (lifecycle.py); what is left
belongs to a runner that never started, or to a delete that failed. Keys are listed before
anything is deleted, values are never read, and deletes go a thousand at a time (S3's
DeleteObjects limit). The bucket's lifecycle rule expires whatever is older than a day.
"""

from __future__ import annotations

from control_plane import jit_config, log
from control_plane.cleanup import policy
from control_plane.cleanup.context import CleanupRun
from control_plane.workflow_job import job_id_of_runner

S3_DELETE_BATCH = 1000


def delete_leftover_configs(run: CleanupRun) -> None:
    settings = run.svc.settings
    doomed: list[tuple[str, str]] = []
    for key in jit_config.keys(run.svc.s3, settings.jit_bucket, run.limits.listed_configs):
        runner = jit_config.runner_of_key(key)
        job_id = job_id_of_runner(settings.name_prefix, runner) if runner else None
        if job_id is None:
            continue  # not a runner name of this fleet: not ours to judge
        why = policy.leftover_config(key, run.record(job_id))
        if why is not None:  # confirmed on the record as it is now
            why = policy.leftover_config(key, run.record(job_id, fresh=True))
        if why is None:
            continue
        if not run.take("config_deletes"):
            break
        doomed.append((key, why))
    for start in range(0, len(doomed), S3_DELETE_BATCH):
        _delete(run, doomed[start : start + S3_DELETE_BATCH])


def _delete(run: CleanupRun, doomed: list[tuple[str, str]]) -> None:
    response = run.svc.s3.delete_objects(
        Bucket=run.svc.settings.jit_bucket,
        Delete={"Objects": [{"Key": key} for key, _ in doomed], "Quiet": False},
    )
    deleted = {item["Key"] for item in response.get("Deleted", [])}
    for key, why in doomed:
        if key in deleted:
            log.info("cleanup: leftover JIT config deleted", jit_object=key, reason=why)
    for error in response.get("Errors", []):
        log.warning(
            "cleanup: JIT config not deleted", jit_object=error.get("Key"), error=error.get("Code")
        )
    run.count("jit_configs_deleted", len(deleted))
