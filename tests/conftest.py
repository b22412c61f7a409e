"""Shared fixtures: a moto server on a free loopback port and GitHub's fixture payloads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_mode.moto_server import MotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "github"
if not FIXTURES.is_dir():  # a checkout with shared/ elsewhere may point at it
    FIXTURES = Path(os.environ.get("GITHUB_FIXTURES", REPO_ROOT / "tests" / "fixtures" / "github"))

REGION = "us-east-1"


@pytest.fixture(scope="session")
def github_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"GitHub fixtures not found at {FIXTURES}: set GITHUB_FIXTURES")
    return FIXTURES


@pytest.fixture
def load_payload(github_fixtures: Path):
    """Returns a fresh dict for e.g. load_payload('workflow_job/queued')."""

    def load(name: str) -> dict:
        return json.loads((github_fixtures / "webhooks" / f"{name}.payload.json").read_text())

    return load


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session, on a free loopback port."""
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Points boto3 in this process at the session's moto server."""
    for key, value in moto_server.client_env(REGION).items():
        monkeypatch.setenv(key, value)
    return moto_server
