"""GitHub REST API: just-in-time runner configs and runners, with a PAT or as a GitHub App.

- PAT: `Authorization: Bearer <token>` (classic `repo`/`admin:org` scope, or fine-grained
  "Administration: write" on the repository / "Self-hosted runners: write" on the org).
- GitHub App: an RS256 JWT (iat 60 s in the past for clock drift, exp 9 min ahead: GitHub
  refuses more than 10 min, and a random jti so two JWTs minted in the same second differ)
  buys an installation token, which lasts one hour and is cached until 5 min before expiry.
- GitHub Enterprise Server: GITHUB_API_URL `https://<host>/api/v3`; paths are the same.

Errors: 5xx, connection errors and rate limits (429, or 403 with Retry-After /
x-ratelimit-remaining: 0) are retried with bounded backoff honouring Retry-After and
x-ratelimit-reset, within the invocation's deadline (retry.py). Other 4xx fail at once.
JIT config requests are paced fleet-wide when the client has a pacer (pacing.py): every
attempt waits for its slot, and a rate-limited answer holds back every invocation.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from control_plane import log, retry

if TYPE_CHECKING:
    from control_plane.pacing import Pacer
    from control_plane.settings import Settings

API_VERSION = "2022-11-28"
USER_AGENT = "aws-runner-fleet-control-plane"
MAX_ATTEMPTS = 5
TOKEN_REFRESH_MARGIN = 300.0  # an installation token is renewed 5 min before it expires
JWT_BACKDATE = 60  # GitHub: iat 60 s in the past protects against clock drift
JWT_LIFETIME = 540  # GitHub: exp at most 10 min after now; 9 min leaves drift room
MAX_RATE_LIMIT_WAIT = 60.0  # a longer wait is never worth it inside one invocation
PER_PAGE = 100  # GitHub's largest page

_session = requests.Session()


class GitHubError(Exception):
    """GitHub answered with an error status (message is GitHub's, never a credential)."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{method} {path} → {status} {message}".strip())
        self.status = status
        self.message = message
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}

    @classmethod
    def from_response(cls, method: str, path: str, response: requests.Response) -> GitHubError:
        try:
            message = str(response.json().get("message", ""))
        except (ValueError, AttributeError):
            message = response.text[:200]
        kind = RunnerNameTaken if response.status_code == 409 else cls
        return kind(method, path, response.status_code, message[:300], dict(response.headers))


class RunnerNameTaken(GitHubError):
    """409 from generate-jitconfig: a runner with that name is already registered."""


class GitHubUnavailable(Exception):
    """No HTTP answer (connection refused, reset, timed out)."""


def rate_limit_delay(error: GitHubError, now: float) -> float | None:
    """Seconds to wait before retrying a rate-limited request, or None if it is not one."""
    headers = error.headers
    limited = error.status == 429 or (
        error.status == 403
        and (
            "retry-after" in headers
            or headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in error.message.lower()
        )
    )
    if not limited:
        return None
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            pass
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            pass
    # GitHub: a secondary rate limit without retry-after means "wait at least a minute"
    return MAX_RATE_LIMIT_WAIT


def retry_delay(error: Exception, attempt: int, now: float | None = None) -> float | None:
    """How long to wait before retrying after `error` (None: do not retry)."""
    if isinstance(error, GitHubUnavailable):
        return retry.backoff(attempt, base=0.5)
    if not isinstance(error, GitHubError):
        return None
    if error.status >= 500:
        return retry.backoff(attempt, base=0.5)
    limited = rate_limit_delay(error, time.time() if now is None else now)
    if limited is not None and limited <= MAX_RATE_LIMIT_WAIT:
        return limited
    return None


# --------------------------------------------------------------------------- authentication


class PatAuth:
    def __init__(self, load_token: Callable[[], str]) -> None:
        self._load_token = load_token

    def header(self, client: GitHubClient) -> str:
        return f"Bearer {self._load_token()}"

    def invalidate(self) -> bool:
        return False  # nothing to renew


def app_jwt(app_id: str, private_key: str, now: float | None = None) -> str:
    """The GitHub App's JWT (RS256), valid for 9 minutes, with a unique jti."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iat": issued - JWT_BACKDATE,
        "exp": issued + JWT_LIFETIME,
        "iss": str(app_id),
        "jti": uuid.uuid4().hex,
    }
    # Imported here: PyJWT loads cryptography (~0.1 s), which only GitHub App auth needs.
    import jwt

    return jwt.encode(claims, private_key, algorithm="RS256")


_installation_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_token_lock = threading.Lock()


class AppAuth:
    """Installation tokens of a GitHub App, cached per (API URL, app, installation)."""

    def __init__(self, app_id: str, installation_id: str, load_key: Callable[[], str]) -> None:
        self.app_id = str(app_id)
        self.installation_id = str(installation_id)
        self._load_key = load_key
        self._key: tuple[str, str, str] | None = None

    def header(self, client: GitHubClient) -> str:
        self._key = (client.api_url, self.app_id, self.installation_id)
        with _token_lock:  # one token request at a time; the others reuse its result
            cached = _installation_tokens.get(self._key)
            if cached and cached[1] - time.time() > TOKEN_REFRESH_MARGIN:
                return f"Bearer {cached[0]}"
            token, expires_at = self._new_token(client)
            _installation_tokens[self._key] = (token, expires_at)
        return f"Bearer {token}"

    def _new_token(self, client: GitHubClient) -> tuple[str, float]:
        path = f"/app/installations/{self.installation_id}/access_tokens"
        response = client.request(
            "POST", path, authorization=f"Bearer {app_jwt(self.app_id, self._load_key())}"
        )
        body = response.json()
        token = body["token"]
        log.register_secret(token)
        expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
        log.info(
            "GitHub App installation token issued",
            installation_id=self.installation_id,
            expires_at=body["expires_at"],
        )
        return token, expires_at

    def invalidate(self) -> bool:
        """Forgets the cached token (GitHub refused it); True if there was one."""
        with _token_lock:
            return self._key is not None and _installation_tokens.pop(self._key, None) is not None


# --------------------------------------------------------------------------- API


@dataclass(frozen=True)
class JitConfig:
    runner_id: int
    runner_name: str
    encoded: str  # the secret: goes to SSM only


class GitHubClient:
    def __init__(
        self,
        api_url: str,
        auth: PatAuth | AppAuth,
        *,
        scope: str,
        owner: str,
        repo: str = "",
        deadline: retry.Deadline | None = None,
        pacer: Pacer | None = None,
        on_rate_limit: Callable[[int], None] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = auth
        self.owner = owner
        self.base = f"/repos/{owner}/{repo}" if scope == "repo" else f"/orgs/{owner}"
        self.deadline = deadline or retry.Deadline(retry.DEFAULT_BUDGET_SECONDS)
        self.pacer = pacer  # paces JIT config creation (the Lambda's; the CLI creates none)
        # told X-RateLimit-Remaining of each response (the Lambda publishes it as a metric)
        self.on_rate_limit = on_rate_limit

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        secret: Callable[[str], str],
        deadline: retry.Deadline | None = None,
        pacer: Pacer | None = None,
        on_rate_limit: Callable[[int], None] | None = None,
    ) -> GitHubClient:
        """The client of the fleet's GitHub scope, authenticated as its settings say (PAT or
        App); `secret(name)` reads a SecureString (the Lambda's cache, or the CLI's SSM)."""
        s = settings
        if s.github_auth == "app":
            auth: PatAuth | AppAuth = AppAuth(
                s.github_app_id,
                s.github_app_installation_id,
                lambda: secret(s.github_app_key_param),
            )
        else:
            auth = PatAuth(lambda: secret(s.github_pat_param))
        return cls(
            s.github_api_url,
            auth,
            scope=s.github_scope,
            owner=s.github_owner,
            repo=s.github_repo,
            deadline=deadline,
            pacer=pacer,
            on_rate_limit=on_rate_limit,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        authorization: str | None = None,
        paced: bool = False,
    ) -> requests.Response:
        """One API call with bounded retries; raises GitHubError / GitHubUnavailable
        (pacing.NoSlotInTime when `paced` and the fleet's next slot comes too late)."""
        renewed = False
        pacer = self.pacer if paced else None

        def once() -> requests.Response:
            if pacer is not None:
                pacer.wait_turn(self.deadline)
            headers = {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Authorization": authorization or self.auth.header(self),
            }
            timeout = max(1.0, min(15.0, self.deadline.remaining() - retry.RESERVE_SECONDS))
            try:
                response = _session.request(
                    method,
                    self.api_url + path,
                    json=json_body,
                    params=params,
                    headers=headers,
                    timeout=(3.05, timeout),
                )
            except requests.RequestException as exc:
                raise GitHubUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
            remaining = response.headers.get("x-ratelimit-remaining", "")
            if self.on_rate_limit is not None and remaining.isdigit():
                self.on_rate_limit(int(remaining))
            if response.status_code >= 400:
                raise GitHubError.from_response(method, path, response)
            return response

        def delay_for(error: Exception, attempt: int) -> float | None:
            nonlocal renewed
            if (
                isinstance(error, GitHubError)
                and error.status == 401
                and authorization is None
                and not renewed
                and self.auth.invalidate()
            ):
                renewed = True  # the cached installation token was revoked: get a new one
                return 0.0
            if pacer is not None and isinstance(error, GitHubError):
                limited = rate_limit_delay(error, time.time())
                if limited is not None:  # the whole fleet waits; this caller's next slot too
                    pacer.hold_until(time.time() + limited)
                    return 0.0 if self.deadline.allows(limited) else None
            return retry_delay(error, attempt)

        return retry.with_retries(
            once, delay_for, self.deadline, max_attempts=MAX_ATTEMPTS, what=f"GitHub {method}"
        )

    def generate_jit_config(
        self, name: str, labels: list[str], runner_group_id: int, work_folder: str = "_work"
    ) -> JitConfig:
        """Registers a just-in-time runner; raises RunnerNameTaken if the name exists."""
        response = self.request(
            "POST",
            f"{self.base}/actions/runners/generate-jitconfig",
            json_body={
                "name": name,
                "runner_group_id": runner_group_id,
                "labels": labels,
                "work_folder": work_folder,
            },
            paced=True,
        )
        body = response.json()
        encoded = body["encoded_jit_config"]
        log.register_secret(encoded)
        return JitConfig(runner_id=int(body["runner"]["id"]), runner_name=name, encoded=encoded)

    def runners(self, name: str | None = None) -> Iterator[dict]:
        """The scope's self-hosted runners (all pages), optionally only those named `name`."""
        page = 1
        while True:
            params: dict[str, Any] = {"per_page": 100, "page": page}
            if name:
                params["name"] = name
            body = self.request("GET", f"{self.base}/actions/runners", params=params).json()
            runners = body.get("runners", [])
            yield from runners
            if len(runners) < 100:
                return
            page += 1

    def find_runner(self, name: str) -> dict | None:
        for runner in self.runners(name=name):
            if runner.get("name") == name:
                return runner
        return None

    def delete_runner(self, runner_id: int) -> bool:
        """Removes a runner; False if GitHub no longer knows it."""
        try:
            self.request("DELETE", f"{self.base}/actions/runners/{runner_id}")
        except GitHubError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ jobs (the cleanup)

    def get_job(self, repository: str, job_id: int) -> dict | None:
        """A workflow job (`status`: queued, in_progress, completed...); None if GitHub no
        longer knows it. `repository` is `owner/repo`."""
        try:
            return self.request("GET", f"/repos/{repository}/actions/jobs/{job_id}").json()
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    def _paged(
        self,
        path: str,
        key: str | None,
        params: dict[str, Any],
        max_pages: int,
        first_page: int = 1,
    ) -> Iterator[dict]:
        """The items under `key` (None: the body is the list) of a paged list, at most
        `max_pages` pages of 100 from page `first_page`."""
        for page in range(first_page, first_page + max_pages):
            body = self.request("GET", path, params={**params, "per_page": PER_PAGE, "page": page})
            data = body.json()
            items = (data if key is None else data.get(key)) or []
            yield from items
            if len(items) < PER_PAGE:
                return
            if key is not None and page * PER_PAGE >= int(data.get("total_count") or 0):
                return

    def workflow_runs(self, repository: str, status: str, max_pages: int = 1) -> Iterator[dict]:
        """The repository's workflow runs with `status` (e.g. queued), newest first."""
        yield from self._paged(
            f"/repos/{repository}/actions/runs", "workflow_runs", {"status": status}, max_pages
        )

    def run_jobs(self, repository: str, run_id: int, max_pages: int = 1) -> Iterator[dict]:
        """The jobs of a run's latest attempt."""
        path = f"/repos/{repository}/actions/runs/{run_id}/jobs"
        yield from self._paged(path, "jobs", {"filter": "latest"}, max_pages)

    def organization_repositories(self, page: int) -> list[dict]:
        """One page (100 repositories, GitHub's order; a shorter page is the last) of the
        repositories these credentials see in the organization: a GitHub App installation's
        (`GET /installation/repositories`), with a PAT the organization's (`GET
        /orgs/{org}/repos`, every type, by name)."""
        if isinstance(self.auth, AppAuth):
            path, key, params = "/installation/repositories", "repositories", {}
        else:
            path, key, params = (
                f"/orgs/{self.owner}/repos",
                None,
                {"type": "all", "sort": "full_name"},
            )
        return list(self._paged(path, key, params, max_pages=1, first_page=page))
