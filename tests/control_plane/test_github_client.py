"""The control plane's GitHub client against the stand-in over HTTP: auth, retries, paths."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from control_plane import github as gh
from control_plane.github import (
    AppAuth,
    GitHubClient,
    GitHubError,
    PatAuth,
    RunnerNameTaken,
    app_jwt,
    retry_delay,
)
from control_plane.retry import Deadline

from local_mode.github_api import GitHubAPI
from tests.control_plane.harness import APP_ID, INSTALLATION_ID, OWNER, PAT, REPO, AppKey

REPO_NAME = REPO.split("/")[1]


def pat_client(api: GitHubAPI, scope: str = "repo", token: str = PAT, **kw) -> GitHubClient:
    return GitHubClient(
        api.url, PatAuth(lambda: token), scope=scope, owner=OWNER, repo=REPO_NAME, **kw
    )


def app_client(api: GitHubAPI, key: AppKey) -> GitHubClient:
    auth = AppAuth(APP_ID, INSTALLATION_ID, lambda: key.private_pem)
    return GitHubClient(api.url, auth, scope="repo", owner=OWNER, repo=REPO_NAME)


# ---------------------------------------------------------------- GitHub App


def test_app_jwt_claims(app_key: AppKey) -> None:
    now = time.time()
    token = app_jwt(APP_ID, app_key.private_pem, now=now)
    claims = jwt.decode(token, app_key.public_pem, algorithms=["RS256"])
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["iss"] == APP_ID
    assert claims["iat"] == int(now) - 60  # backdated for clock drift
    assert claims["exp"] - int(now) <= 600  # GitHub's 10-minute limit
    assert claims["exp"] > int(now) + 60


def test_every_app_jwt_has_its_own_jti(app_key: AppKey) -> None:
    now = time.time()
    ids = {
        jwt.decode(
            app_jwt(APP_ID, app_key.private_pem, now=now), options={"verify_signature": False}
        )["jti"]
        for _ in range(20)
    }
    assert len(ids) == 20  # same second, same app: still 20 different JWTs


def test_installation_token_is_cached_across_calls(github: GitHubAPI, app_key: AppKey) -> None:
    for index in range(3):
        client = app_client(github, app_key)  # a new client per invocation, as in the Lambda
        client.generate_jit_config(f"r-{index}", ["self-hosted"], 1)
    assert len(github.requests(path="/access_tokens$")) == 1
    tokens = {r["headers"]["Authorization"] for r in github.requests(path="generate-jitconfig")}
    assert len(tokens) == 1 and tokens.pop().startswith("Bearer ghs_")


def test_a_token_close_to_expiry_is_renewed_with_a_new_jwt(app_key: AppKey) -> None:
    # tokens that live 4 minutes are always inside the 5-minute renewal margin
    with GitHubAPI(apps={APP_ID: app_key.public_pem}, token_lifetime=240, repos=[REPO]) as api:
        for index in range(3):
            app_client(api, app_key).generate_jit_config(f"r-{index}", ["self-hosted"], 1)
        assert len(api.requests(path="/access_tokens$")) == 3
        assert len(set(api.state.jwt_ids)) == 3


def test_concurrent_invocations_share_one_token_request(github: GitHubAPI, app_key: AppKey) -> None:
    errors: list[Exception] = []

    def register(index: int) -> None:
        try:
            app_client(github, app_key).generate_jit_config(f"c-{index}", ["self-hosted"], 1)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(github.requests(path="/access_tokens$")) == 1
    assert len(github.runners()) == 8


def test_a_revoked_installation_token_is_replaced_once(github: GitHubAPI, app_key: AppKey) -> None:
    app_client(github, app_key).generate_jit_config("r-1", ["self-hosted"], 1)
    github.state.tokens.clear()  # GitHub forgot the token (revoked, app reinstalled)
    app_client(github, app_key).generate_jit_config("r-2", ["self-hosted"], 1)
    statuses = [r["status"] for r in github.requests(path="generate-jitconfig")]
    assert statuses == [201, 401, 201]
    assert len(github.requests(path="/access_tokens$")) == 2


def test_a_wrong_app_key_fails_with_401(github: GitHubAPI) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    auth = AppAuth(APP_ID, INSTALLATION_ID, lambda: other.decode())
    client = GitHubClient(github.url, auth, scope="repo", owner=OWNER, repo=REPO_NAME)
    with pytest.raises(GitHubError) as caught:
        client.generate_jit_config("r", ["self-hosted"], 1)
    assert caught.value.status == 401
    assert github.runners() == []


# ---------------------------------------------------------------- PAT, paths, errors


def test_pat_and_paths(github: GitHubAPI) -> None:
    client = pat_client(github)
    jit = client.generate_jit_config("r-1", ["self-hosted", "class:small"], 1)
    assert jit.runner_name == "r-1" and jit.encoded
    (call,) = github.requests(path="generate-jitconfig")
    assert call["path"] == f"/repos/{REPO}/actions/runners/generate-jitconfig"
    assert call["headers"]["Authorization"] == f"Bearer {PAT}"
    assert call["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert call["headers"]["Accept"] == "application/vnd.github+json"
    assert call["body"] == {
        "name": "r-1",
        "runner_group_id": 1,
        "labels": ["self-hosted", "class:small"],
        "work_folder": "_work",
    }
    with pytest.raises(RunnerNameTaken):
        client.generate_jit_config("r-1", ["self-hosted"], 1)

    org = pat_client(github, scope="org")
    org.generate_jit_config("r-2", ["self-hosted"], 1)
    assert github.requests(path="generate-jitconfig")[-1]["path"] == (
        f"/orgs/{OWNER}/actions/runners/generate-jitconfig"
    )


def test_a_bad_pat_fails_without_retries(github: GitHubAPI) -> None:
    with pytest.raises(GitHubError) as caught:
        pat_client(github, token="ghp_wrong").generate_jit_config("r", ["self-hosted"], 1)
    assert caught.value.status == 401
    assert caught.value.message == "Bad credentials"
    assert len(github.requests()) == 1


def test_enterprise_server_api_url() -> None:
    with GitHubAPI(path_prefix="/api/v3", pats=[PAT], repos=[REPO]) as ghes:
        assert ghes.url.endswith("/api/v3")
        pat_client(ghes).generate_jit_config("r-1", ["self-hosted"], 1)
        (call,) = ghes.requests()
        assert call["path"] == f"/repos/{REPO}/actions/runners/generate-jitconfig"


def test_find_and_delete_runners_across_pages(github: GitHubAPI) -> None:
    client = pat_client(github)
    for index in range(120):
        github.call(
            github.state.generate_jit,
            f"repos/{REPO.lower()}",
            {"name": f"bulk-{index}", "runner_group_id": 1, "labels": ["x"]},
        )
    assert len(list(client.runners())) == 120
    found = client.find_runner("bulk-117")
    assert found and found["name"] == "bulk-117"
    assert client.find_runner("nope") is None
    assert client.delete_runner(found["id"]) is True
    assert client.delete_runner(found["id"]) is False  # already gone
    assert len(list(client.runners())) == 119


def test_a_rate_limit_beyond_the_deadline_is_not_waited_for(github: GitHubAPI) -> None:
    github.add_fault("generate-jitconfig", status=429, retry_after=30)
    client = pat_client(github, deadline=Deadline(10))
    started = time.monotonic()
    with pytest.raises(GitHubError):
        client.generate_jit_config("r", ["self-hosted"], 1)
    assert time.monotonic() - started < 2


def test_connection_errors_are_retried_then_raised() -> None:
    client = GitHubClient(
        "http://127.0.0.1:9",  # discard port: refused
        PatAuth(lambda: PAT),
        scope="repo",
        owner=OWNER,
        repo=REPO_NAME,
        deadline=Deadline(6),
    )
    with pytest.raises(gh.GitHubUnavailable):
        client.generate_jit_config("r", ["self-hosted"], 1)


# ---------------------------------------------------------------- retry policy (pure)


def error(status: int, message: str = "", **headers: str) -> GitHubError:
    return GitHubError("POST", "/x", status, message, headers)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (error(429, **{"Retry-After": "7"}), 7.0),
        (error(403, **{"retry-after": "3"}), 3.0),
        (error(403, **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1010"}), 11.0),
        (error(403, "You have exceeded a secondary rate limit"), 60.0),
        (error(429), 60.0),
        (error(403, "Resource not accessible by integration"), None),
        (error(401, "Bad credentials"), None),
        (error(404), None),
        (error(409), None),
        (error(422), None),
        (error(429, **{"Retry-After": "120"}), None),  # longer than any invocation
        (ValueError("not an HTTP error"), None),
    ],
)
def test_retry_delays(exc: Exception, expected: float | None) -> None:
    assert retry_delay(exc, attempt=1, now=1000.0) == expected


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_back_off_with_jitter(status: int) -> None:
    delays = [retry_delay(error(status), attempt=3) for _ in range(20)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 1  # jittered
