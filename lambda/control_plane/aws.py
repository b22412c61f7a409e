"""boto3 clients, created once per execution environment and reused across invocations.

The ECS client makes a single attempt per call: RunTask's retries (throttling, transient
errors, the Lambda's time budget) are the launcher's, in one place. The other clients keep
botocore's standard retry mode. AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> are honoured
by boto3 itself (local mode and tests); they are part of the cache key.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

_clients: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()

_CONFIGS = {
    "ecs": Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=20,
    ),
}
_DEFAULT = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=20,
)


def client(service: str) -> Any:
    env_key = f"AWS_ENDPOINT_URL_{service.upper()}"
    key = (
        service,
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get(env_key, ""),
    )
    with _lock:  # boto3's default session is not thread-safe; clients are
        found = _clients.get(key)
        if found is None:
            found = boto3.session.Session().client(service, config=_CONFIGS.get(service, _DEFAULT))
            _clients[key] = found
        return found
