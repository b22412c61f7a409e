"""A hostile job step: what workflow code could try against another runner's pending config.

Run by a runner's run.sh stand-in with exactly the environment job steps inherit, it knows
what any contributor can learn: the fleet's bucket name and the victim runner's name (job ids
are public through GitHub's API). It tries to:

1. find AWS credentials: credential variables (a container credentials URI among them), the
   SDK's default chain;
2. with what it found (or none), read, list and delete the victim's config, guessing its key;
3. with --stolen-credentials (the worst case: the task role's credentials, as /proc/1/environ
   and the credentials endpoint would give them on ECS), the same, knowing the exact key.

Prints one JSON report: every attempt and whether it was refused. Exit 0 when every attempt
was refused, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def attempt(report: list[dict[str, Any]], what: str, action: Callable[[], Any]) -> None:
    try:
        result = action()
    except (ClientError, BotoCoreError, OSError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        report.append({"attempt": what, "refused": True, "error": str(code)})
        return
    report.append({"attempt": what, "refused": False, "result": repr(result)[:200]})


def s3_client(endpoint: str | None, credentials: dict[str, str] | None) -> Any:
    kwargs: dict[str, Any] = {"endpoint_url": endpoint, "region_name": os.environ.get("AWS_REGION")}
    if credentials is None:
        return boto3.session.Session().client(
            "s3", config=Config(signature_version=UNSIGNED), **kwargs
        )
    return boto3.session.Session(**credentials).client("s3", **kwargs)


def find_credentials(report: list[dict[str, Any]], expected: bool) -> dict[str, str] | None:
    """Credentials a job step could find on its own, or None. It makes no request to ECS's
    link-local credentials endpoint or to instance metadata: a credentials URI in the
    environment already counts as found (--stolen-credentials stands for what it returns).
    `expected`: the fleet gives jobs credentials (runner_job_policy_arns), so finding them is
    no failure; what they can do is what counts."""
    found = {name: os.environ[name] for name in CREDENTIAL_VARIABLES if os.environ.get(name)}
    report.append(
        {
            "attempt": "credential variables",
            "refused": not found or expected,
            "found": sorted(found),
        }
    )
    if "AWS_ACCESS_KEY_ID" in found and "AWS_SECRET_ACCESS_KEY" in found:
        return {
            "aws_access_key_id": found["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": found["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": found.get("AWS_SESSION_TOKEN", ""),
        }
    if found:
        return None
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # loopback only, in tests and local mode
    chain = boto3.session.Session().get_credentials()
    report.append({"attempt": "SDK credential chain", "refused": chain is None})
    if chain is None:
        return None
    frozen = chain.get_frozen_credentials()
    return {
        "aws_access_key_id": frozen.access_key,
        "aws_secret_access_key": frozen.secret_key,
        "aws_session_token": frozen.token or "",
    }


def attack(
    report: list[dict[str, Any]], s3: Any, bucket: str, keys: list[str], victim: str, who: str
) -> None:
    for key in keys:
        attempt(
            report,
            f"{who}: read {key}",
            lambda k=key: s3.get_object(Bucket=bucket, Key=k)["Body"].read(),
        )
    attempt(
        report,
        f"{who}: list jit/",
        lambda: s3.list_objects_v2(Bucket=bucket, Prefix="jit/")["Contents"],
    )
    attempt(
        report,
        f"{who}: list jit/{victim}/",
        lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"jit/{victim}/")["Contents"],
    )
    for key in keys:
        attempt(
            report, f"{who}: delete {key}", lambda k=key: s3.delete_object(Bucket=bucket, Key=k)
        )
        attempt(  # authorised as s3:DeleteObjectVersion, which the bucket policy lets admins do
            report,
            f"{who}: delete version null of {key}",
            lambda k=key: s3.delete_object(Bucket=bucket, Key=k, VersionId="null"),
        )
    attempt(report, f"{who}: read the bucket policy", lambda: s3.get_bucket_policy(Bucket=bucket))
    attempt(
        report, f"{who}: delete the bucket policy", lambda: s3.delete_bucket_policy(Bucket=bucket)
    )
    attempt(
        report,
        f"{who}: delete many",
        lambda: _refused_if_errors(
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
        ),
    )


def _refused_if_errors(response: dict[str, Any]) -> dict[str, Any]:
    errors = response.get("Errors") or []
    if errors and not response.get("Deleted"):
        raise ClientError(
            {"Error": {"Code": errors[0].get("Code", "AccessDenied")}}, "DeleteObjects"
        )
    return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--victim", required=True, help="the other runner's name")
    parser.add_argument("--known-key", help="the victim's exact key (worst case)")
    parser.add_argument("--stolen-credentials", type=Path, help="JSON: the task role's keys")
    parser.add_argument("--endpoint", help="the AWS endpoint (local mode: the emulator)")
    parser.add_argument(
        "--credentials-expected",
        action="store_true",
        help="the fleet gives jobs AWS credentials (runner_job_policy_arns)",
    )
    args = parser.parse_args(argv)

    report: list[dict[str, Any]] = []
    guessed = [f"jit/{args.victim}", f"jit/{args.victim}.env", f"jit/{args.victim}/config.env"]
    found = find_credentials(report, args.credentials_expected)
    attack(report, s3_client(args.endpoint, found), args.bucket, guessed, args.victim, "own")
    if args.stolen_credentials:
        stolen = json.loads(args.stolen_credentials.read_text())
        keys = guessed + ([args.known_key] if args.known_key else [])
        attack(report, s3_client(args.endpoint, stolen), args.bucket, keys, args.victim, "stolen")
    print(json.dumps(report))
    return 0 if all(entry["refused"] for entry in report) else 1


if __name__ == "__main__":
    sys.exit(main())
