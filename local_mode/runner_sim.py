"""Runner lifecycle simulator: what a runner task and ECS would do, against the emulator.

moto starts no containers and emits no events, so for every new RUNNING task of the
fleet's cluster this process plays, in order:

1. ECS: the "ECS Task State Change" event with lastStatus RUNNING;
2. the runner entrypoint: reads its one-shot JIT config from the SSM parameter named in the
   container override JIT_CONFIG_PARAMETER, deletes it, and registers with the GitHub
   stand-in using that config;
3. GitHub: the signed `workflow_job` `in_progress` and, after the job, `completed`
   webhooks, through the local webhook endpoint (as GitHub would POST them);
4. ECS: the container exits 0, the task stops (StopTask in moto) and the
   "ECS Task State Change" event with lastStatus STOPPED reaches the handler.

A task stopped by someone else (the control plane's reaper, `ecsrunner runners terminate`)
gets its STOPPED event too, with exit code 143 (SIGTERM), and no `completed` webhook from
the runner (GitHub would send it with conclusion `cancelled`; the simulator does too).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import requests

from local_mode import send_job
from local_mode.moto_server import hold_ecs_tasks
from local_mode.webhook_server import eventbridge_envelope

LOG = logging.getLogger("local_mode.runner_sim")
RUNNER_CONTAINER = "runner"
EXIT_REASON = "Essential container in task exited"


def iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def task_env(task: dict, name: str, container: str = RUNNER_CONTAINER) -> str | None:
    for override in task.get("overrides", {}).get("containerOverrides", []):
        if override.get("name", container) != container:
            continue
        for pair in override.get("environment", []):
            if pair.get("name") == name:
                return pair.get("value")
    return None


def task_tags(task: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in task.get("tags", []) if "key" in tag}


def decode_jit_config(encoded: str) -> dict:
    """What the runner learns from ACTIONS_RUNNER_INPUT_JITCONFIG (best effort).

    GitHub's encoded_jit_config is base64 JSON whose ".runner" member is base64 JSON with
    AgentId, AgentName, PoolId, ServerUrl... The stand-in may use the same format.
    """
    info: dict[str, Any] = {}
    try:
        outer = json.loads(base64.b64decode(encoded))
    except ValueError:
        return info
    if not isinstance(outer, dict):
        return info
    runner = outer.get(".runner")
    if isinstance(runner, str):
        with contextlib.suppress(ValueError):
            runner = json.loads(base64.b64decode(runner))
    if isinstance(runner, dict):
        info.update(runner)
    for key, value in outer.items():
        if not key.startswith("."):
            info.setdefault(key, value)
    return info


def task_state_change(task: dict, last_status: str, **overrides: Any) -> dict:
    """An "ECS Task State Change" event shaped as ECS emits it to EventBridge."""
    task_arn = task["taskArn"]
    region = task_arn.split(":")[3]
    account = task_arn.split(":")[4]
    now = iso()
    stopped = last_status == "STOPPED"
    exit_code = overrides.pop("exit_code", 0 if stopped else None)
    container = {
        "containerArn": f"arn:aws:ecs:{region}:{account}:container/{uuid.uuid4()}",
        "lastStatus": last_status,
        "name": RUNNER_CONTAINER,
        "taskArn": task_arn,
        "networkInterfaces": [],
        "cpu": "0",
    }
    for moto_container in task.get("containers", []):
        if moto_container.get("name") == RUNNER_CONTAINER:
            container["image"] = moto_container.get("image", "")
    if stopped:
        container["exitCode"] = exit_code
    detail: dict[str, Any] = {
        "attachments": task.get("attachments", []),
        "availabilityZone": task.get("availabilityZone", f"{region}a"),
        "clusterArn": task["clusterArn"],
        "containers": [container],
        "createdAt": iso(_epoch(task.get("createdAt"))),
        "launchType": task.get("launchType") or "FARGATE",
        "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
        "cpu": str(task.get("cpu", "")),
        "memory": str(task.get("memory", "")),
        "desiredStatus": "STOPPED" if stopped else "RUNNING",
        "group": task.get("group", ""),
        "lastStatus": last_status,
        "overrides": task.get("overrides", {}),
        "connectivity": "CONNECTED",
        "connectivityAt": now,
        "pullStartedAt": now,
        "pullStoppedAt": now,
        "startedAt": now,
        "startedBy": task.get("startedBy", ""),
        "taskArn": task_arn,
        "taskDefinitionArn": task["taskDefinitionArn"],
        "updatedAt": now,
        "version": 2,
        "platformVersion": task.get("platformVersion") or "1.4.0",
    }
    if stopped:
        detail.update(
            {
                "executionStoppedAt": now,
                "stoppingAt": now,
                "stoppedAt": now,
                "stopCode": "EssentialContainerExited",
                "stoppedReason": EXIT_REASON,
                "version": 4,
            }
        )
    detail.update(overrides)
    return eventbridge_envelope(
        {
            "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "time": now[:19] + "Z",
            "resources": [task_arn],
            "detail": detail,
        },
        account=account,
        region=region,
    )


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return None


ENTRYPOINT = Path(__file__).resolve().parent.parent / "runner" / "entrypoint.sh"
RUN_SH = """#!/usr/bin/env bash
# local mode's stand-in for the Actions runner's run.sh: hands the JIT config back.
umask 077
printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" > "$LOCAL_MODE_JIT_OUT"
"""


def real_entrypoint_available() -> bool:
    tools = ("bash", "curl", "jq", "openssl", "sha256sum", "od")
    return ENTRYPOINT.is_file() and all(shutil.which(tool) for tool in tools)


def run_real_entrypoint(parameter: str, settings: Settings) -> tuple[str | None, int]:
    """Runs runner/entrypoint.sh as the container would; returns (JIT config, exit code)."""
    with tempfile.TemporaryDirectory(prefix="runner-") as work:
        run_sh = Path(work) / "run.sh"
        run_sh.write_text(RUN_SH)
        run_sh.chmod(0o700)
        out = Path(work) / "jit"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": work,
            "JIT_CONFIG_PARAMETER": parameter,
            "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
            "AWS_REGION": settings.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "ENTRYPOINT_MAX_ATTEMPTS": "2",
            "LOCAL_MODE_JIT_OUT": str(out),
        }
        result = subprocess.run(
            ["bash", str(ENTRYPOINT)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for line in (result.stderr or "").splitlines():
            LOG.info("entrypoint: %s", line)
        if result.returncode != 0 or not out.exists():
            return None, result.returncode or 1
        return out.read_text(), 0


class GitHubStandIn:
    """The runner's side of the GitHub stand-in (local_mode/github_api.py), over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def register(self, runner_name: str, jit_config: str) -> dict:
        """The runner connects with its JIT config; returns what the stand-in knows of it."""
        try:
            response = requests.post(
                f"{self.url}/_local/runners/connect",
                json={"runner_name": runner_name, "encoded_jit_config": jit_config},
                timeout=10,
            )
        except requests.RequestException as exc:
            LOG.warning("GitHub stand-in unreachable: %s", exc)
            return {}
        if response.status_code >= 400:
            LOG.warning("stand-in refused runner %s: %s", runner_name, response.text[:200])
            return {}
        with contextlib.suppress(ValueError):
            return response.json()
        return {}


@dataclass
class Settings:
    region: str
    aws_endpoint_url: str
    cluster_name: str
    webhook_url: str
    events_url: str
    webhook_secret: str
    github_api_url: str
    github_repo: str
    job_seconds: float = 1.0
    poll_seconds: float = 0.5
    conclusion: str = "success"
    real_entrypoint: bool = True

    @classmethod
    def from_stack(cls, stack: dict, **extra: Any) -> Settings:
        names = cls.__dataclass_fields__
        values = {key: stack[key] for key in names if key in stack}
        values.update({k: v for k, v in extra.items() if v is not None})
        return cls(**values)


@dataclass
class Tracked:
    task_arn: str
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    stopping_by_us: bool = False
    task: dict = field(default_factory=dict)
    runner: dict = field(default_factory=dict)
    job_started: bool = False


class RunnerSimulator:
    def __init__(self, settings: Settings, post: Callable[..., Any] | None = None) -> None:
        self.settings = settings
        kwargs = {"endpoint_url": settings.aws_endpoint_url, "region_name": settings.region}
        self.ecs = boto3.client("ecs", **kwargs)
        self.ssm = boto3.client("ssm", **kwargs)
        self.github = GitHubStandIn(settings.github_api_url)
        self.post = post or requests.post
        self.tracked: dict[str, Tracked] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()

    # ---- delivery

    def deliver_event(self, event: dict) -> None:
        response = self.post(self.settings.events_url, json=event, timeout=60)
        if response.status_code >= 300:
            LOG.error("event %s refused: %s %s", event["id"], response.status_code, response.text)

    def deliver_webhook(self, action: str, task: dict, runner: dict, **fields: Any) -> None:
        tags = task_tags(task)
        job_id = int(tags.get("job_id") or runner.get("job_id") or 0)
        if not job_id:
            LOG.warning("task %s has no job_id tag: no %s webhook", task["taskArn"], action)
            return
        labels = runner.get("labels") or []
        if labels and isinstance(labels[0], dict):
            labels = [label.get("name") for label in labels]
        payload = send_job.workflow_job_payload(
            action,
            labels=labels,
            job_id=job_id,
            repository=tags.get("repository") or self.settings.github_repo,
            run_id=int(tags["run_id"]) if tags.get("run_id") else None,
            runner_name=runner.get("name") or task.get("startedBy"),
            runner_id=runner.get("id"),
            **fields,
        )
        delivery = send_job.build_delivery(
            self.settings.webhook_url, payload, self.settings.webhook_secret
        ).send(timeout=60)
        LOG.info("webhook workflow_job/%s job %s → %s", action, job_id, delivery.status)

    # ---- lifecycle

    def describe(self, task_arns: list[str]) -> list[dict]:
        tasks: list[dict] = []
        for start in range(0, len(task_arns), 100):
            chunk = task_arns[start : start + 100]
            tasks += self.ecs.describe_tasks(
                cluster=self.settings.cluster_name, tasks=chunk, include=["TAGS"]
            ).get("tasks", [])
        return tasks

    def list_tasks(self, desired: str) -> list[str]:
        arns: list[str] = []
        paginator = self.ecs.get_paginator("list_tasks")
        for page in paginator.paginate(cluster=self.settings.cluster_name, desiredStatus=desired):
            arns += page.get("taskArns", [])
        return arns

    def entrypoint(self, task: dict) -> tuple[dict, int]:
        """What runner/entrypoint does before the runner starts; returns (runner, exit code).

        With bash, curl, jq and openssl at hand this runs the real runner/entrypoint.sh
        (container environment: JIT_CONFIG_PARAMETER, the emulator's endpoint and keys) with
        a stand-in ./run.sh that hands ACTIONS_RUNNER_INPUT_JITCONFIG back; otherwise it does
        the same steps with boto3.
        """
        parameter = task_env(task, "JIT_CONFIG_PARAMETER")
        runner_name = task.get("startedBy", "")
        if not parameter:
            LOG.error("task %s: no JIT_CONFIG_PARAMETER override", task["taskArn"])
            return {}, 2
        if self.settings.real_entrypoint and real_entrypoint_available():
            value, code = run_real_entrypoint(parameter, self.settings)
            if code != 0 or value is None:
                LOG.error("runner %s: entrypoint exited %s", runner_name, code)
                return {}, code or 1
        else:
            try:
                value = self.ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"][
                    "Value"
                ]
            except self.ssm.exceptions.ParameterNotFound:
                LOG.error("task %s: JIT config %s not found", task["taskArn"], parameter)
                return {}, 3
            self.ssm.delete_parameter(Name=parameter)
        LOG.info("runner %s read and deleted %s", runner_name, parameter)
        runner = decode_jit_config(value)
        registered = self.github.register(runner_name, value)
        runner.update(registered.get("runner", registered) if registered else {})
        runner.setdefault("name", runner.get("AgentName") or runner_name)
        runner.setdefault("id", runner.get("AgentId"))
        return runner, 0

    def run_task(self, task: dict) -> None:
        arn = task["taskArn"]
        self.deliver_event(task_state_change(task, "RUNNING"))
        runner, exit_code = self.entrypoint(task)
        if exit_code == 0:
            with self.lock:
                self.tracked[arn].runner = runner
                self.tracked[arn].job_started = True
            self.deliver_webhook("in_progress", task, runner)
            if self.stop_event.wait(self.settings.job_seconds):
                return
            if self.still_running(arn):
                self.deliver_webhook("completed", task, runner, conclusion=self.settings.conclusion)
        with self.lock:
            tracked = self.tracked[arn]
            if tracked.finished:
                return
            tracked.stopping_by_us = True
        stopped = self.ecs.stop_task(
            cluster=self.settings.cluster_name, task=arn, reason=EXIT_REASON
        )["task"]
        self.finish(stopped, exit_code=exit_code)

    def still_running(self, arn: str) -> bool:
        with self.lock:
            return not self.tracked[arn].finished

    def finish(self, task: dict, exit_code: int, external: bool = False) -> None:
        with self.lock:
            tracked = self.tracked[task["taskArn"]]
            if tracked.finished:
                return
            tracked.finished = True
        overrides: dict[str, Any] = {"exit_code": exit_code}
        if external:
            overrides.update(
                stopCode="UserInitiated", stoppedReason=task.get("stoppedReason") or "Task stopped"
            )
        self.deliver_event(task_state_change(task, "STOPPED", **overrides))
        LOG.info("task %s stopped (exit %s)", task["taskArn"].rsplit("/", 1)[-1], exit_code)

    def safe(self, target: Callable[..., None], *args: Any) -> None:
        try:
            target(*args)
        except Exception:
            LOG.exception("simulating %s failed", target.__name__)

    def poll_once(self) -> None:
        running = self.list_tasks("RUNNING")
        new = [arn for arn in running if arn not in self.tracked]
        if new:
            for task in self.describe(new):
                with self.lock:
                    self.tracked[task["taskArn"]] = Tracked(task["taskArn"], task=task)
                LOG.info("task %s is RUNNING (%s)", task["taskArn"], task.get("startedBy"))
                threading.Thread(target=self.safe, args=(self.run_task, task), daemon=True).start()
        with self.lock:
            watching = [
                arn
                for arn, tracked in self.tracked.items()
                if not tracked.finished and not tracked.stopping_by_us and arn not in running
            ]
        if watching:
            for task in self.describe(watching):
                if task.get("lastStatus") == "STOPPED" or task.get("desiredStatus") == "STOPPED":
                    self.safe(self.cancelled, task)

    def cancelled(self, task: dict) -> None:
        """Someone else stopped the task: SIGTERM to the runner, GitHub cancels the job."""
        with self.lock:
            tracked = self.tracked[task["taskArn"]]
            job_started, runner, started = tracked.job_started, tracked.runner, tracked.task
        self.finish(task, exit_code=143, external=True)
        if job_started:
            self.deliver_webhook("completed", started or task, runner, conclusion="cancelled")

    def run(self) -> None:
        hold_ecs_tasks(self.settings.aws_endpoint_url)
        LOG.info("watching cluster %s", self.settings.cluster_name)
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                LOG.exception("poll failed")
            self.stop_event.wait(self.settings.poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local runner lifecycle simulator")
    parser.add_argument("--stack-file", type=Path, required=True)
    parser.add_argument("--job-seconds", type=float, default=None)
    parser.add_argument("--poll-seconds", type=float, default=None)
    parser.add_argument("--conclusion", default=None)
    parser.add_argument(
        "--python-entrypoint",
        action="store_true",
        help="do the entrypoint's steps with boto3 instead of running runner/entrypoint.sh",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stack = json.loads(args.stack_file.read_text())
    settings = Settings.from_stack(
        stack,
        job_seconds=args.job_seconds,
        poll_seconds=args.poll_seconds,
        conclusion=args.conclusion,
        real_entrypoint=False if args.python_entrypoint else None,
    )
    simulator = RunnerSimulator(settings)
    signal.signal(signal.SIGTERM, lambda *_: simulator.stop_event.set())
    with contextlib.suppress(KeyboardInterrupt):
        simulator.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
