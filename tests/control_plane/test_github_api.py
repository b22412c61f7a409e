"""The GitHub REST API stand-in (local_mode/github_api.py) checks what GitHub checks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import jwt
import pytest
import requests

from local_mode.github_api import DEFAULT_PAT, GitHubAPI
from local_mode.moto_server import free_port
from local_mode.runner_sim import decode_jit_config
from tests.control_plane.harness import APP_ID, INSTALLATION_ID, PAT, REPO, AppKey

JIT = f"/repos/{REPO}/actions/runners/generate-jitconfig"
GOOD = {"name": "runner-1", "runner_group_id": 1, "labels": ["self-hosted", "class:small"]}


class Caller:
    def __init__(self, api: GitHubAPI) -> None:
        self.api = api

    def __call__(
        self, method: str, path: str, json=None, token: str | None = PAT, **kw
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return requests.request(
            method, self.api.url + path, json=json, headers=headers, timeout=10, **kw
        )


@pytest.fixture
def call(github: GitHubAPI) -> Caller:
    return Caller(github)


def test_generate_jitconfig_answers_like_github(call: Caller) -> None:
    response = call("POST", JIT, GOOD)
    assert response.status_code == 201
    body = response.json()
    runner = body["runner"]
    assert runner["name"] == "runner-1"
    assert runner["status"] == "offline" and runner["busy"] is False
    assert runner["runner_group_id"] == 1
    assert [label["name"] for label in runner["labels"]] == ["self-hosted", "class:small"]
    info = decode_jit_config(body["encoded_jit_config"])  # what the runner simulator reads
    assert info["AgentName"] == "runner-1"
    assert info["AgentId"] == str(runner["id"])
    assert not any(key.startswith("_") for key in runner)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**GOOD, "name": ""}, 422),
        ({k: v for k, v in GOOD.items() if k != "name"}, 422),
        ({**GOOD, "labels": []}, 422),
        ({**GOOD, "labels": [f"l{i}" for i in range(101)]}, 422),
        ({**GOOD, "labels": ["ok", ""]}, 422),
        ({**GOOD, "labels": "self-hosted"}, 422),
        ({**GOOD, "runner_group_id": "1"}, 422),
        ({**GOOD, "runner_group_id": True}, 422),
        ({**GOOD, "work_folder": 3}, 422),
        ({**GOOD, "runner_group_id": 99}, 404),
        ([GOOD], 400),
    ],
)
def test_generate_jitconfig_validates_the_body(call: Caller, body, status: int) -> None:
    assert call("POST", JIT, body).status_code == status
    assert call.api.runners() == []


def test_a_hundred_labels_are_fine(call: Caller) -> None:
    assert call("POST", JIT, {**GOOD, "labels": [f"l{i}" for i in range(100)]}).status_code == 201


def test_unparsable_json_is_400(call: Caller) -> None:
    response = call("POST", JIT, data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"] == "Problems parsing JSON"


def test_a_taken_name_is_409_in_the_same_scope_only(call: Caller) -> None:
    assert call("POST", JIT, GOOD).status_code == 201
    again = call("POST", JIT, {**GOOD, "name": "RUNNER-1"})
    assert again.status_code == 409
    assert "already exists" in again.json()["message"]
    org = "/orgs/Codertocat/actions/runners/generate-jitconfig"
    assert call("POST", org, GOOD).status_code == 201


@pytest.mark.parametrize(
    ("token", "message"), [(None, "Requires authentication"), ("ghp_nope", "Bad credentials")]
)
def test_authentication_is_required(call: Caller, token: str | None, message: str) -> None:
    response = call("POST", JIT, GOOD, token=token)
    assert response.status_code == 401
    assert response.json()["message"] == message


def test_the_token_scheme_is_accepted_too(call: Caller) -> None:
    response = call("POST", JIT, GOOD, token=None, headers={"Authorization": f"token {PAT}"})
    assert response.status_code == 201


def test_unknown_repositories_and_orgs_are_404(call: Caller) -> None:
    assert call("POST", "/repos/a/b/actions/runners/generate-jitconfig", GOOD).status_code == 404
    assert call("GET", "/orgs/nobody/actions/runners").status_code == 404


def test_list_get_delete_runners(call: Caller) -> None:
    runner_id = call("POST", JIT, GOOD).json()["runner"]["id"]
    base = f"/repos/{REPO}/actions/runners"
    listed = call("GET", base, params={"name": "runner-1"}).json()
    assert listed["total_count"] == 1 and listed["runners"][0]["id"] == runner_id
    assert call("GET", base, params={"name": "other"}).json()["total_count"] == 0
    assert call("GET", f"{base}/{runner_id}").json()["name"] == "runner-1"
    assert call("DELETE", f"{base}/{runner_id}").status_code == 204
    assert call("DELETE", f"{base}/{runner_id}").status_code == 404


def test_a_runner_connects_once_with_its_config(call: Caller) -> None:
    made = call("POST", JIT, GOOD).json()
    connect = {"runner_name": "runner-1", "encoded_jit_config": made["encoded_jit_config"]}
    response = call("POST", "/_local/runners/connect", connect, token=None)
    assert response.status_code == 200
    assert response.json()["runner"]["status"] == "online"
    assert response.json()["runner"]["busy"] is False  # idle: no queued job it can take
    assert call("POST", "/_local/runners/connect", connect, token=None).status_code == 409
    wrong = {"runner_name": "runner-1", "encoded_jit_config": "e30="}
    assert call("POST", "/_local/runners/connect", wrong, token=None).status_code == 404
    base = f"/repos/{REPO}/actions/runners"
    assert call("DELETE", f"{base}/{made['runner']['id']}").status_code == 204  # idle: removable


# --------------------------------------------------------------------------- GitHub's matching


class Jobs:
    """Jobs GitHub shows, and runners that connect and take them (over HTTP)."""

    def __init__(self, call: Caller) -> None:
        self.call = call
        self.created = 0

    def queue(self, job_id: int, *labels: str) -> None:
        self.created += 1
        body = {
            "repository": REPO,
            "id": job_id,
            "labels": list(labels),
            "created_at": f"2026-01-01T00:00:{self.created:02d}Z",
        }
        assert self.call("POST", "/_local/jobs", body, token=None).status_code == 201

    def runner(self, name: str, *labels: str) -> int:
        body = {"name": name, "runner_group_id": 1, "labels": list(labels)}
        made = self.call("POST", JIT, body).json()
        connect = {"runner_name": name, "encoded_jit_config": made["encoded_jit_config"]}
        assert self.call("POST", "/_local/runners/connect", connect, token=None).ok
        return made["runner"]["id"]

    def job_of(self, runner_id: int, wait: float = 0) -> int | None:
        response = self.call(
            "GET", f"/_local/runners/{runner_id}/job", token=None, params={"wait": wait}
        )
        assert response.status_code in (200, 204), response.text
        return response.json()["job"]["id"] if response.status_code == 200 else None

    def status(self, job_id: int) -> dict:
        return self.call("GET", f"/repos/{REPO}/actions/jobs/{job_id}").json()


@pytest.fixture
def jobs(call: Caller) -> Jobs:
    return Jobs(call)


def test_an_idle_runner_takes_the_oldest_queued_job_its_labels_cover(jobs: Jobs) -> None:
    jobs.queue(1, "self-hosted", "class:large")
    jobs.queue(2, "self-hosted")  # a subset of the large runner's labels
    jobs.queue(3, "self-hosted", "linux", "class:small")
    large = jobs.runner("fleet-1", "self-hosted", "class:large")
    assert jobs.job_of(large) == 1  # the oldest it covers
    second_large = jobs.runner("fleet-3", "SELF-HOSTED", "Class:Large")  # case-insensitive
    assert jobs.job_of(second_large) == 2  # not the job it was made for (3): not covered
    small = jobs.runner("fleet-2", "self-hosted", "class:small")
    assert jobs.job_of(small) is None  # job 3 also needs `linux`
    assert jobs.status(2)["runner_name"] == "fleet-3"
    assert jobs.status(2)["status"] == "in_progress"
    assert jobs.status(3)["status"] == "queued"


def test_a_waiting_runner_gets_a_job_queued_later(jobs: Jobs) -> None:
    runner = jobs.runner("fleet-9", "self-hosted", "linux")
    assert jobs.job_of(runner) is None
    jobs.queue(9, "self-hosted")
    assert jobs.job_of(runner, wait=5) == 9


def test_jobs_of_another_repository_are_not_given(jobs: Jobs, call: Caller) -> None:
    body = {"repository": "other/repo", "id": 7, "labels": ["self-hosted"]}
    assert call("POST", "/_local/jobs", body, token=None).status_code == 201
    assert jobs.job_of(jobs.runner("fleet-7", "self-hosted")) is None


def test_webhooks_name_the_runner_that_ran_the_job(github: GitHubAPI, jobs: Jobs, call) -> None:
    sent: list[dict] = []
    github.state.deliver = sent.append
    jobs.queue(1, "self-hosted")
    runner = jobs.runner("fleet-5", "self-hosted", "class:large")
    assert jobs.job_of(runner) == 1
    assert call("POST", f"/_local/runners/{runner}/finish", {"conclusion": "success"}).ok
    deadline = time.monotonic() + 5
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [
        (p["action"], p["workflow_job"]["id"], p["workflow_job"]["runner_name"]) for p in sent
    ] == [
        ("in_progress", 1, "fleet-5"),
        ("completed", 1, "fleet-5"),
    ]
    assert sent[1]["workflow_job"]["conclusion"] == "success"


def test_webhooks_carry_the_jobs_timestamps_like_github(
    github: GitHubAPI, jobs: Jobs, call
) -> None:
    """created_at when queued, started_at when a runner took the job (in_progress and
    completed alike), completed_at on completed: the control plane's queue wait and job time."""
    sent: list[dict] = []
    github.state.deliver = sent.append
    jobs.queue(1, "self-hosted")  # created 2026-01-01T00:00:01Z
    runner = jobs.runner("fleet-5", "self-hosted")
    assert jobs.job_of(runner) == 1
    started = jobs.status(1)["started_at"]
    assert call("POST", f"/_local/runners/{runner}/finish", {"conclusion": "success"}).ok
    deadline = time.monotonic() + 5
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    in_progress, completed = (p["workflow_job"] for p in sent)
    times = ("created_at", "started_at", "completed_at")
    assert [in_progress[k] for k in times] == ["2026-01-01T00:00:01Z", started, None]
    assert [completed[k] for k in times] == [
        "2026-01-01T00:00:01Z",
        started,
        jobs.status(1)["completed_at"],
    ]
    assert "2026-01-01T00:00:01Z" < started <= completed["completed_at"]


def test_a_runner_lost_in_its_job_fails_it_and_an_idle_one_goes_offline(
    jobs: Jobs, call: Caller
) -> None:
    jobs.queue(1, "self-hosted")
    working = jobs.runner("fleet-1", "self-hosted")
    idle = jobs.runner("fleet-2", "self-hosted")
    assert jobs.job_of(working) == 1
    assert call("POST", f"/_local/runners/{working}/disconnect", token=None).ok
    assert (jobs.status(1)["status"], jobs.status(1)["conclusion"]) == ("completed", "failure")
    assert call("POST", f"/_local/runners/{idle}/disconnect", token=None).ok
    base = f"/repos/{REPO}/actions/runners"
    assert call("GET", f"{base}/{idle}").json()["status"] == "offline"
    assert call("GET", f"{base}/{working}").status_code == 404  # removed with its job
    response = call("GET", f"/_local/runners/{working}/job", token=None)
    assert response.status_code == 404  # a removed runner's process learns it is gone


def test_faults_requests_and_reset_over_http(call: Caller) -> None:
    added = call(
        "POST",
        "/_local/faults",
        [
            {"path": "generate-jitconfig$", "status": 502, "count": 2},
            {"path": "/actions/runners$", "status": 429, "retry_after": 3, "method": "GET"},
            {"path": "/runners/99$", "status": 403, "rate_limit_reset_in": 60},
        ],
        token=None,
    )
    assert added.status_code == 201
    assert [call("POST", JIT, GOOD).status_code for _ in range(3)] == [502, 502, 201]
    limited = call("GET", f"/repos/{REPO}/actions/runners")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    primary = call("GET", f"/repos/{REPO}/actions/runners/99")
    assert primary.headers["x-ratelimit-remaining"] == "0"
    assert int(primary.headers["x-ratelimit-reset"]) > time.time() + 50

    seen = call("GET", "/_local/requests", token=None, params={"path": "generate"}).json()
    assert [r["status"] for r in seen["requests"]] == [502, 502, 201]
    assert seen["requests"][0]["body"] == GOOD

    assert call("POST", "/_local/reset", token=None).status_code == 200
    assert call.api.requests() == [] and call.api.runners() == []


def test_the_jit_rate_limit_answers_like_githubs_secondary_limit(call: Caller) -> None:
    limits = call("POST", "/_local/limits", {"jit_per_second": 4, "jit_burst": 2}, token=None)
    assert limits.json() == {"limits": {"jit_per_second": 4.0, "jit_burst": 2.0}}
    names = iter(f"runner-{n}" for n in range(100))
    answers = [call("POST", JIT, {**GOOD, "name": next(names)}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 403]  # the bucket held 2
    refused = answers[2]
    assert refused.headers["retry-after"] == "1"
    assert "secondary rate limit" in refused.json()["message"]
    assert call("GET", f"/repos/{REPO}/actions/runners").status_code == 200  # JIT only
    time.sleep(0.3)  # 4 tokens a second: one is back
    assert call("POST", JIT, {**GOOD, "name": next(names)}).status_code == 201

    call("POST", "/_local/limits", {"jit_per_second": None}, token=None)  # off
    assert {call("POST", JIT, {**GOOD, "name": next(names)}).status_code for _ in range(5)} == {201}
    bad = call("POST", "/_local/limits", {"jit_per_second": -1}, token=None)
    assert bad.status_code == 422


def test_a_fault_after_the_work_loses_only_the_answer(call: Caller) -> None:
    call.api.add_fault("generate-jitconfig$", status=502, after=True)
    assert call("POST", JIT, GOOD).status_code == 502
    assert len(call.api.runners()) == 1
    assert call("POST", JIT, GOOD).status_code == 409


def test_seeded_jobs_show_as_queued_runs(call: Caller) -> None:
    seeded = call(
        "POST",
        "/_local/jobs",
        [
            {"repository": REPO, "id": 11, "run_id": 1, "labels": ["self-hosted"]},
            {"repository": REPO, "id": 12, "run_id": 1, "status": "completed"},
            {"repository": REPO, "id": 21, "run_id": 2, "status": "completed"},
        ],
        token=None,
    )
    assert seeded.status_code == 201
    runs = call("GET", f"/repos/{REPO}/actions/runs", params={"status": "queued"}).json()
    assert [run["id"] for run in runs["workflow_runs"]] == [1]
    jobs = call("GET", f"/repos/{REPO}/actions/runs/1/jobs").json()
    assert sorted(job["id"] for job in jobs["jobs"]) == [11, 12]
    assert call("GET", f"/repos/{REPO}/actions/jobs/11").json()["labels"] == ["self-hosted"]
    assert call("GET", f"/repos/{REPO}/actions/jobs/99").status_code == 404
    assert call("GET", f"/repos/{REPO}/actions/runs", token="bad").status_code == 401


def test_an_organizations_repositories_are_listed_like_github(call: Caller) -> None:
    call.api.call(
        call.api.state.seed_jobs,
        [
            {"repository": "Codertocat/Zeta", "id": 31},
            {"repository": "Codertocat/alpha", "id": 32},
            {"repository": "octo-org/other", "id": 33},  # another owner's
        ],
    )
    with call.api.state.lock:
        call.api.state.archived.add("codertocat/zeta")
    path = "/orgs/Codertocat/repos"
    first = call("GET", path, params={"type": "all", "sort": "full_name", "per_page": 2})
    assert first.status_code == 200
    assert [r["full_name"] for r in first.json()] == ["Codertocat/alpha", REPO]  # a bare list
    (last,) = call("GET", path, params={"per_page": 2, "page": 2}).json()
    assert (last["full_name"], last["name"], last["owner"]["login"]) == (
        "Codertocat/Zeta",
        "Zeta",
        "Codertocat",
    )
    assert (last["archived"], last["disabled"]) == (True, False)
    assert call("GET", path, params={"page": 3}).json() == []
    # seeded repositories exist for the other endpoints too
    assert call("GET", "/repos/Codertocat/Zeta/actions/runs").status_code == 200
    assert call("GET", "/orgs/nobody/repos").status_code == 404
    assert call("GET", path, token="ghp_nope").status_code == 401


def test_an_installation_lists_its_repositories_and_a_pat_may_not(
    call: Caller, app_key: AppKey
) -> None:
    call.api.call(call.api.state.seed_jobs, {"repository": "Codertocat/Zeta", "id": 31})
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    token = call("POST", path, token=app_token(app_key)).json()["token"]

    body = call("GET", "/installation/repositories", token=token).json()
    assert (body["total_count"], body["repository_selection"]) == (2, "all")
    assert [r["full_name"] for r in body["repositories"]] == [REPO, "Codertocat/Zeta"]
    paged = call(
        "GET", "/installation/repositories", token=token, params={"per_page": 1, "page": 2}
    )
    assert [r["full_name"] for r in paged.json()["repositories"]] == ["Codertocat/Zeta"]
    assert paged.json()["total_count"] == 2
    assert call("GET", "/orgs/Codertocat/repos", token=token).status_code == 200

    refused = call("GET", "/installation/repositories")  # a PAT
    assert refused.status_code == 403
    assert "installation access token" in refused.json()["message"]
    assert call("GET", "/installation/repositories", token=None).status_code == 401


# ---------------------------------------------------------------- GitHub App JWT


def app_token(key: AppKey, **claims) -> str:
    now = int(time.time())
    payload = {"iat": now - 60, "exp": now + 540, "iss": APP_ID, **claims}
    return jwt.encode(payload, key.private_pem, algorithm="RS256")


def test_an_installation_token_for_a_valid_app_jwt(call: Caller, app_key: AppKey) -> None:
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    response = call("POST", path, token=app_token(app_key, jti="a"))
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("ghs_") and response.json()["expires_at"].endswith("Z")
    assert call("POST", JIT, GOOD, token=token).status_code == 201
    assert call.api.state.jwt_ids == ["a"]


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"exp": int(time.time()) + 3600}, 401),  # more than 10 minutes ahead
        ({"exp": int(time.time()) - 10, "iat": int(time.time()) - 120}, 401),  # expired
        ({"iat": int(time.time()) + 300}, 401),  # issued in the future
        ({"iss": "999"}, 401),  # an app the stand-in does not know
    ],
)
def test_bad_app_jwts_are_refused(call: Caller, app_key: AppKey, claims: dict, status: int) -> None:
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    assert call("POST", path, token=app_token(app_key, **claims)).status_code == status


def test_an_app_jwt_is_not_an_api_token(call: Caller, app_key: AppKey) -> None:
    assert call("POST", JIT, GOOD, token=app_token(app_key)).status_code == 401


def test_an_installation_of_another_app_is_404(call: Caller, app_key: AppKey) -> None:
    response = call("POST", "/app/installations/1/access_tokens", token=app_token(app_key))
    assert response.status_code == 404


def test_an_hs256_token_is_refused(call: Caller) -> None:
    forged = jwt.encode(
        {"iss": APP_ID, "iat": 1, "exp": 2}, "an-hmac-key-that-is-long-enough-for-sha256", "HS256"
    )
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    assert call("POST", path, token=forged).status_code == 401


# ---------------------------------------------------------------- as a process


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m local_mode.github_api` with `args`, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "local_mode.github_api", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *args],
        env={"PATH": "/usr/bin:/bin", "LOCAL_GITHUB_REPO": REPO},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def process() -> Iterator[tuple[str, subprocess.Popen]]:
    with serving() as served:
        yield served


def test_runs_as_a_module_with_the_local_mode_token(process) -> None:
    url, _ = process
    assert requests.get(url, timeout=5).status_code == 200
    headers = {"Authorization": f"Bearer {DEFAULT_PAT}"}
    response = requests.post(url + JIT, json=GOOD, headers=headers, timeout=5)
    assert response.status_code == 201
    other = "/repos/someone/else/actions/runners/generate-jitconfig"
    assert requests.post(url + other, json=GOOD, headers=headers, timeout=5).status_code == 404


def test_the_jit_rate_limit_from_the_command_line() -> None:
    with serving("--jit-limit-per-second", "0.1", "--jit-limit-burst", "1") as (url, _):
        headers = {"Authorization": f"Bearer {DEFAULT_PAT}"}
        statuses = [
            requests.post(
                url + JIT, json={**GOOD, "name": f"r-{n}"}, headers=headers, timeout=5
            ).status_code
            for n in range(2)
        ]
        assert statuses == [201, 403]
