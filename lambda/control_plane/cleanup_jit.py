"""The cleanup's SSM work: one-shot JIT configs (`${SSM_PREFIX}/jit/<runner name>`) that no
runner will read, because their record ended, is another attempt's, or does not exist.

The runner deletes its own config once read; what is left belongs to a runner that never
started. Parameters are listed page by page (names only are used: values are never read
with decryption, kept or logged) and deleted ten at a time (SSM's DeleteParameters limit).
"""

from __future__ import annotations

from control_plane import cleanup_policy, log
from control_plane.cleanup_context import CleanupRun
from control_plane.workflow_job import job_id_of_runner

SSM_PAGE = 10  # GetParametersByPath and DeleteParameters take at most 10


def delete_leftover_parameters(run: CleanupRun) -> None:
    settings = run.svc.settings
    doomed: list[tuple[str, str]] = []
    for name in _names(run, f"{settings.ssm_prefix}/jit"):
        job_id = job_id_of_runner(settings.name_prefix, name.rsplit("/", 1)[-1])
        if job_id is None:
            continue  # not a runner name of this fleet: not ours to judge
        why = cleanup_policy.leftover_parameter(name, run.record(job_id))
        if why is not None:  # confirmed on the record as it is now
            why = cleanup_policy.leftover_parameter(name, run.record(job_id, fresh=True))
        if why is None:
            continue
        if not run.take("parameter_deletes"):
            break
        doomed.append((name, why))
    for start in range(0, len(doomed), SSM_PAGE):
        _delete(run, doomed[start : start + SSM_PAGE])


def _names(run: CleanupRun, path: str) -> list[str]:
    """The parameter names under `path`, listed before anything is deleted (deleting while
    paging would move the pages)."""
    request = {"Path": path, "Recursive": False, "WithDecryption": False, "MaxResults": SSM_PAGE}
    names: list[str] = []
    while len(names) < run.limits.listed_parameters and run.has_time():
        response = run.svc.ssm.get_parameters_by_path(**request)
        names.extend(parameter["Name"] for parameter in response.get("Parameters", []))
        if not response.get("NextToken"):
            break
        request["NextToken"] = response["NextToken"]
    return names


def _delete(run: CleanupRun, doomed: list[tuple[str, str]]) -> None:
    response = run.svc.ssm.delete_parameters(Names=[name for name, _ in doomed])
    deleted = set(response.get("DeletedParameters", []))
    for name, why in doomed:
        if name in deleted:  # an absent one (InvalidParameters) was deleted by someone else
            log.info("cleanup: leftover JIT config deleted", parameter=name, reason=why)
    run.count("jit_parameters_deleted", len(deleted))
