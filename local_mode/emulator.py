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
- ECS RunTask on an EC2 (Auto Scaling group) capacity provider is placed as ECS places it
  (moto ignores placement constraints, raises when no instance is registered and otherwise
  places nothing when none has room): on an ACTIVE container instance of the provider's Auto
  Scaling group (any of the cluster's, for a group the emulator lacks) with the task's CPU
  and memory free (the task-level values when the task definition sets them, as ECS
  reserves), honouring the `distinctInstance` constraint (no other task of the same task
  group whose desired status is RUNNING on the instance, as the ECS API reference defines
  it). With no room, the task is created with lastStatus PROVISIONING and no container
  instance, as ECS does for a capacity provider with managed scaling (every capacity
  provider here is treated as one); it gets placed, oldest first, as soon as capacity frees
  (StopTask of a placed task) or arrives (RegisterContainerInstance), or stays until
  StopTask. Such a task has launchType EC2 and the provider as capacityProviderName.
  RegisterContainerInstance keeps the `totalResources` the agent reports (moto registers
  every instance as 4096 CPU units, 7482 MiB), and StopTask of a task already stopped frees
  its instance's resources only once;
- an Auto Scaling group with a mixed-instances policy launches its first instance type
  override (the "prioritized" on-demand choice) when its launch template names none: moto
  launched instances with no type at all;
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
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.codebuild.responses import CodeBuildResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs.models import Cluster, ContainerInstance, EC2ContainerServiceBackend
from moto.ecs.models import Task as EcsTask
from moto.ecs.responses import EC2ContainerServiceResponse
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


# ----------------------------------------------------------------------------- ECS on EC2

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
PROVISIONING = "PROVISIONING"
_ecs = threading.RLock()  # placement reads and changes the instances' free resources


def ec2_provider(cluster: Cluster, launch_type: str | None, strategy: list | None) -> str | None:
    """The EC2 capacity provider a RunTask names (or the cluster's default strategy does)."""
    if launch_type:
        return None
    strategy = strategy or cluster.default_capacity_provider_strategy or []
    provider = strategy[0]["capacityProvider"] if strategy else None
    return None if provider in FARGATE_PROVIDERS else provider


def task_requirements(definition: Any) -> dict[str, Any]:
    """What a task reserves on its instance: the task-level CPU and memory when its definition
    sets them (what ECS reserves), else its containers' sum. An awsvpc task has its own network
    interface: it takes no host port."""
    containers = definition.container_definitions

    def total(level: str | None, *keys: str) -> int:
        if level:
            return int(level)
        return sum(int(next((c[k] for k in keys if c.get(k)), 0)) for c in containers)

    return {
        "CPU": total(definition.cpu, "cpu"),
        "MEMORY": total(definition.memory, "memory", "memoryReservation"),
        "PORTS": [],
        "PORTS_UDP": [],
    }


def provider_instances(
    backend: EC2ContainerServiceBackend, cluster_name: str, provider_name: str
) -> list[ContainerInstance]:
    """The cluster's ACTIVE container instances that run in the provider's Auto Scaling group
    (any of the cluster's, as moto had it, for a provider whose group the emulator does not
    have: a test's made-up ARN, which AWS would have refused)."""
    provider = backend.capacity_providers.get(provider_name)
    if provider is None:
        return []
    group_arn = provider.auto_scaling_group_provider.get("autoScalingGroupArn", "")
    groups = autoscaling_backends[backend.account_id][backend.region_name].autoscaling_groups
    group = groups.get(group_arn.rsplit("autoScalingGroupName/", 1)[-1])
    members = {state.instance.id for state in group.instance_states} if group else None
    return [
        instance
        for instance in backend.container_instances.get(cluster_name, {}).values()
        if instance.status == "ACTIVE" and (members is None or instance.ec2_instance_id in members)
    ]


def fits(backend: EC2ContainerServiceBackend, task: EcsTask, instance: ContainerInstance) -> bool:
    if not backend._can_be_placed(instance, task.resource_requirements):
        return False
    if not task.distinct_instance:
        return True
    return not any(
        other is not task
        and other.container_instance_arn == instance.container_instance_arn
        and other.group == task.group
        and other.desired_status == "RUNNING"
        for other in backend.tasks.get(task.cluster_name, {}).values()
    )


def place(backend: EC2ContainerServiceBackend, task: EcsTask) -> bool:
    """Puts the task on the first instance of its provider that fits it (False: none does)."""
    for instance in provider_instances(backend, task.cluster_name, task.capacity_provider_name):
        if fits(backend, task, instance):
            task.container_instance_arn = instance.container_instance_arn
            backend.update_container_instance_resources(instance, task.resource_requirements)
            backend.update_cluster_resources(backend.clusters[task.cluster_name], 1)
            task.last_status = "RUNNING"  # moto's tasks start RUNNING (no PENDING step)
            return True
    return False


def place_waiting(backend: EC2ContainerServiceBackend, cluster_name: str) -> None:
    """Capacity freed or arrived: the cluster's PROVISIONING tasks take it, oldest first."""
    for task in list(backend.tasks.get(cluster_name, {}).values()):
        if task.last_status == PROVISIONING and task.desired_status == "RUNNING":
            place(backend, task)


def run_on_provider(response: EC2ContainerServiceResponse, cluster: Cluster, provider: str) -> list:
    """RunTask's tasks on an EC2 capacity provider: placed, or PROVISIONING."""
    backend = response.ecs_backend
    definition = backend.describe_task_definition(response._get_param("taskDefinition"))
    constraints = response._get_param("placementConstraints") or []
    tasks = []
    for _ in range(response._get_int_param("count", 1)):
        task = EcsTask(
            cluster,
            definition,
            None,
            task_requirements(definition),
            backend=backend,
            group=response._get_param("group") or f"family:{definition.family}",
            launch_type="EC2",  # what ECS reports for a task on an Auto Scaling group provider
            overrides=response._get_param("overrides") or {},
            started_by=response._get_param("startedBy") or "",
            tags=response._get_param("tags") or [],
            networking_configuration=response._get_param("networkConfiguration"),
            capacity_provider_name=provider,
        )
        task.distinct_instance = any(c.get("type") == "distinctInstance" for c in constraints)
        if not place(backend, task):
            task.last_status = PROVISIONING
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        tasks.append(task)
    return tasks


def set_total_resources(instance: ContainerInstance, total: list[dict[str, Any]]) -> None:
    """The CPU and memory the agent registers the instance with (all of it free)."""
    reported = {
        r["name"]: int(r["integerValue"]) for r in total if r.get("name") in ("CPU", "MEMORY")
    }
    for resource in instance.registered_resources + instance.remaining_resources:
        if resource["name"] in reported:
            resource["integerValue"] = reported[resource["name"]]


def install_mixed_instance_types() -> None:
    original = FakeAutoScalingGroup.instance_type

    def instance_type(self: FakeAutoScalingGroup) -> str:
        overrides = ((self.mixed_instances_policy or {}).get("LaunchTemplate") or {}).get(
            "Overrides"
        )
        return original.fget(self) or (overrides[0]["InstanceType"] if overrides else "")

    FakeAutoScalingGroup.instance_type = property(instance_type)


def install_ecs_capacity_providers() -> None:
    original_run = EC2ContainerServiceResponse.run_task
    original_stop = EC2ContainerServiceBackend.stop_task

    def run_task(self: EC2ContainerServiceResponse) -> Any:
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        provider = ec2_provider(
            cluster, self._get_param("launchType"), self._get_param("capacityProviderStrategy")
        )
        if provider is None:
            return original_run(self)
        with _ecs:
            tasks = run_on_provider(self, cluster, provider)
        return ActionResult({"tasks": tasks, "failures": []})

    def stop_task(self: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str):
        cluster = self._get_cluster(cluster_str)
        with _ecs:
            for arn, task in self.tasks.get(cluster.name, {}).items():
                if arn.endswith(task_str.split("/")[-1]) and task.desired_status == "STOPPED":
                    return task  # already stopped: its resources were freed then
            stopped = original_stop(self, cluster_str, task_str, reason)
            place_waiting(self, cluster.name)
            return stopped

    def register_container_instance(self: EC2ContainerServiceResponse) -> Any:
        document = json.loads(self._get_param("instanceIdentityDocument"))
        cluster = self._get_param("cluster", "default")
        with _ecs:
            instance = self.ecs_backend.register_container_instance(cluster, document["instanceId"])
            set_total_resources(instance, self._get_param("totalResources") or [])
            place_waiting(self.ecs_backend, cluster.split("/")[-1])
        return ActionResult({"containerInstance": instance})

    EC2ContainerServiceResponse.run_task = run_task
    EC2ContainerServiceBackend.stop_task = stop_task
    EC2ContainerServiceResponse.register_container_instance = register_container_instance


def install() -> None:
    install_codebuild()
    install_autoscaling_terminate()
    install_ecs_capacity_providers()
    install_mixed_instance_types()
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
