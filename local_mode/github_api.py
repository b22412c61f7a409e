"""A local stand-in for the GitHub REST API: what the control plane and the cleanup call.

    python -m local_mode.github_api --host 127.0.0.1 --port 8080

or, in tests, `GitHubAPI(...).start()` (serves in a thread; `.url`, `.stop()`).

It checks what GitHub checks on these endpoints: the `Authorization` header (a configured
PAT, or an installation token it issued; the App JWT is verified RS256 against the App's
public key with GitHub's iat/exp limits) and the request bodies (generate-jitconfig: name,
runner_group_id an integer of an existing group, 1-100 labels, 409 when the name is taken),
and answers with GitHub's shapes. Every request is recorded for assertions.

It assigns work as GitHub does: a JIT runner is not tied to a job. An online idle runner
takes the oldest queued job of its scope whose labels its own labels cover (case-insensitive),
and the stand-in sends the signed `workflow_job` `in_progress` and `completed` webhooks for the
job that runner actually ran (to LOCAL_GITHUB_WEBHOOK_URL with LOCAL_GITHUB_WEBHOOK_SECRET, or
to a `deliver` callable). A registered runner is `offline` until it connects, then `online`
and idle, `busy` while it runs a job; an ephemeral runner is removed after its job. A runner
that disconnects in the middle of its job is removed and its job fails (conclusion
`failure`), as GitHub fails a job whose runner it lost; an idle one goes `offline`. GitHub
refuses to delete a busy runner (422).

Repositories: those it was started with (`repos`; none given: any repository exists) and
those of seeded jobs. An installation sees every one (its repository selection is "all").

GitHub endpoints (also under a path prefix such as /api/v3, as GitHub Enterprise Server):
  POST   /repos/{owner}/{repo}/actions/runners/generate-jitconfig   (and /orgs/{org}/...)
  GET    /repos/{owner}/{repo}/actions/runners[?name=]              (and /orgs/{org}/...)
  GET|DELETE /repos/{owner}/{repo}/actions/runners/{id}             (and /orgs/{org}/...)
  POST   /app/installations/{id}/access_tokens
  GET    /repos/{owner}/{repo}/actions/runs[?status=queued]
  GET    /repos/{owner}/{repo}/actions/runs/{run_id}/jobs
  GET    /repos/{owner}/{repo}/actions/jobs/{job_id}
  GET    /installation/repositories        (an installation token only; 403 for a PAT)
  GET    /orgs/{org}/repos                  (a PAT or an installation token; by full name)
Local control (no auth), what a runner process does and what tests arrange:
  POST /_local/runners/connect  {"runner_name", "encoded_jit_config"}: a runner connects
  GET  /_local/runners/{id}/job[?wait=s]  the job GitHub gave it (200), none yet (204),
                                          or the runner was removed (404)
  POST /_local/runners/{id}/finish {"conclusion"}   its job ended; the runner goes away
  POST /_local/runners/{id}/disconnect              the runner process is gone
  POST /_local/limits           {"jit_per_second": 50, "jit_burst"?: 50}: GitHub's secondary
                                 rate limit on generate-jitconfig (null or 0: none)
  POST /_local/faults           {"path": regex, "status": 502, "count": 1, "method"?,
                                 "retry_after"?, "rate_limit_reset_in"?, "after"?: answer
                                 the fault after doing the work (a lost response)}
  GET  /_local/requests[?path=regex]   POST /_local/reset
  POST /_local/jobs             {"repository": "o/r", "id", "run_id", "labels", ...} or a list:
                                jobs GitHub shows (queued ones are assigned to runners)

JIT limit: a token bucket of `jit_burst` tokens (default: one second's worth, at least 1)
refilled at `jit_per_second` (GitHubState/GitHubAPI kwargs `jit_limit_per_second`,
`jit_limit_burst`; CLI `--jit-limit-per-second`, `--jit-limit-burst`; POST /_local/limits).
Each generate-jitconfig takes a token after authentication; without one, the answer is
GitHub's: 403 "You have exceeded a secondary rate limit..." with `Retry-After` (whole
seconds until a token is back, at least 1). A refused request takes no token. Off by default.

The encoded JIT config is base64 JSON with base64 JSON members (".runner" holds AgentId,
AgentName, PoolId, ServerUrl...), like GitHub's, so local_mode/runner_sim.decode_jit_config
reads it; ".credentials" holds a random secret, as the real one does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import logging
import math
import os
import queue
import re
import secrets
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from local_mode import send_job

LOG = logging.getLogger("local_mode.github_api")
DEFAULT_PAT = "ghp_localmodedummytoken000000000000000000"  # local_mode/terraform/variables.tf
DOCS = "https://docs.github.com/rest"
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
JWT_MAX_LIFETIME = 600  # GitHub: exp no more than 10 minutes into the future
CLOCK_SKEW = 30
PRIMARY_RATE_LIMIT = 5000  # requests an hour of a PAT (an App installation gets 5,000 or more)
SENDERS = 16  # webhook sender threads; a job's events always go through the same one
LOST_RUNNER_CONCLUSION = "failure"  # GitHub fails a job whose runner it lost

SCOPE = r"(?P<scope>repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)|orgs/(?P<org>[^/]+))"
REPO = r"repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


@dataclass
class Fault:
    id: int
    path: re.Pattern[str]
    status: int
    remaining: int
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    after: bool = False

    @classmethod
    def from_json(cls, fault_id: int, spec: dict[str, Any]) -> Fault:
        status = int(spec.get("status", 502))
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        if spec.get("retry_after") is not None:
            headers["retry-after"] = str(int(spec["retry_after"]))
        if spec.get("rate_limit_reset_in") is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(
                int(time.time() + float(spec["rate_limit_reset_in"]))
            )
        body = spec.get("body")
        if body is None:
            body = {
                "message": "API rate limit exceeded" if status in (403, 429) else "Server Error",
                "documentation_url": DOCS,
            }
        return cls(
            id=fault_id,
            path=re.compile(spec.get("path", ".*")),
            status=status,
            remaining=int(spec.get("count", 1)),
            method=(spec.get("method") or "").upper() or None,
            headers=headers,
            body=body,
            after=bool(spec.get("after", False)),
        )


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class TokenBucket:
    """GitHub's secondary rate limit on one endpoint: `per_second` tokens, at most `burst`."""

    per_second: float
    burst: float
    tokens: float = field(init=False)
    refilled: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst  # a quiet client starts with the whole allowance

    def take(self) -> float:
        """Takes a token; returns 0, or the seconds until one is back (none taken)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.per_second)
        self.refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class GitHubState:
    """Everything the stand-in knows; every method is called with the lock held."""

    def __init__(
        self,
        *,
        pats: Iterable[str] = (DEFAULT_PAT,),
        apps: dict[str, str] | None = None,
        installations: dict[str, str] | None = None,
        token_lifetime: float = 3600.0,
        repos: Iterable[str] | None = None,
        runner_groups: Iterable[int] = (1,),
        public_url: str = "http://127.0.0.1",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        deliver: Callable[[dict[str, Any]], None] | None = None,
        jit_limit_per_second: float | None = None,
        jit_limit_burst: float | None = None,
    ) -> None:
        self.pats = set(pats)
        self.apps = dict(apps or {})  # app id → PEM public key
        self.installations = dict(installations or {})  # installation id → app id
        self.token_lifetime = token_lifetime
        self.repos = {r.lower() for r in repos} if repos else None
        self.repo_names = {r.lower(): r for r in repos or ()}  # as GitHub spells them
        self.runner_groups = set(runner_groups)
        self.public_url = public_url
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret or ""
        self.deliver = deliver
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # a runner got a job or went away
        self.outboxes: list[queue.Queue[dict[str, Any] | None]] = [
            queue.Queue() for _ in range(SENDERS)
        ]
        self.set_jit_limit(jit_limit_per_second, jit_limit_burst)
        self.reset()

    def set_jit_limit(self, per_second: float | None, burst: float | None = None) -> None:
        """Limits generate-jitconfig to `per_second` (None or 0: no limit), a full bucket."""
        if per_second is not None and (per_second < 0 or (burst is not None and burst < 1)):
            raise ApiError(422, "jit_per_second must be >= 0 and jit_burst >= 1")
        self.jit_limit = (
            TokenBucket(float(per_second), float(burst or max(1.0, per_second)))
            if per_second
            else None
        )

    def take_jit_token(self) -> None:
        if self.jit_limit is None:
            return
        wait = self.jit_limit.take()
        if wait:
            retry_after = str(max(1, math.ceil(wait)))
            raise ApiError(403, SECONDARY_LIMIT_MESSAGE, {"retry-after": retry_after})

    def reset(self) -> None:
        self.runners: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.tokens: dict[str, tuple[float, str]] = {}  # token → (expires, installation)
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.next_fault = 1
        self.jobs: dict[int, dict[str, Any]] = {}
        self.jwt_ids: list[str] = []
        self.sequence = 0  # connection and queueing order
        self.assignments: list[tuple[int, str]] = []  # (job id, runner name), as GitHub gave
        self.archived: set[str] = set()  # repositories (lowercase) listed as archived
        self.rate_window = (0.0, 0)  # primary rate limit: (window end, requests in it)

    # ---------------------------------------------------------------- auth

    def check_token(self, authorization: str) -> str | None:
        """Checks the token; returns its installation id (None: a PAT)."""
        scheme, _, token = authorization.partition(" ")
        if not token or scheme.lower() not in ("bearer", "token"):
            raise ApiError(401, "Requires authentication")
        token = token.strip()
        if any(hmac.compare_digest(token, pat) for pat in self.pats):
            return None
        issued = self.tokens.get(token)
        if issued and issued[0] > time.time():
            return issued[1]
        raise ApiError(401, "Bad credentials")

    def check_app_jwt(self, authorization: str, installation_id: str) -> str:
        """Verifies the App JWT as GitHub does; returns the app id."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        app_id = str(unverified.get("iss", ""))
        key = self.apps.get(app_id)
        if header.get("alg") != "RS256" or key is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise ApiError(401, "'Expiration time' claim ('exp') must be in the future") from exc
        except jwt.PyJWTError as exc:
            raise ApiError(401, f"A JSON web token could not be verified: {exc}") from exc
        now = time.time()
        if claims["iat"] > now + CLOCK_SKEW:
            raise ApiError(
                401, "'Issued at' claim ('iat') must be an Integer representing a time in the past"
            )
        if claims["exp"] > now + JWT_MAX_LIFETIME + CLOCK_SKEW:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        owner = self.installations.get(installation_id)
        if self.installations and owner != app_id:
            raise ApiError(404, "Not Found")
        self.jwt_ids.append(str(claims.get("jti", "")))
        return app_id

    def issue_token(self, installation_id: str) -> dict[str, Any]:
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = time.time() + self.token_lifetime
        self.tokens[token] = (expires, installation_id)
        return {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": {"administration": "write", "organization_self_hosted_runners": "write"},
            "repository_selection": "all",
        }

    # ---------------------------------------------------------------- runners

    def known_repos(self) -> dict[str, str]:
        """Repositories that exist: lowercase full name → as GitHub spells it."""
        seeded = {job["_repository"]: job["_full_name"] for job in self.jobs.values()}
        return seeded | self.repo_names

    def scope_key(self, match: re.Match[str]) -> str:
        org = match.groupdict().get("org")
        if org:
            owners = {repo.split("/")[0] for repo in self.known_repos()}
            if self.repos is not None and org.lower() not in owners:
                raise ApiError(404, "Not Found")
            return f"orgs/{org}".lower()
        repo = f"{match.group('owner')}/{match.group('repo')}".lower()
        if self.repos is not None and repo not in self.known_repos():
            raise ApiError(404, "Not Found")
        return f"repos/{repo}"

    def repositories(self, owner: str | None, page: int, per_page: int) -> list[dict[str, Any]]:
        """A page of the known repositories (of `owner`, if given), by full name."""
        known = self.known_repos().items()
        names = sorted(
            (name for key, name in known if owner is None or key.split("/")[0] == owner),
            key=str.lower,
        )
        return [
            {
                "id": zlib.crc32(name.lower().encode()),
                "name": name.split("/", 1)[1],
                "full_name": name,
                "owner": {"login": name.split("/", 1)[0]},
                "private": True,
                "archived": name.lower() in self.archived,
                "disabled": False,
            }
            for name in names[(page - 1) * per_page : page * per_page]
        ]

    @staticmethod
    def public(runner: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in runner.items() if not k.startswith("_")}

    def generate_jit(self, scope: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        name, group, labels = body.get("name"), body.get("runner_group_id"), body.get("labels")
        problems = []
        if not isinstance(name, str) or not name.strip():
            problems.append('"name" is required and must be a non-empty string')
        if isinstance(group, bool) or not isinstance(group, int):
            problems.append('"runner_group_id" is required and must be an integer')
        if (
            not isinstance(labels, list)
            or not 1 <= len(labels) <= 100
            or not all(isinstance(label, str) and label.strip() for label in labels)
        ):
            problems.append('"labels" must be an array of 1 to 100 non-empty strings')
        if "work_folder" in body and not isinstance(body["work_folder"], str):
            problems.append('"work_folder" must be a string')
        if problems:
            raise ApiError(422, "Invalid request.\n\n" + "\n".join(problems))
        if group not in self.runner_groups:
            raise ApiError(404, "Not Found")
        for runner in self.runners.values():
            if runner["_scope"] == scope and runner["name"].lower() == name.lower():
                raise ApiError(
                    409, f"Already exists - A runner with the name {name} already exists."
                )
        runner_id = self.next_id
        self.next_id += 1
        runner = {
            "id": runner_id,
            "name": name,
            "os": "Linux",
            "status": "offline",
            "busy": False,
            "ephemeral": True,
            "runner_group_id": group,
            "labels": [
                {
                    "id": index + 1,
                    "name": label,
                    "type": "read-only" if label.lower() == "self-hosted" else "custom",
                }
                for index, label in enumerate(labels)
            ],
            "_scope": scope,
            "_connected": False,
        }
        encoded = _b64json(
            {
                ".runner": _b64json(
                    {
                        "AgentId": str(runner_id),
                        "AgentName": name,
                        "PoolId": str(group),
                        "PoolName": "Default",
                        "ServerUrl": f"{self.public_url}/_local/pipelines/{runner_id}",
                        "GitHubUrl": f"https://github.com/{scope.split('/', 1)[1]}",
                        "WorkFolder": body.get("work_folder", "_work"),
                        "Ephemeral": "true",
                    }
                ),
                ".credentials": _b64json(
                    {"Scheme": "OAuthAccessToken", "Data": {"token": secrets.token_urlsafe(32)}}
                ),
                ".credentials_rsaparams": _b64json({"d": secrets.token_urlsafe(48)}),
            }
        )
        runner["_jit"] = encoded
        self.runners[runner_id] = runner
        return {"runner": self.public(runner), "encoded_jit_config": encoded}

    def list_runners(self, scope: str, name: str | None, page: int, per_page: int) -> dict:
        runners = [
            self.public(r)
            for r in sorted(self.runners.values(), key=lambda r: r["id"])
            if r["_scope"] == scope and (not name or r["name"].lower() == name.lower())
        ]
        chunk = runners[(page - 1) * per_page : page * per_page]
        return {"total_count": len(runners), "runners": chunk}

    def runner(self, scope: str, runner_id: int) -> dict[str, Any]:
        runner = self.runners.get(runner_id)
        if runner is None or runner["_scope"] != scope:
            raise ApiError(404, "Not Found")
        return runner

    def delete_runner(self, scope: str, runner_id: int) -> None:
        runner = self.runner(scope, runner_id)
        if runner["busy"]:
            raise ApiError(422, f"Bad request - Runner {runner['name']} is still running a job")
        del self.runners[runner_id]
        self.changed.notify_all()  # a runner process waiting for a job learns it is removed

    def connect(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        name, encoded = body.get("runner_name"), body.get("encoded_jit_config") or ""
        for runner in self.runners.values():
            if runner["name"] == name and hmac.compare_digest(runner["_jit"], str(encoded)):
                if runner["_connected"]:
                    raise ApiError(409, "this JIT config was used already")
                runner.update(_connected=True, status="online", busy=False, _seq=self._next())
                self.assign()
                return {"runner": self.public(runner)}
        raise ApiError(404, "no runner with that name and JIT config")

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    @staticmethod
    def _covers(runner: dict[str, Any], job: dict[str, Any]) -> bool:
        names = {label["name"].lower() for label in runner["labels"]}
        return all(label.lower() in names for label in job["labels"])

    def _in_scope(self, runner: dict[str, Any], job: dict[str, Any]) -> bool:
        kind, _, name = runner["_scope"].partition("/")
        repository = job["_repository"]
        return repository == name if kind == "repos" else repository.split("/")[0] == name

    def assign(self) -> None:
        """GitHub's matching: each idle online runner, longest idle first, takes the oldest
        queued job of its scope whose labels its labels cover."""
        idle = sorted(
            (r for r in self.runners.values() if r["status"] == "online" and not r["busy"]),
            key=lambda r: r["_seq"],
        )
        queued = sorted(
            (j for j in self.jobs.values() if j["status"] == "queued"),
            key=lambda j: (j["created_at"], j["_seq"]),
        )
        for runner in idle:
            job = next(
                (j for j in queued if self._in_scope(runner, j) and self._covers(runner, j)),
                None,
            )
            if job is None:
                continue
            queued.remove(job)
            job.update(
                status="in_progress",
                runner_id=runner["id"],
                runner_name=runner["name"],
                runner_group_id=runner["runner_group_id"],
                started_at=_iso(time.time()),
            )
            runner.update(busy=True, _job=job["id"])
            self.assignments.append((job["id"], runner["name"]))
            self.emit("in_progress", job)
        self.changed.notify_all()

    def job_of(self, runner_id: int, wait: float = 0.0) -> dict[str, Any] | None:
        """The job GitHub gave the runner, waiting up to `wait` s for one; 404 once the runner
        was removed (deregistered, or its job ended)."""
        deadline = time.monotonic() + max(0.0, min(wait, 30.0))
        while True:
            runner = self.runners.get(runner_id)
            if runner is None:
                raise ApiError(404, "Not Found")
            if runner.get("_job") is not None:
                return self.public(self.jobs[runner["_job"]])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.changed.wait(remaining)

    def finish(self, runner_id: int, body: Any) -> dict[str, Any]:
        """The runner's job ended with `conclusion`; the ephemeral runner is removed."""
        runner = self.runners.get(runner_id)
        if runner is None or runner.get("_job") is None:
            raise ApiError(404, "Not Found")
        conclusion = (body or {}).get("conclusion") or "success"
        job = self._end(runner, conclusion)
        return {"job": self.public(job)}

    def disconnect(self, runner_id: int) -> dict[str, Any]:
        """The runner process is gone: its job (if any) fails and the runner is removed; an
        idle runner goes offline (GitHub removes it later)."""
        runner = self.runners.get(runner_id)
        if runner is None:
            raise ApiError(404, "Not Found")
        if runner.get("_job") is not None:
            self._end(runner, LOST_RUNNER_CONCLUSION)
        else:
            runner.update(status="offline", busy=False)
            self.changed.notify_all()
        return {"runner_id": runner_id}

    def _end(self, runner: dict[str, Any], conclusion: str) -> dict[str, Any]:
        job = self.jobs[runner["_job"]]
        job.update(status="completed", conclusion=conclusion, completed_at=_iso(time.time()))
        del self.runners[runner["id"]]
        self.emit("completed", job)
        self.changed.notify_all()
        return job

    def emit(self, action: str, job: dict[str, Any]) -> None:
        """Queues the `workflow_job` webhook GitHub sends for `job` (if anyone listens)."""
        if not (self.deliver or self.webhook_url):
            return
        payload = send_job.workflow_job_payload(
            action,
            labels=job["labels"],
            job_id=job["id"],
            repository=job["_full_name"],
            run_id=job["run_id"],
            run_attempt=job["run_attempt"],
            runner_name=job.get("runner_name"),
            runner_id=job.get("runner_id"),
            conclusion=job.get("conclusion"),
            job_name=job["name"],
            workflow_name=job["workflow_name"],
            created_at=job["created_at"],
            started_at=job.get("started_at"),
            completed_at=job.get("completed_at"),
        )
        self.outboxes[job["id"] % SENDERS].put(payload)

    def send(self, payload: dict[str, Any]) -> None:
        """Delivers one webhook (GitHub does not retry a failed delivery by itself)."""
        if self.deliver is not None:
            self.deliver(payload)
            return
        delivery = send_job.build_delivery(str(self.webhook_url), payload, self.webhook_secret)
        delivery.send(timeout=60)
        job = payload["workflow_job"]
        LOG.info("webhook %s job %s → %s", payload["action"], job["id"], delivery.status)

    # ---------------------------------------------------------------- jobs

    def seed_jobs(self, body: Any) -> dict[str, Any]:
        entries = body if isinstance(body, list) else [body]
        seeded = []
        for entry in entries:
            if not isinstance(entry, dict) or "id" not in entry or "repository" not in entry:
                raise ApiError(422, 'each job needs "id" and "repository"')
            job = {
                "id": int(entry["id"]),
                "run_id": int(entry.get("run_id") or entry["id"]),
                "run_attempt": int(entry.get("run_attempt") or 1),
                "status": entry.get("status", "queued"),
                "conclusion": entry.get("conclusion"),
                "name": entry.get("name", "build"),
                "workflow_name": entry.get("workflow_name", "CI"),
                "labels": list(entry.get("labels") or []),
                "runner_name": entry.get("runner_name"),
                "created_at": entry.get("created_at") or _iso(time.time()),
                "_repository": str(entry["repository"]).lower(),
                "_full_name": str(entry["repository"]),
                "_seq": self._next(),
            }
            self.jobs[job["id"]] = job
            seeded.append(self.public(job))
        self.assign()
        return {"jobs": seeded}

    def rate_headers(self) -> dict[str, str]:
        """Counts one API request against the primary rate limit and returns the headers GitHub
        sends with every answer (a fault's own headers replace them). Reported, not enforced:
        a fault models an exhausted limit.
        https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api"""
        now = time.time()
        end, used = self.rate_window
        if now >= end:
            end, used = now + 3600, 0
        used += 1
        self.rate_window = (end, used)
        return {
            "x-ratelimit-limit": str(PRIMARY_RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, PRIMARY_RATE_LIMIT - used)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(int(end)),
            "x-ratelimit-resource": "core",
        }

    def runs(self, repo: str, status: str | None) -> dict[str, Any]:
        runs: dict[int, dict[str, Any]] = {}
        for job in self.jobs.values():
            if job["_repository"] != repo:
                continue
            run = runs.setdefault(
                job["run_id"],
                {
                    "id": job["run_id"],
                    "name": job["workflow_name"],
                    "run_attempt": job["run_attempt"],
                    "status": "completed",
                    "repository": {"full_name": repo},
                },
            )
            if job["status"] != "completed":
                run["status"] = "in_progress" if job["status"] == "in_progress" else "queued"
        found = [run for run in runs.values() if not status or run["status"] == status]
        return {"total_count": len(found), "workflow_runs": found}


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)

    # ---------------------------------------------------------------- plumbing

    def _send(self, response: Response) -> None:
        data = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _dispatch(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        path = split.path
        prefix = self.server.path_prefix
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :] or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = _UNPARSABLE
        record = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": dict(self.headers.items()),
            "body": None if body is _UNPARSABLE else body,
            "time": time.time(),
        }
        local = path.startswith("/_local/")
        with state.lock:
            fault = None if local else self._take_fault(state, path)
            if not local:
                state.requests.append(record)
                rate = state.rate_headers()
        if fault is not None and not fault.after:
            response = Response(fault.status, fault.body, fault.headers)
        else:
            response = self._handle(path, query, body)
            if fault is not None:
                response = Response(fault.status, fault.body, fault.headers)
        record["status"] = response.status
        if not local:
            response = Response(response.status, response.body, {**rate, **response.headers})
        self._send(response)

    def _take_fault(self, state: GitHubState, path: str) -> Fault | None:
        for fault in state.faults:
            if (
                fault.remaining > 0
                and fault.path.search(path)
                and (fault.method is None or fault.method == self.command)
            ):
                fault.remaining -= 1
                return fault
        return None

    def _handle(self, path: str, query: dict[str, str], body: Any) -> Response:
        for method, pattern, name in ROUTES:
            match = pattern.match(path)
            if match and method == self.command:
                try:
                    with self.server.state.lock:
                        if body is _UNPARSABLE:
                            raise ApiError(400, "Problems parsing JSON")
                        return getattr(self, name)(match, query, body)
                except ApiError as exc:
                    body = {"message": exc.message, "documentation_url": DOCS}
                    return Response(exc.status, body, exc.headers)
                except Exception:  # a bug of the stand-in: answer 500, with the trace in its log
                    LOG.exception("%s %s failed", self.command, path)
                    return Response(500, {"message": "stand-in error", "documentation_url": DOCS})
        return Response(404, {"message": "Not Found", "documentation_url": DOCS})

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _auth(self) -> str | None:
        """The request's installation id (None: a PAT), once its token is checked."""
        return self.server.state.check_token(self.headers.get("Authorization", ""))

    @staticmethod
    def _page(query: dict[str, str]) -> tuple[int, int]:
        """`page` and `per_page` as GitHub reads them (30 a page unless asked, at most 100)."""
        page = max(1, int(query.get("page") or 1))
        return page, min(100, max(1, int(query.get("per_page") or 30)))

    # ---------------------------------------------------------------- GitHub

    def root(self, match: re.Match[str], query: dict, body: Any) -> Response:
        return Response(200, {"current_user_url": f"{self.server.url}/user", "stand_in": True})

    def access_tokens(self, match: re.Match[str], query: dict, body: Any) -> Response:
        state = self.server.state
        installation = match.group("id")
        state.check_app_jwt(self.headers.get("Authorization", ""), installation)
        return Response(201, state.issue_token(installation))

    def generate_jitconfig(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        state.take_jit_token()
        return Response(201, state.generate_jit(state.scope_key(match), body))

    def list_runners(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        page, per_page = self._page(query)
        return Response(
            200, state.list_runners(state.scope_key(match), query.get("name"), page, per_page)
        )

    def get_runner(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        runner = state.runner(state.scope_key(match), int(match.group("id")))
        return Response(200, state.public(runner))

    def delete_runner(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        state.delete_runner(state.scope_key(match), int(match.group("id")))
        return Response(204)

    def list_runs(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        repo = state.scope_key(match).split("/", 1)[1]
        return Response(200, state.runs(repo, query.get("status")))

    def run_jobs(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        repo = state.scope_key(match).split("/", 1)[1]
        run_id = int(match.group("run_id"))
        jobs = [
            state.public(job)
            for job in state.jobs.values()
            if job["_repository"] == repo and job["run_id"] == run_id
        ]
        return Response(200, {"total_count": len(jobs), "jobs": jobs})

    def get_job(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        repo = state.scope_key(match).split("/", 1)[1]
        job = state.jobs.get(int(match.group("job_id")))
        if job is None or job["_repository"] != repo:
            raise ApiError(404, "Not Found")
        return Response(200, state.public(job))

    def installation_repositories(self, match: re.Match[str], query: dict, body: Any) -> Response:
        if self._auth() is None:
            raise ApiError(
                403,
                "You must authenticate with an installation access token in order to list "
                "repositories for an installation.",
            )
        state = self.server.state
        page, per_page = self._page(query)
        return Response(
            200,
            {
                "total_count": len(state.known_repos()),
                "repository_selection": "all",
                "repositories": state.repositories(None, page, per_page),
            },
        )

    def org_repos(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self._auth()
        state = self.server.state
        org = state.scope_key(match).split("/", 1)[1]
        page, per_page = self._page(query)
        return Response(200, state.repositories(org, page, per_page))

    # ---------------------------------------------------------------- local control

    def local_connect(self, match: re.Match[str], query: dict, body: Any) -> Response:
        return Response(200, self.server.state.connect(body))

    def local_runner_job(self, match: re.Match[str], query: dict, body: Any) -> Response:
        wait = float(query.get("wait") or 0)
        job = self.server.state.job_of(int(match.group("id")), wait)
        return Response(200, {"job": job}) if job else Response(204)

    def local_runner_finish(self, match: re.Match[str], query: dict, body: Any) -> Response:
        return Response(200, self.server.state.finish(int(match.group("id")), body))

    def local_runner_disconnect(self, match: re.Match[str], query: dict, body: Any) -> Response:
        return Response(200, self.server.state.disconnect(int(match.group("id"))))

    def local_faults(self, match: re.Match[str], query: dict, body: Any) -> Response:
        state = self.server.state
        specs = body if isinstance(body, list) else [body or {}]
        added = []
        for spec in specs:
            try:
                fault = Fault.from_json(state.next_fault, spec)
            except (TypeError, ValueError, re.error) as exc:
                raise ApiError(422, f"bad fault: {exc}") from exc
            state.next_fault += 1
            state.faults.append(fault)
            added.append(fault.id)
        return Response(201, {"faults": added})

    def local_limits(self, match: re.Match[str], query: dict, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        try:
            per_second = float(body.get("jit_per_second") or 0)
            burst = float(body["jit_burst"]) if body.get("jit_burst") is not None else None
        except (TypeError, ValueError) as exc:
            raise ApiError(422, f"bad limits: {exc}") from exc
        state = self.server.state
        state.set_jit_limit(per_second, burst)
        bucket = state.jit_limit
        limits = {"jit_per_second": bucket.per_second, "jit_burst": bucket.burst} if bucket else {}
        return Response(200, {"limits": limits})

    def local_requests(self, match: re.Match[str], query: dict, body: Any) -> Response:
        pattern = re.compile(query.get("path") or ".*")
        found = [r for r in self.server.state.requests if pattern.search(r["path"])]
        return Response(200, {"requests": found})

    def local_reset(self, match: re.Match[str], query: dict, body: Any) -> Response:
        self.server.state.reset()
        return Response(200, {"reset": True})

    def local_jobs(self, match: re.Match[str], query: dict, body: Any) -> Response:
        return Response(201, self.server.state.seed_jobs(body))


_UNPARSABLE = object()
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), n)
    for m, p, n in [
        ("GET", r"^/$", "root"),
        ("POST", r"^/app/installations/(?P<id>\d+)/access_tokens$", "access_tokens"),
        ("POST", rf"^/{SCOPE}/actions/runners/generate-jitconfig$", "generate_jitconfig"),
        ("GET", rf"^/{SCOPE}/actions/runners$", "list_runners"),
        ("GET", rf"^/{SCOPE}/actions/runners/(?P<id>\d+)$", "get_runner"),
        ("DELETE", rf"^/{SCOPE}/actions/runners/(?P<id>\d+)$", "delete_runner"),
        ("GET", rf"^/(?P<scope>{REPO})/actions/runs$", "list_runs"),
        ("GET", rf"^/(?P<scope>{REPO})/actions/runs/(?P<run_id>\d+)/jobs$", "run_jobs"),
        ("GET", rf"^/(?P<scope>{REPO})/actions/jobs/(?P<job_id>\d+)$", "get_job"),
        ("GET", r"^/installation/repositories$", "installation_repositories"),
        ("GET", r"^/orgs/(?P<org>[^/]+)/repos$", "org_repos"),
        ("POST", r"^/_local/runners/connect$", "local_connect"),
        ("GET", r"^/_local/runners/(?P<id>\d+)/job$", "local_runner_job"),
        ("POST", r"^/_local/runners/(?P<id>\d+)/finish$", "local_runner_finish"),
        ("POST", r"^/_local/runners/(?P<id>\d+)/disconnect$", "local_runner_disconnect"),
        ("POST", r"^/_local/faults$", "local_faults"),
        ("POST", r"^/_local/limits$", "local_limits"),
        ("GET", r"^/_local/requests$", "local_requests"),
        ("POST", r"^/_local/reset$", "local_reset"),
        ("POST", r"^/_local/jobs$", "local_jobs"),
    ]
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: GitHubState
    path_prefix: str
    url: str


class GitHubAPI:
    """The stand-in as an object: `start()` serves it in a thread (tests); `serve()` blocks."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, path_prefix: str = "", **state: Any
    ) -> None:
        self.server = _Server((host, port), Handler)
        bound_host, bound_port = self.server.server_address[:2]
        self.path_prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self.base_url = f"http://{bound_host}:{bound_port}"
        self.state = GitHubState(public_url=self.base_url, **state)
        self.server.state = self.state
        self.server.path_prefix = self.path_prefix
        self.server.url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API URL to configure (GITHUB_API_URL), with the path prefix if any."""
        return self.base_url + self.path_prefix

    def start(self) -> GitHubAPI:
        self._start_senders()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def serve(self) -> None:
        self._start_senders()
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for outbox in self.state.outboxes:
            outbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start_senders(self) -> None:
        for outbox in self.state.outboxes:
            threading.Thread(target=self._send_from, args=(outbox,), daemon=True).start()

    def _send_from(self, outbox: queue.Queue) -> None:
        while (payload := outbox.get()) is not None:
            try:
                self.state.send(payload)
            except Exception:  # GitHub does not redeliver a failed delivery by itself
                LOG.exception("webhook delivery failed")
            finally:
                outbox.task_done()

    def __enter__(self) -> GitHubAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- for tests

    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        pattern = re.compile(path or ".*")
        with self.state.lock:
            return [
                dict(r)
                for r in self.state.requests
                if pattern.search(r["path"]) and (method is None or r["method"] == method)
            ]

    def add_fault(self, path: str, status: int = 502, count: int = 1, **spec: Any) -> None:
        with self.state.lock:
            fault = Fault.from_json(
                self.state.next_fault, {"path": path, "status": status, "count": count, **spec}
            )
            self.state.next_fault += 1
            self.state.faults.append(fault)

    def set_jit_limit(self, per_second: float | None, burst: float | None = None) -> None:
        with self.state.lock:
            self.state.set_jit_limit(per_second, burst)

    def runners(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(r) for r in self.state.runners.values()]

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        """Runs a GitHubState method under the lock (e.g. seed_jobs, connect)."""
        with self.state.lock:
            return method(*args)


def _read_key(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local GitHub REST API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--pat",
        action="append",
        help="accepted personal access token (repeatable; default: LOCAL_GITHUB_PATS, "
        "comma-separated, or the local mode dummy token)",
    )
    parser.add_argument("--app-id", help="GitHub App id whose JWTs are accepted")
    parser.add_argument("--app-public-key", help="PEM file: that App's public key")
    parser.add_argument("--installation-id", action="append", default=[])
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    parser.add_argument("--path-prefix", default="", help="e.g. /api/v3 (GitHub Enterprise)")
    parser.add_argument(
        "--repo",
        action="append",
        help="owner/repo that exists (repeatable; default: LOCAL_GITHUB_REPO, else any)",
    )
    parser.add_argument(
        "--jit-limit-per-second",
        type=float,
        help="GitHub's secondary rate limit on generate-jitconfig (default: none)",
    )
    parser.add_argument("--jit-limit-burst", type=float, help="its bucket (default: 1 s worth)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    pats = args.pat or [
        p.strip() for p in os.environ.get("LOCAL_GITHUB_PATS", DEFAULT_PAT).split(",") if p.strip()
    ]
    repos = args.repo or (
        [os.environ["LOCAL_GITHUB_REPO"]] if os.environ.get("LOCAL_GITHUB_REPO") else None
    )
    apps: dict[str, str] = {}
    if args.app_id and args.app_public_key:
        apps[str(args.app_id)] = _read_key(args.app_public_key) or ""
    installations = {str(i): str(args.app_id) for i in args.installation_id if args.app_id}
    api = GitHubAPI(
        args.host,
        args.port,
        webhook_url=os.environ.get("LOCAL_GITHUB_WEBHOOK_URL") or None,
        webhook_secret=os.environ.get("LOCAL_GITHUB_WEBHOOK_SECRET") or None,
        path_prefix=args.path_prefix,
        pats=pats,
        apps=apps,
        installations=installations,
        token_lifetime=args.token_lifetime,
        repos=repos,
        jit_limit_per_second=args.jit_limit_per_second,
        jit_limit_burst=args.jit_limit_burst,
    )
    LOG.info("GitHub API stand-in on %s (repos: %s)", api.url, ", ".join(repos or ["any"]))
    with contextlib.suppress(KeyboardInterrupt):
        api.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
