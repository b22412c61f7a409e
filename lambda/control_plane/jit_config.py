"""One-shot JIT runner configs in S3, delivered to the runner by ECS (docs/CONTRACTS.md).

Each runner's config is its own object `jit/<runner name>/<random>.env` holding one line,
`ACTIONS_RUNNER_INPUT_JITCONFIG=<config>`. RunTask names it in the container override's
`environmentFiles`; ECS's agent reads it with the task execution role and sets the variable
before the entrypoint starts. The bucket policy lets no one else read it (job steps run with
the task role, which has no S3 access at all), and the random part (160 bits) keeps the key
unguessable even from someone who may list the bucket.

The control plane writes and deletes, and never reads a config back: whether an earlier
attempt stored one is asked by listing its exact key.
"""

from __future__ import annotations

import secrets
from typing import Any

PREFIX = "jit/"
VARIABLE = "ACTIONS_RUNNER_INPUT_JITCONFIG"


def new_key(runner_name: str) -> str:
    return f"{PREFIX}{runner_name}/{secrets.token_hex(20)}.env"


def runner_of_key(key: str) -> str | None:
    """The runner name in a config's key, or None for a key of another shape."""
    if not key.startswith(PREFIX):
        return None
    parts = key[len(PREFIX) :].split("/")
    return parts[0] if len(parts) == 2 and parts[0] and parts[1].endswith(".env") else None


def arn(bucket: str, key: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}/{key}"


def key_of_arn(value: str, bucket: str) -> str | None:
    """The key of an environment file ARN in `bucket` (None: another bucket, or not ours)."""
    _, sep, rest = value.partition(":s3:::")
    if not sep or not value.startswith("arn:"):
        return None
    name, _, key = rest.partition("/")
    return key if name == bucket and runner_of_key(key) else None


def env_file(encoded_config: str) -> bytes:
    """The `.env` body ECS reads: one VAR=value line (a JIT config is base64: no newline)."""
    if "\n" in encoded_config or "\r" in encoded_config:
        raise ValueError("a JIT config must be a single line")
    return f"{VARIABLE}={encoded_config}\n".encode()


def put(s3: Any, bucket: str, key: str, encoded_config: str) -> None:
    """Stores a config; the bucket's default encryption (SSE-KMS) applies."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=env_file(encoded_config),
        ContentType="text/plain",
        CacheControl="no-store",
    )


def exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` is stored, by listing it (the control plane may not read configs)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents") or []
    return any(item.get("Key") == key for item in listed)


def delete(s3: Any, bucket: str, key: str) -> None:
    """Idempotent: S3 answers a delete of a missing key with success."""
    s3.delete_object(Bucket=bucket, Key=key)


def keys(s3: Any, bucket: str, limit: int) -> list[str]:
    """Up to `limit` config keys, listed before any is deleted."""
    found: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=PREFIX, PaginationConfig={"PageSize": 1000}
    ):
        found.extend(item["Key"] for item in page.get("Contents") or [])
        if len(found) >= limit:
            return found[:limit]
    return found
