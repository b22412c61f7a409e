"""Signed `workflow_job` webhooks, as GitHub sends them, for the local stack.

The payloads start from GitHub's official examples (shared/fixtures/github, from
octokit/webhooks) and get the labels, a unique job id and the stack's repository.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from control_plane import signature

REPO_ROOT = Path(__file__).resolve().parent.parent
USER_AGENT = "GitHub-Hookshot/local-mode"


def fixtures_dir() -> Path:
    candidates = [
        Path(os.environ["GITHUB_FIXTURES"]) if os.environ.get("GITHUB_FIXTURES") else None,
        REPO_ROOT.parent / "shared" / "fixtures" / "github",
        REPO_ROOT / "tests" / "fixtures" / "github",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "webhooks").is_dir():
            return candidate
    raise FileNotFoundError("GitHub webhook fixtures not found: set GITHUB_FIXTURES")


# Used only when a checkout has no copy of GitHub's example payloads: their essentials.
MINIMAL_WORKFLOW_JOB = {
    "action": "queued",
    "workflow_job": {
        "id": 0,
        "run_id": 0,
        "run_attempt": 1,
        "node_id": "",
        "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
        "head_branch": "main",
        "status": "queued",
        "conclusion": None,
        "name": "build",
        "steps": [],
        "labels": [],
        "runner_id": None,
        "runner_name": None,
        "runner_group_id": None,
        "runner_group_name": None,
        "workflow_name": "CI",
    },
    "repository": {
        "id": 186853002,
        "name": "Hello-World",
        "full_name": "Codertocat/Hello-World",
        "private": False,
        "owner": {"login": "Codertocat", "id": 21031067, "type": "User"},
    },
    "sender": {"login": "Codertocat", "id": 21031067, "type": "User"},
}


def load_fixture(name: str) -> dict:
    """e.g. load_fixture("workflow_job/queued") → a fresh dict."""
    try:
        path = fixtures_dir() / "webhooks" / f"{name}.payload.json"
    except FileNotFoundError:
        if name.startswith("workflow_job/"):
            return copy.deepcopy(MINIMAL_WORKFLOW_JOB)
        raise
    return json.loads(path.read_text())


def parse_labels(labels: str | Iterable[str]) -> list[str]:
    if isinstance(labels, str):
        labels = labels.split(",")
    return [label.strip() for label in labels if label.strip()]


_last_job_id = 0
_job_id_lock = threading.Lock()


def new_job_id() -> int:
    """A unique (per process, increasing) job id of GitHub's size: 10 µs clock ticks."""
    global _last_job_id
    with _job_id_lock:
        candidate = 10**9 + (time.time_ns() // 10_000) % (9 * 10**9)
        _last_job_id = max(candidate, _last_job_id + 1)
        return _last_job_id


def sign(body: bytes, secret: str) -> str:
    return signature.sign(secret, body)


def set_repository(payload: dict, repository: str) -> None:
    """Points the payload's repository (and its URLs) at owner/repo."""
    owner, _, name = repository.partition("/")
    repo = payload.setdefault("repository", {})
    old = repo.get("full_name", "")
    repo["full_name"] = repository
    repo["name"] = name
    repo.setdefault("owner", {})["login"] = owner
    if old and old != repository:
        for key, value in list(repo.items()):
            if isinstance(value, str) and old in value:
                repo[key] = value.replace(old, repository)


def workflow_job_payload(
    action: str,
    *,
    labels: Iterable[str],
    job_id: int,
    repository: str,
    run_id: int | None = None,
    run_attempt: int = 1,
    runner_name: str | None = None,
    runner_id: int | None = None,
    conclusion: str | None = None,
    job_name: str = "build",
    workflow_name: str = "CI",
    created_at: str | None = None,
    started_at: str | None = None,
    completed_at: str | None = None,
) -> dict:
    """A `workflow_job` payload for action queued / in_progress / completed.

    Timestamps as GitHub sets them: `created_at` when the job was queued; `started_at` equal
    to it while queued, then the time a runner took the job (in_progress and completed);
    `completed_at` on completed. Each defaults to now (ISO 8601, seconds, UTC).
    """
    fixture = {
        "queued": "workflow_job/queued",
        "in_progress": "workflow_job/in_progress",
        "completed": "workflow_job/completed.success.with-organization",
    }[action]
    payload = copy.deepcopy(load_fixture(fixture))
    payload["action"] = action
    set_repository(payload, repository)
    job = payload["workflow_job"]
    run_id = run_id or job_id // 10
    base = f"https://api.github.com/repos/{repository}/actions"
    job.update(
        {
            "id": job_id,
            "run_id": run_id,
            "run_attempt": run_attempt,
            "run_url": f"{base}/runs/{run_id}",
            "url": f"{base}/jobs/{job_id}",
            "html_url": f"https://github.com/{repository}/actions/runs/{run_id}/job/{job_id}",
            "check_run_url": f"https://api.github.com/repos/{repository}/check-runs/{job_id}",
            "labels": list(labels),
            "name": job_name,
            "workflow_name": workflow_name,
        }
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    job["created_at"] = created_at or now
    if action == "queued":
        job.update(
            {
                "status": "queued",
                "conclusion": None,
                "started_at": job["created_at"],
                "completed_at": None,
                "runner_id": None,
                "runner_name": None,
                "runner_group_id": None,
                "runner_group_name": None,
                "steps": [],
            }
        )
    else:
        job.update(
            {
                "status": action,
                "runner_id": runner_id,
                "runner_name": runner_name,
                "runner_group_id": 1,
                "runner_group_name": "Default",
            }
        )
        job["started_at"] = started_at or now
        if action == "in_progress":
            job.update({"conclusion": None, "completed_at": None})
        else:
            job.update({"conclusion": conclusion or "success", "completed_at": completed_at or now})
    return payload


@dataclass
class Delivery:
    """One webhook delivery: what was sent and what the endpoint answered."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int = 0
    response: Any = None
    job_id: int = 0
    labels: list[str] = field(default_factory=list)

    @property
    def delivery_id(self) -> str:
        return self.headers["X-GitHub-Delivery"]

    def send(self, timeout: float = 30.0) -> Delivery:
        """Sends (or re-sends: same delivery id and bytes, as GitHub's "Redeliver")."""
        response = requests.post(self.url, data=self.body, headers=self.headers, timeout=timeout)
        self.status = response.status_code
        try:
            self.response = response.json()
        except ValueError:
            self.response = response.text
        return self


def build_delivery(
    url: str,
    payload: dict,
    secret: str,
    *,
    event: str = "workflow_job",
    bad_signature: bool = False,
    delivery_id: str | None = None,
) -> Delivery:
    body = json.dumps(payload, separators=(",", ":")).encode()
    signature_256 = sign(body, "not-the-secret" if bad_signature else secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(payload.get("repository", {}).get("id", 0)),
        "X-Hub-Signature-256": signature_256,
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }
    job = payload.get("workflow_job", {})
    return Delivery(
        url=url,
        body=body,
        headers=headers,
        job_id=int(job.get("id") or 0),
        labels=list(job.get("labels") or []),
    )


def seed_job(github_api_url: str, job: dict, repository: str) -> None:
    """The job GitHub shows (the stand-in's /_local/jobs), from its webhook payload."""
    fields = ("id", "run_id", "run_attempt", "labels", "name", "workflow_name", "created_at")
    body = {"repository": repository, **{key: job[key] for key in fields}}
    response = requests.post(f"{github_api_url.rstrip('/')}/_local/jobs", json=body, timeout=10)
    response.raise_for_status()


def queued_job(
    stack: dict,
    labels: str | Iterable[str],
    *,
    job_id: int | None = None,
    bad_signature: bool = False,
) -> Delivery:
    """Queues a job at the stack's GitHub stand-in (where runners take it) and builds its
    signed `queued` webhook (call .send() to deliver it). A forged delivery has no job."""
    payload = workflow_job_payload(
        "queued",
        labels=parse_labels(labels),
        job_id=job_id or new_job_id(),
        repository=stack["github_repo"],
    )
    if stack.get("github_api_url") and not bad_signature:
        seed_job(stack["github_api_url"], payload["workflow_job"], stack["github_repo"])
    return build_delivery(
        stack["webhook_url"], payload, stack["webhook_secret"], bad_signature=bad_signature
    )


def send_job(
    stack: dict,
    labels: str | Iterable[str],
    *,
    job_id: int | None = None,
    bad_signature: bool = False,
) -> Delivery:
    return queued_job(stack, labels, job_id=job_id, bad_signature=bad_signature).send()
