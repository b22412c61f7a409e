"""The parts of a `workflow_job` webhook payload the control plane uses.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_job
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_ID = 2**63 - 1
# No runner can have more labels (generate-jitconfig takes 1-100); 512 characters leave room
# for image:<registry/repository:tag>. Both keep a job's record far below DynamoDB's 400 KB.
MAX_LABELS = 100
MAX_LABEL_LENGTH = 512


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
    # GitHub's times (ISO 8601): queued, taken by a runner, finished
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None

    @classmethod
    def from_payload(cls, payload: Any) -> WorkflowJob:
        if not isinstance(payload, dict):
            raise PayloadError("payload is not a JSON object")
        job = payload.get("workflow_job")
        repository = payload.get("repository")
        if not isinstance(job, dict) or not isinstance(repository, dict):
            raise PayloadError("payload has no workflow_job or repository object")
        job_id = _integer(job, "id", minimum=1)
        run_id = _integer(job, "run_id", minimum=0, default=0)
        run_attempt = _integer(job, "run_attempt", minimum=1, default=1)
        full_name = repository.get("full_name")
        if not isinstance(full_name, str) or "/" not in full_name:
            raise PayloadError("repository.full_name is not owner/repo")
        labels = job.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise PayloadError("workflow_job.labels is not a list of strings")
        if len(labels) > MAX_LABELS or any(len(label) > MAX_LABEL_LENGTH for label in labels):
            raise PayloadError(
                f"workflow_job.labels: more than {MAX_LABELS} labels, "
                f"or one longer than {MAX_LABEL_LENGTH} characters"
            )
        parsed = cls(
            action=str(payload.get("action") or ""),
            job_id=job_id,
            run_id=run_id,
            run_attempt=run_attempt,
            repository=full_name,
            workflow_name=str(job.get("workflow_name") or ""),
            job_name=str(job.get("name") or ""),
            labels=tuple(labels),
            runner_name=_optional_text(job, "runner_name"),
            conclusion=_optional_text(job, "conclusion"),
            created_at=_time(job, "created_at"),
            started_at=_time(job, "started_at"),
            completed_at=_time(job, "completed_at"),
        )
        # JSON may escape a lone surrogate (\ud83d), which no UTF-8 API (DynamoDB) accepts
        texts = (parsed.action, full_name, parsed.workflow_name, parsed.job_name, *labels)
        try:
            "".join((*texts, parsed.runner_name or "", parsed.conclusion or "")).encode()
        except UnicodeEncodeError as exc:
            raise PayloadError("workflow_job text is not valid Unicode") from exc
        return parsed


def _integer(job: dict[str, Any], name: str, minimum: int, default: int | None = None) -> int:
    """An id field as GitHub sends it: a JSON integer (not a string, float or boolean) that
    fits GitHub's 64-bit ids, since it becomes a key, a runner name and ECS tags."""
    value = job.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_ID:
        raise PayloadError(f"workflow_job.{name} is not an integer from {minimum} to 2^63-1")
    return value


def _optional_text(job: dict[str, Any], name: str) -> str | None:
    value = job.get(name)
    if value is not None and not isinstance(value, str):
        raise PayloadError(f"workflow_job.{name} is not a string")
    return value or None


def _time(job: dict[str, Any], name: str) -> str | None:
    """A time GitHub gives, for metrics only: anything but a string counts as absent."""
    value = job.get(name)
    return value if isinstance(value, str) and value else None


def runner_name(prefix: str, job_id: int, run_attempt: int) -> str:
    """`${name_prefix}-${job_id}`, with `-${attempt}` for re-run attempts (docs/CONTRACTS.md)."""
    return f"{prefix}-{job_id}" if run_attempt <= 1 else f"{prefix}-{job_id}-{run_attempt}"


def job_id_of_runner(prefix: str, name: str | None) -> int | None:
    """The job id a runner of this fleet was started for, or None if the name is not ours."""
    if not name:
        return None
    match = re.fullmatch(re.escape(prefix) + r"-(\d+)(?:-\d+)?", name)
    return int(match.group(1)) if match else None
