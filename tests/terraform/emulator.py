"""The moto server of the Terraform tests: `python -m tests.terraform.emulator -H HOST -p PORT`.

moto with one correction. moto evaluates S3 bucket policies without a request context and
ignores condition operators it does not know (`Bool` among them), so a Deny conditioned on
`aws:SecureTransport` = false applies to every request: the image-build bucket's policy,
which refuses plain HTTP (as every bucket should), would refuse everything here. Against AWS
the provider always uses TLS; against this loopback emulator it uses plain HTTP. So statements
that only apply to plain-HTTP requests are left out of the evaluation. Nothing else changes.
"""

from __future__ import annotations

import json

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket
from moto.server import main


def applies_to_tls_requests(statement: dict) -> bool:
    """False for a statement conditioned on aws:SecureTransport = false (plain HTTP only)."""
    secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return str(secure).lower() != "false"


def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy)
    statements = policy["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    policy["Statement"] = [s for s in statements if applies_to_tls_requests(s)]
    if not policy["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)


FakeBucket.get_permission = get_permission

if __name__ == "__main__":
    main()
