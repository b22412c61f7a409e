"""The AWS emulator of local mode and the tests: `python -m local_mode.emulator -H HOST -p PORT`.

moto, with S3 bucket policies evaluated the way S3 documents it. moto evaluates them without a
request context and treats every condition it cannot check as failed, so any conditioned Deny
(`aws:SecureTransport`, `aws:PrincipalArn`) refuses every request, and it never consults them
for listing. Here, at the emulator's edge:

- the caller is the principal of the request's access key: an assumed role's session (STS
  AssumeRole in this emulator) is its role ARN, any other key the account root (moto's test
  credentials stand for the account's administrator);
- conditions are evaluated with `aws:PrincipalArn`, `aws:PrincipalAccount` and
  `aws:SecureTransport` = true (clients of this loopback emulator stand in for TLS clients;
  AWS's own clients always use TLS);
- ListBucket is checked against the bucket policy too, and an unsigned request needs an explicit
  Allow for anonymous callers (this project's buckets block public access); HEAD and POST
  object requests are authorised as the read and the write they are, and a request naming a
  `versionId` as the `*Version` action (DeleteObjects' per-key versions are not: moto hides
  them);
- DynamoDB requests run one at a time: moto applies an UpdateItem's actions to the stored item
  one by one, so a concurrent read could see it half-updated; DynamoDB's writes are atomic per
  item;
- an assumed-role session's S3 request also needs an Allow in its role's identity policies
  (inline and attached; conditions on `s3:prefix` are evaluated), as IAM requires. Other
  services' identity policies are not enforced (moto's default); tests/terraform evaluates the
  roles' policies themselves. KMS key policies are evaluated (with the caller and conditions)
  only where moto checks them at all (DescribeKey): SSE-KMS is not enforced. Nor is the source
  of CopyObject; an access key moto does not know acts as the account root;
- a CodeBuild build keeps what CodeBuild's BatchGetBuilds reports it ran with: the project's
  environment with StartBuild's environment variable, type, image and compute type overrides
  (an arm64 image build runs on ARM_CONTAINER), its source, timeout and log stream (moto drops
  the overrides and keeps placeholders). moto runs no build: local mode's
  local_mode/codebuild.py plays one;
- TerminateInstanceInAutoScalingGroup refuses as Auto Scaling does (ValidationError): an
  instance in no group ("Instance Id not found", where moto fails with a server error), and
  a decrement below the group's minimum size (which moto allows);
- with LOCAL_MODE_ECS_CREATED_AT=1 (the local stack's and the latency bench's emulator), an
  ECS task has its `createdAt`, the time the emulator took its RunTask, as ECS reports it
  (moto keeps none): the runner simulator's events and the bench's latency start from it.
  Off by default: the control-plane and CLI tests model task ages without it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from typing import Any

from moto.autoscaling.exceptions import ValidationError as AutoScalingValidationError
from moto.autoscaling.models import AutoScalingBackend
from moto.codebuild.responses import CodeBuildResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.ecs.models import Task as EcsTask
from moto.iam.access_control import PermissionResult
from moto.iam.models import iam_backends
from moto.kms import responses as kms_responses
from moto.kms.exceptions import AccessDeniedException as KmsAccessDenied
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import FakeBucket, s3_backends
from moto.server import main
from moto.sts.models import sts_backends

from local_mode.moto_server import ECS_CREATED_AT

_request = threading.local()
_dynamodb = threading.Lock()
ACCESS_KEY = re.compile(r"Credential=([A-Za-z0-9]+)/")


def principal_of(environ: dict[str, Any]) -> str | None:
    """The caller's principal ARN, or None for an unsigned request."""
    found = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", "")) or ACCESS_KEY.search(
        "Credential=" + _query_value(environ.get("QUERY_STRING", ""), "X-Amz-Credential")
    )
    if not found:
        return None
    key = found.group(1)
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        role = sts_backends[DEFAULT_ACCOUNT_ID][partition].get_assumed_role_from_access_key(key)
        if role is not None:
            return role.role_arn
    return f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"


def _query_value(query: str, name: str) -> str:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value.replace("%2F", "/")
    return ""


# ----------------------------------------------------------------------------- evaluation


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _matches(patterns: Any, value: str, *, case: bool = True) -> bool:
    for pattern in _values(patterns):
        if case and fnmatch.fnmatchcase(value, pattern):
            return True
        if not case and fnmatch.fnmatchcase(value.lower(), pattern.lower()):
            return True
    return False


def _condition(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    base, if_exists = (operator[:-8], True) if operator.endswith("IfExists") else (operator, False)
    actual = context.get(key.lower())
    negated = "Not" in base
    if actual is None:  # a missing key: only IfExists and negated operators are met
        return if_exists or negated
    wanted = _values(expected)
    if base == "Bool":
        return actual.lower() in [w.lower() for w in wanted]
    if base in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        hit = actual in wanted
    elif base in ("StringLike", "ArnLike", "StringNotLike", "ArnNotLike"):
        hit = any(fnmatch.fnmatchcase(actual, w) for w in wanted)
    else:
        raise ValueError(f"the emulator does not evaluate condition operator {operator}")
    return not hit if negated else hit


def _principal_matches(statement: dict[str, Any], principal: str | None) -> bool:
    if "Principal" not in statement:  # an identity policy: the principal is its holder
        return True
    expected = statement.get("Principal")
    if expected == "*" or (isinstance(expected, dict) and "*" in _values(expected.get("AWS", []))):
        return True
    if principal is None or not isinstance(expected, dict):
        return False
    account_root = f"arn:aws:iam::{principal.split(':')[4]}:root"
    listed = _values(expected.get("AWS", []))
    return principal in listed or account_root in listed or principal.split(":")[4] in listed


def evaluate(
    policy: dict[str, Any],
    action: str,
    resource: str,
    principal: str | None,
    extra: dict[str, str] | None = None,
) -> str:
    """'deny', 'allow' or 'neutral' for one request against a resource or identity policy."""
    context = {"aws:securetransport": "true", **(extra or {})}
    if principal is not None:
        context["aws:principalarn"] = principal
        context["aws:principalaccount"] = principal.split(":")[4]
    statements = policy.get("Statement", [])
    outcome = "neutral"
    for statement in statements if isinstance(statements, list) else [statements]:
        if "Action" in statement and not _matches(statement["Action"], action, case=False):
            continue
        if "NotAction" in statement and _matches(statement["NotAction"], action, case=False):
            continue
        if "Resource" in statement and not _matches(statement["Resource"], resource):
            continue
        if not _principal_matches(statement, principal):
            continue
        conditions = statement.get("Condition", {})
        if not all(
            _condition(operator, key, expected, context)
            for operator, pairs in conditions.items()
            for key, expected in pairs.items()
        ):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        outcome = "allow"
    return outcome


# moto names the object actions of HEAD and POST requests after the method; S3 authorises
# them as the read and the write they are.
MOTO_ACTIONS = {"s3:HeadObject": "s3:GetObject", "s3:PostObject": "s3:PutObject"}


def _role_allows(action: str, resource: str) -> bool:
    """An assumed-role session needs an Allow in its role's identity policies (an explicit
    Deny there wins); other callers are moto's administrators."""
    principal = getattr(_request, "principal", None)
    if principal is None or ":role/" not in principal:
        return True
    role = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].get_role_by_arn(principal)
    documents = list(role.policies.values()) + [
        next(v.document for v in policy.versions if v.is_default)
        for policy in role.managed_policies.values()
    ]
    prefix = _query_value(getattr(_request, "query", ""), "prefix")
    extra = {"s3:prefix": prefix} if prefix else {}
    results = [
        evaluate(json.loads(d) if isinstance(d, str) else d, action, resource, principal, extra)
        for d in documents
    ]
    return "deny" not in results and "allow" in results


def decide(bucket: FakeBucket, action: str, resource: str) -> str:
    """'deny', 'allow' or 'neutral' for the request in progress: the bucket policy, then the
    caller's role."""
    principal = getattr(_request, "principal", None)
    policy = json.loads(bucket.policy) if bucket.policy else {}
    result = evaluate(policy, action, resource, principal) if policy else "neutral"
    if result == "deny" or not _role_allows(action, resource):
        return "deny"
    return result


def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    """moto's hook for object requests (per key for DeleteObjects)."""
    action = MOTO_ACTIONS.get(action, action)
    if action in ("s3:GetObject", "s3:DeleteObject") and "versionId=" in getattr(
        _request, "query", ""
    ):
        action += "Version"
    return {"deny": PermissionResult.DENIED, "allow": PermissionResult.PERMITTED}.get(
        decide(self, action, resource), PermissionResult.NEUTRAL
    )


# ----------------------------------------------------------------------------- the edge

DENIED = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"""


def _bucket_request(environ: dict[str, Any]) -> tuple[FakeBucket, str, str, bool] | None:
    """(bucket, action, resource, object-level) of a path-style request to an existing bucket."""
    path = environ.get("PATH_INFO", "").lstrip("/")
    name, _, key = path.partition("/")
    if not name or name.startswith(("moto-api", "_")):
        return None
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(name)
    if bucket is None:
        return None
    method = environ.get("REQUEST_METHOD", "GET")
    query = environ.get("QUERY_STRING", "")
    if not key and method == "POST" and query.startswith("delete"):
        return bucket, "s3:DeleteObject", f"arn:aws:s3:::{name}/*", True  # moto checks per key
    if not key:
        subresource = query.split("&")[0].split("=")[0]
        if method in ("GET", "HEAD") and subresource in LISTING:
            return bucket, "s3:ListBucket", f"arn:aws:s3:::{name}", False
        if method in ("GET", "HEAD") and subresource == "versions":
            return bucket, "s3:ListBucketVersions", f"arn:aws:s3:::{name}", False
        verb = {"GET": "Get", "HEAD": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, "Put")
        return bucket, f"s3:{verb}Bucket{subresource.title()}", f"arn:aws:s3:::{name}", False
    action = {"GET": "GetObject", "HEAD": "GetObject", "DELETE": "DeleteObject"}
    return bucket, "s3:" + action.get(method, "PutObject"), f"arn:aws:s3:::{name}/{key}", True


LISTING = ("", "list-type", "prefix", "max-keys", "delimiter", "marker", "encoding-type")


class PolicyEdge:
    """WSGI middleware in front of moto: records the caller for moto's object checks, decides
    bucket-level requests itself, and refuses anonymous callers without an explicit Allow."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _request.principal = principal_of(environ)
        _request.query = environ.get("QUERY_STRING", "")
        target = _bucket_request(environ)
        if target is not None and self._refused(*target):
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [DENIED]
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:  # moto answers in full inside the call (a list body)
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    @staticmethod
    def _refused(bucket: FakeBucket, action: str, resource: str, object_level: bool) -> bool:
        if getattr(_request, "principal", None) is None:  # anonymous: only an explicit Allow
            return decide(bucket, action, resource) != "allow"
        return not object_level and decide(bucket, action, resource) == "deny"


def validate_key_policy(key: Any, action: str) -> None:
    """moto's key policy check (it makes it for DescribeKey), with the caller and conditions."""
    if evaluate(json.loads(key.policy), action, key.arn, _request.principal) == "deny":
        raise KmsAccessDenied(f"{action} is denied by the key policy")


# StartBuild's overrides of the project's environment → the environment's own field
ENVIRONMENT_OVERRIDES = {
    "environmentTypeOverride": "type",
    "imageOverride": "image",
    "computeTypeOverride": "computeType",
}


def build_as_started(
    build: dict[str, Any],
    project: dict[str, Any],
    overrides: list,
    environment_overrides: dict[str, str] | None = None,
) -> None:
    """A new build's description as CodeBuild gives it: the project's settings, with
    StartBuild's environment variables replacing the project's of the same name and its
    type, image and compute type overrides (`environment_overrides`, by parameter name)
    replacing the project's."""
    variables = {v["name"]: v for v in project["environment"].get("environmentVariables", [])}
    variables.update({v["name"]: {"type": "PLAINTEXT", **v} for v in overrides})
    replaced = {
        field: (environment_overrides or {})[name]
        for name, field in ENVIRONMENT_OVERRIDES.items()
        if (environment_overrides or {}).get(name)
    }
    build["environment"] = {
        **project["environment"],
        **replaced,
        "environmentVariables": list(variables.values()),
    }
    build["source"] = project["source"]
    build["cache"] = project.get("cache") or {"type": "NO_CACHE"}
    build["timeoutInMinutes"] = project.get("timeoutInMinutes") or 60
    logs = (project.get("logsConfig") or {}).get("cloudWatchLogs") or {}
    group = logs.get("groupName") or f"/aws/codebuild/{project['name']}"
    stream = build["id"].split(":", 1)[1]
    if logs.get("streamName"):
        stream = f"{logs['streamName']}/{stream}"
    region = build["arn"].split(":")[3]
    build["logs"] = {
        **build["logs"],
        "groupName": group,
        "streamName": stream,
        "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEvent:group={group};stream={stream}",
    }


def install_codebuild() -> None:
    original = CodeBuildResponse.start_build

    def start_build(self: CodeBuildResponse) -> Any:
        result = original(self)  # its answer holds the build's description: completed below
        name = self._get_param("projectName")
        # The build this request started (the stored description itself), not the project's
        # latest: the server is threaded, and another StartBuild may have come in since.
        build_as_started(
            result.result["build"],
            self.codebuild_backend.codebuild_projects[name].project_metadata,
            self._get_param("environmentVariablesOverride") or [],
            {name: self._get_param(name) for name in ENVIRONMENT_OVERRIDES},
        )
        return result

    CodeBuildResponse.start_build = start_build


def install_ecs_created_at() -> None:
    original = EcsTask.__init__

    def init(self: EcsTask, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.created_at = utcnow()  # DescribeTasks/RunTask/StopTask answer it as createdAt

    EcsTask.__init__ = init


def install_autoscaling_terminate() -> None:
    original = AutoScalingBackend.terminate_instance

    def terminate_instance(
        self: AutoScalingBackend, instance_id: str, should_decrement: bool
    ) -> Any:
        group = next(
            (
                g
                for g in self.autoscaling_groups.values()
                for state in g.instance_states
                if state.instance.id == instance_id
            ),
            None,
        )
        if group is None:
            raise AutoScalingValidationError(
                f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
            )
        if should_decrement and (group.desired_capacity or 0) <= (group.min_size or 0):
            raise AutoScalingValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                "instance without replacement will violate group's min size constraint. "
                "Either set shouldDecrementDesiredCapacity flag to false or lower group's "
                "min size."
            )
        return original(self, instance_id, should_decrement)

    AutoScalingBackend.terminate_instance = terminate_instance


def install() -> None:
    install_codebuild()
    install_autoscaling_terminate()
    if os.environ.get(ECS_CREATED_AT) == "1":
        install_ecs_created_at()
    FakeBucket.get_permission = get_permission
    kms_responses.validate_policy = validate_key_policy
    original = DomainDispatcherApplication.__call__

    def dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        return PolicyEdge(lambda e, s: original(self, e, s))(environ, start_response)

    DomainDispatcherApplication.__call__ = dispatch


if __name__ == "__main__":
    install()
    main()
