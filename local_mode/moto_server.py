"""A moto server in a child process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ECS_CREATED_AT = "LOCAL_MODE_ECS_CREATED_AT"  # read by local_mode/emulator.py


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def role_session(sts: Any, role_arn: str, session_name: str) -> dict[str, str]:
    """boto3 client arguments for a session of `role_arn` (STS AssumeRole in the emulator):
    resource policies and the emulator's identity checks then see that role as the caller."""
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def hold_ecs_tasks(url: str) -> None:
    """See MotoServer.hold_ecs_tasks (usable with just the server's URL)."""
    response = requests.post(
        f"{url}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    )
    response.raise_for_status()


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen | None = None

    @classmethod
    def start(
        cls,
        port: int | None = None,
        timeout: float = 30.0,
        log_path: Path | None = None,
        ecs_created_at: bool = False,
    ) -> MotoServer:
        """Starts moto in its own process group (it outlives this process unless stopped);
        `ecs_created_at`: its ECS tasks have createdAt (local_mode/emulator.py)."""
        port = port or free_port()
        env = {**os.environ, ECS_CREATED_AT: "1" if ecs_created_at else ""}
        if log_path is None:
            output = subprocess.DEVNULL
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            output = log_path.open("ab")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "local_mode.emulator", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        finally:
            if log_path is not None:
                output.close()
        server = cls(url=f"http://127.0.0.1:{port}", process=process)
        server.wait_ready(timeout)
        return server

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                requests.get(f"{self.url}/moto-api/data.json", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server at {self.url} did not answer within {timeout}s")

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10)

    def hold_ecs_tasks(self) -> None:
        """Keeps ECS tasks where StopTask (or nothing) leaves them.

        By default moto advances a task one step towards STOPPED on every DescribeTasks
        (RUNNING → DEACTIVATING → ... → STOPPED), so a task would appear to stop after a few
        looks. Local mode's runner simulator owns the task lifecycle instead.
        """
        hold_ecs_tasks(self.url)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client_env(self, region: str) -> dict[str, str]:
        """Environment that points boto3 (and Terraform's provider via tfvars) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fixed test credential
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
