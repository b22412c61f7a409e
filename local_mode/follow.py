"""What became of a job sent to the local stack, as `make job` prints it.

Two views, read as the CLI reads them: GitHub's job (queued → in_progress → completed with
its conclusion), through the fleet's own GitHub settings and credential, and the fleet's
record in the state table (pending → starting → running → busy → a terminal status, or
`rejected` with its reason). A refusal leaves neither: the control plane's answer, which the
local webhook endpoint returns, says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from control_plane.github import GitHubError, GitHubUnavailable
from control_plane.state import TERMINAL, StateStore

from ecsrunner import github_access, records
from ecsrunner.config import Config
from local_mode import stack as local_stack

# The control plane's answers that leave no record and start nothing.
NOTHING_RECORDED = ("refused", "ignored")
POLL_SECONDS = 0.25

Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str


def unrecorded(response: Any) -> Outcome | None:
    """A refused or ignored delivery, from the handler's results in the webhook's answer."""
    results = response.get("results") if isinstance(response, dict) else None
    for result in results or []:
        if isinstance(result, dict) and result.get("result") in NOTHING_RECORDED:
            return Outcome(False, f"{result['result']}: {result.get('reason') or 'no reason'}")
    return None


def fleet_detail(record: dict) -> str:
    status = record.get("status")
    if record.get("reason") and status in ("pending", "rejected", "failed"):
        return str(record["reason"])
    if status == "starting" and record.get("task_arn"):
        return "task " + str(record["task_arn"]).rsplit("/", 1)[-1]
    if status == "busy":
        return f"runner {record.get('runner_name')}"
    if status in TERMINAL:
        return records.how_it_stopped(record) or ""
    return ""


def github_detail(job: dict) -> str:
    if job.get("status") == "completed":
        return f"{job.get('conclusion')} (runner {job.get('runner_name')})"
    if job.get("status") == "in_progress":
        return f"runner {job.get('runner_name')}"
    return ""


def settled(record: dict | None, job: dict | None) -> Outcome | None:
    """The job's outcome once GitHub and the fleet's record have one; None until then."""
    record = record or {}
    status = record.get("status")
    if status == "rejected":
        return Outcome(False, f"rejected: {record.get('reason')}")
    github_status = (job or {}).get("status")
    if github_status == "completed" and status in TERMINAL:
        conclusion = job.get("conclusion")
        return Outcome(
            conclusion == "success",
            f"completed: {conclusion}, run by {job.get('runner_name')} (fleet record {status})",
        )
    if status == "failed" and github_status != "in_progress":
        # A failed launch or image build: GitHub keeps the job queued until it cancels it.
        why = records.failure_reason(record) or "no reason recorded"
        return Outcome(False, f"failed: {why} (GitHub shows the job {github_status or 'unread'})")
    return None


def github_client(current: dict) -> Any:
    """The fleet's GitHub client, as `ecsrunner` builds it, on the stack's emulator."""
    clients = {name: local_stack.aws_client(current, name) for name in ("lambda", "ssm")}
    cfg = Config(
        table=current["runner_table"],
        region=current["region"],
        function_name=current["function_name"],
        _clients=clients,
    )
    return github_access.client(cfg)


class Watcher:
    """Prints each change of the job's two statuses, with the time since it was sent: GitHub's
    when a poll sees it, the fleet's from its record's history (every status, at its time)."""

    def __init__(self, current: dict, job_id: int, say: Say) -> None:
        self.job_id = job_id
        self.repository = current["github_repo"]
        dynamodb = local_stack.aws_client(current, "dynamodb")
        self.store = StateStore(current["runner_table"], dynamodb)
        self.github, self.github_problem = None, ""
        try:
            self.github = github_client(current)
        except github_access.Unavailable as exc:  # the job is still sent; GitHub's view is not
            self.github_problem = str(exc)
        self.say = say
        self.github_status: str | None = None
        self.history_shown = 0
        self.record: dict | None = None  # the fleet's record, as last read
        self.sent = time.time()  # made just before the webhook is sent: times count from here

    def github_job(self) -> tuple[dict | None, str]:
        """(the job, or None and why it could not be read)."""
        if self.github is None:
            return None, self.github_problem
        try:
            with github_access.quiet_logs():
                return self.github.get_job(self.repository, self.job_id), "not found"
        except (GitHubError, GitHubUnavailable, github_access.Unavailable) as exc:
            return None, str(exc)

    def github_lines(self, job: dict | None, problem: str) -> list[tuple[float, str, str, str]]:
        status = job.get("status") if job else "unreadable"
        if status == self.github_status:
            return []
        self.github_status = status
        detail = github_detail(job) if job else problem
        return [(time.time() - self.sent, "GitHub", str(status), detail)]

    def fleet_lines(self, record: dict | None) -> list[tuple[float, str, str, str]]:
        record = record or {}
        history = record.get("history") or []
        lines = []
        for index in range(self.history_shown, len(history)):
            entry = history[index]
            latest = index == len(history) - 1
            detail = fleet_detail(record) if latest else str(entry.get("reason") or "")
            at = datetime.fromisoformat(entry["at"]).timestamp() - self.sent
            lines.append((at, "fleet", str(entry["status"]), detail))
        self.history_shown = len(history)
        return lines

    def look(self) -> tuple[dict | None, dict | None]:
        job, problem = self.github_job()
        record = self.record = self.store.get(self.job_id)
        for at, source, status, detail in sorted(
            self.github_lines(job, problem) + self.fleet_lines(record)
        ):
            self.say(f"  {max(at, 0.0):5.1f}s  {source:<6} {status:<12} {detail}".rstrip())
        return record, job

    def follow(self, timeout: float) -> Outcome:
        deadline = time.monotonic() + timeout
        while True:
            record, job = self.look()
            outcome = settled(record, job)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                return Outcome(
                    False,
                    f"timed out after {timeout:.0f}s: GitHub shows the job "
                    f"{(job or {}).get('status', 'unknown')}, the fleet's record is "
                    f"{(record or {}).get('status', 'missing')}",
                )
            time.sleep(POLL_SECONDS)
