"""Fixtures of the Terraform tests: an emulator, the fleet applied to it, plans of the module.

- `emulator`: a moto server of its own (tests/terraform/emulator.py: moto with its bucket
  policy evaluation fixed), so that resource names of other suites never collide with the
  module's. Started once per session; the provider and boto3 talk to it.
- `planner`: writes a root module that calls the fleet module with given arguments, and
  runs `terraform plan` on it (for validation errors and plan-only checks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local_mode.moto_server import MotoServer, free_port
from tests.terraform.tfharness import (
    REPO_ROOT,
    TERRAFORM,
    Emulator,
    ModulePlanner,
    terraform_env,
)


@pytest.fixture(scope="session")
def app_private_key() -> str:
    """A throwaway GitHub App key (RSA, PEM) for App auth."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session", autouse=True)
def emulator(app_private_key: str) -> Iterator[Emulator]:
    """The Terraform tests' moto server, and TF_* variables that point the fixtures at it.

    Autouse, so that it is set up before pytest-terraform's fixture (which reads the
    environment) and torn down after it (destroy needs the emulator).
    """
    if TERRAFORM is None:
        pytest.fail("terraform is not on PATH (CI expects /usr/local/bin/terraform)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_mode.emulator", "-H", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = MotoServer(url=f"http://127.0.0.1:{port}", process=process)
    server.wait_ready(30)
    variables = {
        **terraform_env(),
        "TF_VAR_aws_endpoint_url": server.url,
        "TF_VAR_github_app_private_key": app_private_key,
    }
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield Emulator(server.url)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="session")
def planner(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> ModulePlanner:
    return ModulePlanner(tmp_path_factory.mktemp("plan-module"), emulator)
