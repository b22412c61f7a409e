"""Cleanup benchmark (issue 7): what the scheduled cleanup leaves after one and two runs.

    python -m local_mode.bench_cleanup [--endpoint http://127.0.0.1:5000]

or `cleanup_benchmark()` (local_mode/bench.py calls it). Self-contained: a moto server on a
free port (or the one at `endpoint`), the GitHub stand-in in a thread, and a fleet created
by local_mode/seed.py, as the control-plane tests create theirs. It seeds what leaky fleets
accumulate:

- orphaned tasks: runner tasks of the fleet that no state record owns;
- stale registrations: offline runners of the fleet at GitHub with no record and no task;
- stuck records: `running` records whose task ECS no longer knows, each with the JIT config
  parameter its runner never read;

then runs the real cleanup (cleanup/run.py run_cleanup, default limits, a 120 s budget as the
module's default Lambda timeout) twice and counts what is left after each run. With the
default limit of 100 task stops per run, 200 orphans take two runs: the goal is 0 after two.
With `endpoint`, that server's ECS tasks are held where RunTask/StopTask leave them (as the
local stack does). The caller's environment is restored afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer

from local_mode.github_api import GitHubAPI
from local_mode.moto_server import MotoServer, hold_ecs_tasks
from local_mode.seed import seed_fleet

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda"
REGION = "us-east-1"
REPO = "Codertocat/Hello-World"
PAT = "ghp_benchcleanuptoken00000000000000000000"
CLASS_SIZES = {"default_class": "small", "classes": {"small": {"cpu": 512, "memory": 1024}}}
LAMBDA_BUDGET_SECONDS = 120.0  # the module's default lambda_timeout
STUCK_FOR_SECONDS = 3600  # how long ago the stuck records last changed


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Sets environment variables for the block and restores the previous ones."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


class BenchFleet:
    """One fleet in the emulator, as the module would create it (with boto3)."""

    def __init__(self, url: str, github: GitHubAPI) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:6]}"
        self.url = url
        self.github = github
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's fixed test credential
            )
        return self._clients[service]

    def create(self) -> dict[str, str]:
        """Creates the fleet's resources; returns the Lambda environment."""
        env = seed_fleet(
            self.prefix,
            class_sizes=CLASS_SIZES,
            repository=REPO,
            secrets={"github-pat": PAT, "webhook-secret": uuid.uuid4().hex},
            image="runner:bench",
            client=self.client,
        )
        self.subnet, self.group = env["SUBNET_IDS"], env["SECURITY_GROUP_IDS"]
        dlq = self.client("sqs").create_queue(QueueName=f"{self.prefix}-events-dlq")["QueueUrl"]
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **env,
            "GITHUB_API_URL": self.github.url,
            "DLQ_URL": dlq,
        }

    # ---------------------------------------------------------------- seeding

    def orphaned_task(self, job_id: int) -> None:
        self.client("ecs").run_task(
            cluster=self.prefix,
            taskDefinition=f"{self.prefix}-small",
            startedBy=f"{self.prefix}-{job_id}",
            capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [self.subnet], "securityGroups": [self.group]}
            },
        )

    def stale_registration(self, job_id: int) -> None:
        body = {"name": f"{self.prefix}-{job_id}", "runner_group_id": 1, "labels": ["self-hosted"]}
        self.github.call(self.github.state.generate_jit, f"repos/{REPO.lower()}", body)

    def stuck_record(self, job_id: int) -> None:
        name = f"{self.prefix}-{job_id}"
        key = f"jit/{name}/{uuid.uuid4().hex}.env"
        at = _iso(time.time() - STUCK_FOR_SECONDS)
        item = {
            "pk": f"job#{job_id}",
            "kind": "runner",
            "job_id": job_id,
            "run_id": job_id,
            "run_attempt": 1,
            "runner_name": name,
            "repository": REPO,
            "labels": ["self-hosted"],
            "class_name": "small",
            "jit_object": key,
            "task_arn": f"arn:aws:ecs:{REGION}:123456789012:task/{self.prefix}/{uuid.uuid4().hex}",
            "status": "running",
            "created_at": at,
            "updated_at": at,
            "history": [{"status": s, "at": at} for s in ("pending", "starting", "running")],
        }
        serializer = TypeSerializer()
        self.client("dynamodb").put_item(
            TableName=f"{self.prefix}-state",
            Item={k: serializer.serialize(v) for k, v in item.items()},
        )
        self.client("s3").put_object(
            Bucket=f"{self.prefix}-jit", Key=key, Body=f"X=never-read-{uuid.uuid4().hex}\n".encode()
        )

    # ---------------------------------------------------------------- counting

    def left(self) -> dict[str, int]:
        ecs = self.client("ecs")
        tasks = ecs.list_tasks(cluster=self.prefix, desiredStatus="RUNNING")["taskArns"]
        configs = 0
        for page in (
            self.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=f"{self.prefix}-jit", Prefix="jit/")
        ):
            configs += len(page.get("Contents", []))
        items = self.client("dynamodb").scan(TableName=f"{self.prefix}-state")["Items"]
        from control_plane.state import TERMINAL  # importable once cleanup_benchmark ran

        return {
            "orphaned_tasks": len(tasks),
            "stale_registrations": len(self.github.runners()),
            "stuck_records": sum(
                1 for i in items if "kind" in i and i["status"]["S"] not in TERMINAL
            ),
            "leftover_configs": configs,
        }


def cleanup_benchmark(
    endpoint: str | None = None,
    *,
    orphaned_tasks: int = 200,
    stale_registrations: int = 50,
    stuck_records: int = 50,
    quiet: bool = True,
) -> dict[str, Any]:
    """Seeds a fleet, runs the cleanup twice and returns what was seeded and what was left."""
    if str(LAMBDA_SRC) not in sys.path:
        sys.path.insert(0, str(LAMBDA_SRC))
    from control_plane import handler
    from control_plane.cleanup.run import run_cleanup
    from control_plane.retry import Deadline
    from control_plane.services import Services
    from control_plane.settings import Settings

    moto = None if endpoint else MotoServer.start()
    url = endpoint or moto.url
    github = GitHubAPI(pats=[PAT], repos=[REPO]).start()
    try:
        hold_ecs_tasks(url)  # tasks stay RUNNING until stopped, as Fargate runners do
        fleet = BenchFleet(url, github)
        env = fleet.create()
        with _environment(env):
            base = 7_000_000_000
            for i in range(orphaned_tasks):
                fleet.orphaned_task(base + i)
            for i in range(stale_registrations):
                fleet.stale_registration(base + 100_000 + i)
            for i in range(stuck_records):
                fleet.stuck_record(base + 200_000 + i)
            seeded = fleet.left()
            runs = []
            for _ in range(2):
                started = time.monotonic()
                output = io.StringIO()
                with contextlib.redirect_stdout(output) if quiet else contextlib.nullcontext():
                    summary = run_cleanup(
                        Services(Settings.from_env(), Deadline(LAMBDA_BUDGET_SECONDS)),
                        replay=handler.route,
                    )
                runs.append(
                    {
                        "seconds": round(time.monotonic() - started, 2),
                        "left": fleet.left(),
                        "counts": {k: v for k, v in summary["counts"].items() if v},
                        "complete": summary["complete"],
                    }
                )
    finally:
        github.stop()
        if moto is not None:
            moto.stop()
    return {
        "seeded": sum(seeded.values()),
        "left_after_run_1": sum(runs[0]["left"].values()),
        "left_after_run_2": sum(runs[1]["left"].values()),
        "seeded_by_kind": seeded,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running moto server (default: start one)")
    parser.add_argument("--orphaned-tasks", type=int, default=200)
    args = parser.parse_args(argv)
    result = cleanup_benchmark(args.endpoint, orphaned_tasks=args.orphaned_tasks)
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result["left_after_run_2"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
