"""Fixtures of the control-plane tests: each test gets its own fleet (name prefix) in the
session's moto server, a GitHub stand-in over HTTP and a fault proxy in front of ECS."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local_mode.fault_proxy import FaultProxy
from local_mode.github_api import GitHubAPI
from local_mode.moto_server import MotoServer
from local_mode.seed import seed_fleet
from tests.control_plane.harness import (
    APP_ID,
    EXTRA_LABELS,
    INSTALLATION_ID,
    PAT,
    REGION,
    REPO,
    WEBHOOK_SECRET,
    AppKey,
    Fleet,
)

_fleets = itertools.count(1)


@pytest.fixture(scope="session")
def app_key() -> AppKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return AppKey(private, public)


@pytest.fixture
def github(app_key: AppKey) -> Iterator[GitHubAPI]:
    api = GitHubAPI(
        pats=[PAT],
        apps={APP_ID: app_key.public_pem},
        installations={INSTALLATION_ID: APP_ID},
        repos=[REPO],
    ).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def ecs_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def held_tasks(moto_server: MotoServer) -> Iterator[None]:
    """ECS tasks stay where RunTask and StopTask leave them (moto would otherwise move a task
    towards STOPPED on every DescribeTasks, and the cleanup describes tasks)."""
    moto_server.hold_ecs_tasks()
    yield
    requests.post(
        f"{moto_server.url}/moto-api/state-manager/unset-transition",
        json={"model_name": "ecs::task"},
        timeout=10,
    ).raise_for_status()


@pytest.fixture
def fleet(
    aws_env: MotoServer,
    github: GitHubAPI,
    ecs_proxy: FaultProxy,
    app_key: AppKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Fleet:
    """A fleet named like the module names it (docs/CONTRACTS.md), seeded by local_mode/seed.py."""
    prefix = f"cp{next(_fleets)}-{uuid.uuid4().hex[:6]}"
    env = seed_fleet(
        prefix,
        repository=REPO,
        secrets={
            "webhook-secret": WEBHOOK_SECRET,
            "github-pat": PAT,
            "github-app-private-key": app_key.private_pem,
        },
        image="runner:test",
        container={"stopTimeout": 120, "environment": [{"name": "AWS_REGION", "value": REGION}]},
    )
    env.update(
        GITHUB_APP_ID=APP_ID,
        GITHUB_APP_INSTALLATION_ID=INSTALLATION_ID,
        GITHUB_APP_KEY_PARAM=f"/{prefix}/secrets/github-app-private-key",
        GITHUB_API_URL=github.url,
        RUNNER_EXTRA_LABELS=",".join(EXTRA_LABELS),
        # ECS calls go through the fault proxy; every other service straight to moto
        AWS_ENDPOINT_URL_ECS=ecs_proxy.url,
        # JIT configs paced at 100 a second, so that tests launching many jobs stay fast;
        # test_pacing.py sets the rates it checks
        GITHUB_JIT_CONFIGS_PER_MINUTE="6000",
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Fleet(
        prefix=prefix,
        moto_url=aws_env.url,
        github=github,
        ecs_proxy=ecs_proxy,
        subnet_id=env["SUBNET_IDS"],
        security_group_id=env["SECURITY_GROUP_IDS"],
        env=env,
    )
