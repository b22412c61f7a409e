"""The parts of a `workflow_job` webhook payload the control plane uses.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_job
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class PayloadError(ValueError):
    """The payload lacks what a workflow_job event must carry (the message is loggable)."""


@dataclass(frozen=True)
class WorkflowJob:
    action: str
    job_id: int
    run_id: int
    run_attempt: int
    repository: str  # owner/repo
    workflow_name: str
    job_name: str
    labels: tuple[str, ...]
    runner_name: str | None
    conclusion: str | None

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @classmethod
    def from_payload(cls, payload: Any) -> WorkflowJob:
        if not isinstance(payload, dict):
            raise PayloadError("payload is not a JSON object")
        job = payload.get("workflow_job")
        repository = payload.get("repository")
        if not isinstance(job, dict) or not isinstance(repository, dict):
            raise PayloadError("payload has no workflow_job or repository object")
        try:
            job_id = int(job["id"])
            run_id = int(job.get("run_id") or 0)
            run_attempt = int(job.get("run_attempt") or 1)
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError("workflow_job.id/run_id/run_attempt are not integers") from exc
        full_name = repository.get("full_name")
        if not isinstance(full_name, str) or "/" not in full_name:
            raise PayloadError("repository.full_name is not owner/repo")
        labels = job.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise PayloadError("workflow_job.labels is not a list of strings")
        return cls(
            action=str(payload.get("action") or ""),
            job_id=job_id,
            run_id=run_id,
            run_attempt=run_attempt,
            repository=full_name,
            workflow_name=str(job.get("workflow_name") or ""),
            job_name=str(job.get("name") or ""),
            labels=tuple(labels),
            runner_name=job.get("runner_name") or None,
            conclusion=job.get("conclusion") or None,
        )


def runner_name(prefix: str, job_id: int, run_attempt: int) -> str:
    """`${name_prefix}-${job_id}`, with `-${attempt}` for re-run attempts (docs/CONTRACTS.md)."""
    return f"{prefix}-{job_id}" if run_attempt <= 1 else f"{prefix}-{job_id}-{run_attempt}"


def job_id_of_runner(prefix: str, name: str | None) -> int | None:
    """The job id a runner of this fleet was started for, or None if the name is not ours."""
    if not name:
        return None
    match = re.fullmatch(re.escape(prefix) + r"-(\d+)(?:-\d+)?", name)
    return int(match.group(1)) if match else None
