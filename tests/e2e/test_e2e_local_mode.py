"""End to end: the whole fleet on loopback, brought up once for this module.

The stack comes up through `python -m local_mode up` (what `make local-up` runs), in a
state dir of its own (LOCAL_MODE_DIR) so a developer's running `make demo` is left alone,
and goes down through `python -m local_mode down`. The tests run in file order: the job
sent by the first one is followed through the later ones.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from boto3.dynamodb.types import TypeDeserializer
from control_plane.state import RANK

from local_mode import send_job
from local_mode import stack as local_stack
from local_mode.github_api import DEFAULT_PAT
from tests.control_plane import emf

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASS = "medium"
TERMINAL = {"completed", "failed", "stopped", "rejected"}
FAILING_BASES = "docker.io/library/debian:*"  # local mode's CodeBuild fails these builds


def run_local_mode(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "local_mode", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"local_mode {' '.join(args)} failed:\n{output}"
    return output


class Stack:
    """The running stack as the tests see it: stack.json, AWS clients, a shared notebook."""

    def __init__(self, data: dict, env: dict[str, str], state_dir: Path) -> None:
        self.data = data
        self.env = env
        self.state_dir = state_dir
        self.notes: dict[str, Any] = {}
        kwargs = {
            "endpoint_url": data["aws_endpoint_url"],
            "region_name": data["region"],
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.ecs = boto3.client("ecs", **kwargs)
        self.ssm = boto3.client("ssm", **kwargs)
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.ecr = boto3.client("ecr", **kwargs)
        self.codebuild = boto3.client("codebuild", **kwargs)
        self.ec2 = boto3.client("ec2", **kwargs)
        # The JIT config bucket lets only the control plane's role list it.
        role = boto3.client("sts", **kwargs).assume_role(
            RoleArn=data["lambda_role_arn"], RoleSessionName="e2e-test"
        )["Credentials"]
        self.s3 = boto3.client(
            "s3",
            endpoint_url=data["aws_endpoint_url"],
            region_name=data["region"],
            aws_access_key_id=role["AccessKeyId"],
            aws_secret_access_key=role["SecretAccessKey"],
            aws_session_token=role["SessionToken"],
        )

    def record(self, job_id: int) -> dict | None:
        item = self.dynamodb.get_item(
            TableName=self.data["runner_table"],
            Key={"pk": {"S": f"job#{job_id}"}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        deserializer = TypeDeserializer()
        return {key: deserializer.deserialize(value) for key, value in item.items()}

    def records(self) -> list[dict]:
        """Job and build records (not the JIT pacer's schedule, which has no `kind`)."""
        items = self.dynamodb.scan(TableName=self.data["runner_table"]).get("Items", [])
        deserializer = TypeDeserializer()
        return [
            {k: deserializer.deserialize(v) for k, v in item.items()}
            for item in items
            if "kind" in item
        ]

    def task_arns(self, started_by: str | None = None) -> list[str]:
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            kwargs: dict[str, Any] = {
                "cluster": self.data["cluster_name"],
                "desiredStatus": desired,
            }
            if started_by:
                kwargs["startedBy"] = started_by
            for page in self.ecs.get_paginator("list_tasks").paginate(**kwargs):
                arns += page.get("taskArns", [])
        return sorted(set(arns))

    def describe(self, arn: str) -> dict:
        tasks = self.ecs.describe_tasks(
            cluster=self.data["cluster_name"], tasks=[arn], include=["TAGS"]
        )["tasks"]
        assert len(tasks) == 1
        return tasks[0]


def wait_for(
    check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or check} (last: {value!r})")


def finished(stack: Stack, job_id: int, timeout: float) -> dict:
    """The job's record once its status is terminal."""
    return wait_for(
        lambda: (r := stack.record(job_id)) and r.get("status") in TERMINAL and r,
        timeout=timeout,
        what=f"job {job_id} to finish",
    )


def runner_name(stack: Stack, job_id: int) -> str:
    return f"{stack.data['name_prefix']}-{job_id}"


def port_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: local mode applies the real module")
    state_dir = tmp_path_factory.mktemp("local-mode")
    env = {**os.environ, "LOCAL_MODE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    try:
        # Jobs last a few seconds so the tests can look at a running task.
        run_local_mode(env, "up", "--job-seconds", "3", "--fail-builds", FAILING_BASES)
        data = json.loads((state_dir / "stack.json").read_text())
        yield Stack(data, env, state_dir)
    finally:
        subprocess.run(
            [sys.executable, "-m", "local_mode", "down"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_stack_json_has_the_contract_keys(stack: Stack) -> None:
    for key in (
        "region",
        "aws_endpoint_url",
        "github_api_url",
        "webhook_url",
        "webhook_secret",
        "runner_table",
        "class_sizes_parameter",
        "cluster_name",
    ):
        assert stack.data.get(key), key
    env_text = (stack.state_dir / "env").read_text()
    for name in ("AWS_ENDPOINT_URL", "RUNNER_TABLE", "CLASS_SIZES_PARAM", "CLUSTER_NAME"):
        assert f"export {name}=" in env_text
    sizes = json.loads(
        stack.ssm.get_parameter(Name=stack.data["class_sizes_parameter"])["Parameter"]["Value"]
    )
    for name, size in stack.data["class_sizes"].items():
        shown = sizes["classes"][name]
        assert {key: shown[key] for key in size} == size, (name, shown)
    assert sizes["classes"]["docker"]["capacity_provider"] == (
        f"{stack.data['name_prefix']}-docker-x86_64"
    )


def test_queued_job_becomes_exactly_one_task_of_the_class_size(stack: Stack) -> None:
    delivery = send_job.queued_job(stack.data, ["self-hosted", f"class:{CLASS}"]).send()
    assert delivery.status == 202, delivery.response
    stack.notes["delivery"] = delivery
    job_id = delivery.job_id
    name = runner_name(stack, job_id)

    record = wait_for(
        lambda: (r := stack.record(job_id)) and r.get("task_arn") and r,
        what=f"a task for job {job_id}",
    )
    arns = stack.task_arns(started_by=name)
    assert arns == [record["task_arn"]]

    task = stack.describe(arns[0])
    tags = {tag["key"]: tag["value"] for tag in task.get("tags", [])}
    assert tags.get("job_id") == str(job_id)
    definition = stack.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    size = stack.data["class_sizes"][CLASS]
    assert definition["family"] == f"{stack.data['name_prefix']}-{CLASS}"
    assert int(definition["cpu"]) == size["cpu"]
    assert int(definition["memory"]) == size["memory"]
    if "cpu" in task:  # moto leaves the task-level sizes out; AWS reports them
        assert int(task["cpu"]) == size["cpu"]
        assert int(task["memory"]) == size["memory"]
    assert record["class_name"] == CLASS


def test_redelivery_of_the_same_webhook_adds_nothing(stack: Stack) -> None:
    delivery: send_job.Delivery = stack.notes["delivery"]
    before_tasks = stack.task_arns()
    before_records = len(stack.records())

    again = send_job.Delivery(url=delivery.url, body=delivery.body, headers=delivery.headers)
    again.send()
    assert again.status == 202, again.response
    assert again.response["results"][0]["result"] == "duplicate", again.response
    time.sleep(2)  # the simulator polls every 0.5 s: a task would show by now

    assert stack.task_arns() == before_tasks
    assert stack.task_arns(started_by=runner_name(stack, delivery.job_id)) == [
        stack.record(delivery.job_id)["task_arn"]
    ]
    assert len(stack.records()) == before_records


def test_bad_signature_adds_nothing(stack: Stack) -> None:
    before_tasks = stack.task_arns()
    forged = send_job.queued_job(
        stack.data, ["self-hosted", f"class:{CLASS}"], bad_signature=True
    ).send()
    assert forged.status == 202, forged.response
    assert forged.response["results"][0]["result"] == "refused", forged.response
    time.sleep(2)

    assert stack.task_arns() == before_tasks
    assert stack.task_arns(started_by=runner_name(stack, forged.job_id)) == []
    assert stack.record(forged.job_id) is None  # refused before anything is recorded


def test_full_lifecycle_reaches_completed_and_the_task_stops(stack: Stack) -> None:
    delivery: send_job.Delivery = stack.notes["delivery"]
    record = finished(stack, delivery.job_id, timeout=60)
    assert record["status"] == "completed", record
    assert record["conclusion"] == "success"

    task = wait_for(
        lambda: (t := stack.describe(record["task_arn"]))["lastStatus"] == "STOPPED" and t,
        what="the task to stop",
    )
    assert task["desiredStatus"] == "STOPPED"

    # ECS read the one-shot JIT config, and the control plane deleted it once the task ran.
    listed = stack.s3.list_objects_v2(Bucket=stack.data["jit_bucket"], Prefix="jit/")
    assert record["jit_object"].startswith(f"jit/{record['runner_name']}/")
    assert record["jit_object"] not in [item["Key"] for item in listed.get("Contents", [])]

    # The timeline went forwards through the states the simulator drove.
    history = [entry["status"] for entry in record["history"]]
    assert history[0] == "pending" and history[-1] == "completed", history
    assert "busy" in history, history  # the in_progress webhook named the runner
    ranks = [RANK[status] for status in history]
    assert ranks == sorted(ranks), history  # never backwards

    # The runner ran its job for the stack's job_seconds (stack.json → the simulator).
    job = github_job(stack, delivery.job_id)
    took = datetime.fromisoformat(job["completed_at"]) - datetime.fromisoformat(job["started_at"])
    assert took.total_seconds() >= stack.data["job_seconds"] == 3, job


def test_a_job_that_ran_shows_its_wait_start_and_cost_in_stats_and_metrics(stack: Stack) -> None:
    """Issue 13's end to end: the finished job's queue wait, start time and a non-zero cost in
    `ecsrunner stats -o json`, and the Lambda's EMF lines in the stack's log, all valid."""
    delivery: send_job.Delivery = stack.notes["delivery"]
    record = wait_for(
        lambda: (r := stack.record(delivery.job_id)) and r.get("cost_usd") and r,
        timeout=60,
        what=f"job {delivery.job_id} to be billed",
    )
    result = ecsrunner(stack, "stats", "--since", "1h", "-o", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["by_class"][record["class_name"]]
    assert shown["outcomes"]["completed"] >= 1
    assert shown["queue_wait_seconds"]["max"] >= float(record["queue_wait_seconds"]) > 0
    assert shown["start_seconds"]["max"] is not None
    assert shown["cost_usd"]["total"] >= float(record["cost_usd"]) > 0

    log = (stack.state_dir / "logs" / "webhook.log").read_text(encoding="utf-8")
    lines = [line for line in log.splitlines() if line.startswith("{") and '"_aws"' in line]
    published = emf.measurements("\n".join(lines))
    names = {m.name for m in published if m.dimensions.get("Class") == record["class_name"]}
    assert {"JobsQueued", "RunnersLaunched", "QueueWaitSeconds", "JobCostUSD"} <= names


def test_a_hostile_job_step_cannot_touch_another_runners_pending_config(
    stack: Stack, tmp_path: Path
) -> None:
    """Point 4 of the threat model in the local stack: runner A's job step (run by the
    simulator's run.sh stand-in after the real entrypoint, with the environment steps get)
    attacks runner B's pending config, with what it finds and with the task role's stolen
    credentials and B's exact key. Every attempt is refused; B's config is intact."""
    bucket = stack.data["jit_bucket"]
    victim = f"{stack.data['name_prefix']}-{send_job.new_job_id()}"
    key = f"jit/{victim}/{secrets.token_hex(20)}.env"
    stack.s3.put_object(Bucket=bucket, Key=key, Body=b"ACTIONS_RUNNER_INPUT_JITCONFIG=eyJ9\n")
    definition = stack.ecs.describe_task_definition(
        taskDefinition=f"{stack.data['name_prefix']}-{CLASS}"
    )["taskDefinition"]
    sts = boto3.client(
        "sts",
        endpoint_url=stack.data["aws_endpoint_url"],
        region_name=stack.data["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stolen = sts.assume_role(RoleArn=definition["taskRoleArn"], RoleSessionName="stolen")[
        "Credentials"
    ]
    stolen_file = tmp_path / "stolen.json"
    stolen_file.write_text(
        json.dumps(
            {
                "aws_access_key_id": stolen["AccessKeyId"],
                "aws_secret_access_key": stolen["SecretAccessKey"],
                "aws_session_token": stolen["SessionToken"],
            }
        )
    )
    job_id = send_job.new_job_id()
    steps = stack.state_dir / "job-steps"
    steps.mkdir(exist_ok=True)
    (steps / str(job_id)).write_text(
        f"PYTHONPATH={REPO_ROOT} {sys.executable} -m local_mode.hostile_step"
        f" --bucket {bucket} --victim {victim} --known-key {key}"
        f" --stolen-credentials {stolen_file} --endpoint {stack.data['aws_endpoint_url']}"
    )
    delivery = send_job.queued_job(stack.data, ["self-hosted", f"class:{CLASS}"], job_id=job_id)
    assert delivery.send().status == 202

    report = steps / f"{job_id}.report"
    text = wait_for(lambda: report.is_file() and report.read_text().strip(), what="the step")
    attempts = json.loads(text)
    assert [a for a in attempts if not a["refused"]] == []
    (found,) = [a for a in attempts if a["attempt"] == "credential variables"]
    assert found["found"] == []
    assert {f"stolen: read {key}", f"stolen: delete {key}", "stolen: list jit/"} <= {
        a["attempt"] for a in attempts
    }
    listed = stack.s3.list_objects_v2(Bucket=bucket, Prefix=f"jit/{victim}/")
    assert [item["Key"] for item in listed.get("Contents", [])] == [key]
    stack.s3.delete_object(Bucket=bucket, Key=key)


def ecsrunner(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """The CLI against the local stack, as `make demo` prints how to run it."""
    env = {**local_stack.cli_env(stack.data), "LOCAL_MODE_DIR": str(stack.state_dir)}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "ecsrunner_cli.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def github_job(stack: Stack, job_id: int) -> dict:
    """What the GitHub stand-in shows of a job (its REST API, with the stack's PAT)."""
    response = requests.get(
        f"{stack.data['github_api_url']}/repos/{stack.data['github_repo']}/actions/jobs/{job_id}",
        headers={"Authorization": f"Bearer {DEFAULT_PAT}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def test_githubs_matching_a_displaced_job_still_runs_once(stack: Stack) -> None:
    """GitHub gives the runner made for a large job an older small job whose webhook was lost;
    the large job gets a new runner at once, and both jobs run exactly once."""
    small, large = send_job.new_job_id(), send_job.new_job_id()
    lost = send_job.workflow_job_payload(
        "queued", labels=["self-hosted"], job_id=small, repository=stack.data["github_repo"]
    )
    send_job.seed_job(stack.data["github_api_url"], lost["workflow_job"], stack.data["github_repo"])
    delivery = send_job.queued_job(stack.data, ["self-hosted", "class:large"], job_id=large)
    assert delivery.send().status == 202

    done = {
        job_id: wait_for(
            lambda job_id=job_id: (j := github_job(stack, job_id))["status"] == "completed" and j,
            timeout=90,
            what=f"job {job_id} to complete at GitHub",
        )
        for job_id in (small, large)
    }
    first, second = runner_name(stack, large), f"{runner_name(stack, large)}-2"
    assert done[small]["runner_name"] == first  # GitHub's choice, not ours
    assert done[large]["runner_name"] == second
    assert {job["conclusion"] for job in done.values()} == {"success"}
    record = wait_for(
        lambda: (r := stack.record(large)) and r.get("status") == "completed" and r,
        what="the large job's record to complete",
    )
    assert (record["runner_name"], record["displacements"]) == (second, 1)
    assert len(stack.task_arns(started_by=first)) == len(stack.task_arns(started_by=second)) == 1


def test_runners_terminate_removes_an_idle_runner(stack: Stack) -> None:
    """A runner waiting for a job is idle at GitHub, so it can be deregistered."""
    job_id = send_job.new_job_id()
    payload = send_job.workflow_job_payload(
        "queued", labels=["self-hosted"], job_id=job_id, repository=stack.data["github_repo"]
    )  # a job GitHub does not show queued: its runner waits, idle
    delivery = send_job.build_delivery(
        stack.data["webhook_url"], payload, stack.data["webhook_secret"]
    )
    assert delivery.send().status == 202
    name = runner_name(stack, job_id)
    wait_for(
        lambda: (r := stack.record(job_id)) and r.get("status") == "running",
        what="the runner to start",
    )
    result = ecsrunner(stack, "runners", "terminate", name, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "still busy" not in result.stdout
    runners = requests.get(
        f"{stack.data['github_api_url']}/repos/{stack.data['github_repo']}/actions/runners",
        params={"name": name},
        headers={"Authorization": f"Bearer {DEFAULT_PAT}"},
        timeout=10,
    ).json()
    assert runners["total_count"] == 0, runners
    (arn,) = stack.task_arns(started_by=name)
    assert stack.describe(arn)["desiredStatus"] == "STOPPED"


def ec2_instance_of(stack: Stack, container_instance: str) -> str:
    (described,) = stack.ecs.describe_container_instances(
        cluster=stack.data["cluster_name"], containerInstances=[container_instance]
    )["containerInstances"]
    return described["ec2InstanceId"]


def test_docker_jobs_run_one_per_instance_on_the_ec2_capacity_provider(stack: Stack) -> None:
    """Issue 14's end to end: a `class:docker` job's RunTask goes to the EC2 capacity provider
    and its task onto the instance the stack registered; a second one, sent while the first
    runs, waits in PROVISIONING (distinctInstance, one instance, drained: single use) and runs
    on the fresh instance that replaces the first once the first's task has stopped (the
    group's minimum is 1). Both complete at GitHub; the used instance is terminated."""
    provider = f"{stack.data['name_prefix']}-docker-x86_64"
    (instance,) = stack.data["container_instances"]  # docker_min_instances = 1
    ec2_ids = [ec2_instance_of(stack, instance)]
    labels = ["self-hosted", "class:docker"]
    jobs = []
    for _ in range(2):
        delivery = send_job.queued_job(stack.data, labels)
        assert delivery.send().status == 202, delivery.response
        jobs.append(delivery.job_id)
        record = wait_for(
            lambda job_id=delivery.job_id: (r := stack.record(job_id)) and r.get("task_arn") and r,
            what=f"a task for job {delivery.job_id}",
        )
        task = stack.describe(record["task_arn"])
        assert task["capacityProviderName"] == provider, task
        assert task["launchType"] == "EC2"
        if len(jobs) == 1:
            first = task
            assert (task["lastStatus"], task["containerInstanceArn"]) == ("RUNNING", instance)
        elif stack.describe(first["taskArn"])["lastStatus"] == "RUNNING":  # still on it
            assert task["lastStatus"] == "PROVISIONING" and "containerInstanceArn" not in task

    # the second runs on the instance that replaced the first; seen while it runs (ECS
    # deregisters an instance once it is terminated)
    second = wait_for(
        lambda: (t := stack.describe(task["taskArn"])).get("containerInstanceArn") and t,
        timeout=60,
        what="the second docker task to be placed",
    )
    ec2_ids.append(ec2_instance_of(stack, second["containerInstanceArn"]))

    definition = stack.ecs.describe_task_definition(taskDefinition=first["taskDefinitionArn"])[
        "taskDefinition"
    ]
    assert definition["requiresCompatibilities"] == ["EC2"]
    (runner,) = [c for c in definition["containerDefinitions"] if c["name"] == "runner"]
    assert runner["privileged"] is True

    done = [
        wait_for(
            lambda job_id=job_id: (j := github_job(stack, job_id))["status"] == "completed" and j,
            timeout=90,
            what=f"docker job {job_id} to complete at GitHub",
        )
        for job_id in jobs
    ]
    assert [job["conclusion"] for job in done] == ["success", "success"]
    assert done[1]["started_at"] >= done[0]["completed_at"]  # one job per instance at a time
    placed = []
    for job_id in jobs:
        record = finished(stack, job_id, timeout=30)
        assert record["status"] == "completed", record
        task = stack.describe(record["task_arn"])
        assert task["lastStatus"] == "STOPPED"
        placed.append(task["containerInstanceArn"])
    assert placed[0] == instance and placed[1] != instance  # each instance served one job

    wait_for(
        lambda: all(
            i["State"]["Name"] in ("shutting-down", "terminated")
            for r in stack.ec2.describe_instances(InstanceIds=ec2_ids)["Reservations"]
            for i in r["Instances"]
        ),
        timeout=30,
        what="both used instances to be terminated",
    )


def image_tags(stack: Stack) -> list[str]:
    repository = stack.data["ecr_repository_url"].split("/", 1)[1]
    images = stack.ecr.describe_images(repositoryName=repository)["imageDetails"]
    return [tag for image in images for tag in image.get("imageTags", [])]


def build_variables(stack: Stack, build_id: str) -> dict[str, str]:
    (build,) = stack.codebuild.batch_get_builds(ids=[build_id])["builds"]
    return {v["name"]: v["value"] for v in build["environment"]["environmentVariables"]}


def test_an_image_label_builds_the_image_and_the_job_runs_on_it(stack: Stack) -> None:
    """Image builds are on: the job waits for its build, local mode's CodeBuild pushes the tag
    and sends the build's events, and the runner's task runs that image."""
    delivery = send_job.queued_job(stack.data, ["self-hosted", "image:ubuntu:24.04"]).send()
    assert delivery.status == 202, delivery.response
    record = finished(stack, delivery.job_id, timeout=90)
    assert record["status"] == "completed", record
    history = [entry["status"] for entry in record["history"]]
    assert history[:3] == ["pending", "image-building", "starting"], history

    tag = record["image_tag"]
    assert tag in image_tags(stack)
    builds = stack.codebuild.list_builds_for_project(projectName=stack.data["image_build_project"])
    assert record["build_id"] in builds["ids"]
    variables = build_variables(stack, record["build_id"])
    assert (variables["IMAGE_TAG"], variables["BASE_IMAGE"]) == (
        tag,
        "docker.io/library/ubuntu:24.04",
    )

    task = stack.describe(record["task_arn"])
    definition = stack.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    (runner,) = [
        c for c in definition["taskDefinition"]["containerDefinitions"] if c["name"] == "runner"
    ]
    assert runner["image"] == f"{stack.data['ecr_repository_url']}:{tag}"
    assert definition["taskDefinition"]["family"].endswith("-img")


def test_a_failed_build_fails_the_job_with_the_build_and_its_log(stack: Stack) -> None:
    delivery = send_job.queued_job(stack.data, ["self-hosted", "image:debian:bookworm"]).send()
    assert delivery.status == 202, delivery.response
    record = finished(stack, delivery.job_id, timeout=60)
    assert record["status"] == "failed", record
    assert record["reason"].startswith(
        f"image build {record['build_id']} FAILED (base docker.io/library/debian:bookworm); "
        "logs: https://console.aws.amazon.com/cloudwatch/"
    ), record["reason"]
    assert record["image_tag"] not in image_tags(stack)
    assert stack.task_arns(started_by=runner_name(stack, delivery.job_id)) == []


def test_images_build_prebuilds_an_image(stack: Stack) -> None:
    """`ecsrunner images build` against the local stack: a build starts, local mode's CodeBuild
    pushes the tag and its SUCCEEDED event settles the build record."""
    started = ecsrunner(stack, "images", "build", "node:20", "--output", "json")
    assert started.returncode == 0, started.stdout + started.stderr
    build = json.loads(started.stdout)
    assert (build["status"], build["base_image"]) == ("started", "docker.io/library/node:20")

    def listed() -> dict | None:
        result = ecsrunner(stack, "images", "list", "--output", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        images = json.loads(result.stdout)["images"]
        return next((i for i in images if i["tag"] == build["image_tag"]), None)

    image = wait_for(
        lambda: (i := listed()) and i["build_status"] == "succeeded" and i,
        timeout=30,
        what=f"image {build['image_tag']} to be built",
    )
    assert image["digest"].startswith("sha256:"), image
    again = ecsrunner(stack, "images", "build", "node:20", "--output", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["status"] == "exists"


def test_cli_lists_the_runner(stack: Stack) -> None:
    delivery: send_job.Delivery = stack.notes["delivery"]
    name = runner_name(stack, delivery.job_id)
    result = ecsrunner(stack, "runners", "list", "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)
    ours = [row for row in listed["runners"] if row["runner_name"] == name]
    assert len(ours) == 1, listed
    assert ours[0]["job_id"] == delivery.job_id
    assert ours[0]["status"] == "completed", ours[0]


def make_job(stack: Stack, *args: str) -> tuple[int, str]:
    """`make job` against the stack: (exit code, output)."""
    result = subprocess.run(
        [sys.executable, "-m", "local_mode", "job", *args],
        cwd=REPO_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_make_job_prints_each_status_change_until_the_outcome(stack: Stack) -> None:
    code, output = make_job(stack, "--labels", f"self-hosted,class:{CLASS}")
    assert code == 0, output
    lines = output.splitlines()

    def at(source: str, status: str) -> int:
        found = [i for i, line in enumerate(lines) if line.split()[1:3] == [source, status]]
        assert len(found) == 1, f"one {source} {status} line expected:\n{output}"
        return found[0]

    github = [at("GitHub", s) for s in ("queued", "in_progress", "completed")]
    fleet = [at("fleet", s) for s in ("busy", "completed")]
    assert github == sorted(github) and fleet == sorted(fleet), output
    assert "success" in lines[github[-1]]
    assert lines[-1].startswith("completed: success, run by "), output


def test_make_job_says_why_a_job_was_refused_or_rejected(stack: Stack) -> None:
    code, output = make_job(stack, "--bad-signature")
    assert code == 1 and "refused: signature does not match" in output, output

    known = ", ".join(sorted(stack.data["class_sizes"]))
    code, output = make_job(stack, "--labels", "self-hosted,class:xl", "--no-wait")
    assert code == 1, output
    assert f"rejected: unknown class 'xl' (this fleet has: {known})" in output, output
    assert any(line.split()[1:3] == ["fleet", "rejected"] for line in output.splitlines())


def test_make_job_nowait_returns_at_once_and_a_timeout_says_so(stack: Stack) -> None:
    labels = f"self-hosted,class:{CLASS}"
    code, output = make_job(stack, "--labels", labels, "--no-wait")
    assert code == 0 and "Follow it with" in output and "completed" not in output, output

    # Jobs last job_seconds (3 s): a one-second wait cannot see the outcome.
    code, output = make_job(stack, "--labels", labels, "--timeout", "1")
    assert code == 1, output
    assert "timed out after 1s: GitHub shows the job " in output, output


def test_a_second_up_reuses_the_healthy_stack(stack: Stack) -> None:
    run_local_mode(stack.env, "up", timeout=120)
    again = json.loads((stack.state_dir / "stack.json").read_text())
    assert again["pids"] == stack.data["pids"]
    assert again["ports"] == stack.data["ports"]


def test_down_leaves_no_listening_port(stack: Stack) -> None:
    ports = dict(stack.data["ports"])
    pids = dict(stack.data["pids"])
    assert ports and all(port_listening(port) for port in ports.values())

    run_local_mode(stack.env, "down", timeout=120)

    still = {name: port for name, port in ports.items() if port_listening(port)}
    assert not still, f"still listening: {still}"
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}/cmdline").exists() or _zombie(pid), f"{name} ({pid}) alive"
    assert not (stack.state_dir / "stack.json").exists()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
