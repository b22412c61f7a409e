"""Runner lifecycle simulator: what a runner task and ECS would do, against the emulator.

moto starts no containers and emits no events, so for every new RUNNING task of the
fleet's cluster this process plays, in order:

1. ECS's agent: reads the container's environment files (the RunTask override names the
   JIT config's S3 object) with the task execution role, as ECS does before the container
   starts, then the "ECS Task State Change" event with lastStatus RUNNING;
2. the container: runner/entrypoint.sh with the environment ECS would give it (the task
   definition's variables, the environment file's, and the task role's credentials URI);
   its run.sh stand-in connects to the GitHub stand-in with the config;
3. the runner: waits for the job GitHub gives it, which may be another job than the one its
   task was launched for (the stand-in matches labels as GitHub does and sends the
   `in_progress` and `completed` webhooks), "runs" it, and reports its end;
4. ECS: the container exits 0, the task stops (StopTask in moto) and the
   "ECS Task State Change" event with lastStatus STOPPED reaches the handler.

A task stopped by someone else (the control plane's cleanup, `ecsrunner runners terminate`)
gets its STOPPED event too, with exit code 143 (SIGTERM), and its runner disconnects: GitHub
fails the job it was running. A runner whose registration is removed while it waits exits 1.
A task on an EC2 capacity provider waiting for an instance (lastStatus PROVISIONING) is left
alone until the emulator places it (it is then RUNNING, and played as above, with the launch
type, capacity provider and container instance ECS names in its events); stopped while it
waits, it gets a STOPPED event without having started.
A `fate` (the benchmark's) may make a runner die before it connects (the entrypoint exits 3)
or have its Fargate Spot task interrupted before it takes a job.
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

from local_mode import ecs_agent
from local_mode.moto_server import hold_ecs_tasks, role_session
from local_mode.webhook_server import eventbridge_envelope

LOG = logging.getLogger("local_mode.runner_sim")
RUNNER_CONTAINER = "runner"
EXIT_REASON = "Essential container in task exited"
SPOT_REASON = "Your Spot Task was interrupted."
RUN, DIE, SPOT = "run", "die", "spot"  # fates: the runner works, dies early, is interrupted
DIED_EXIT = 3  # runner/entrypoint.sh: no JIT config (what an early death looks like)
REMOVED_EXIT = 1  # the runner's registration was removed while it waited for a job
PROVISIONING = "PROVISIONING"  # an EC2 capacity provider's task waiting for an instance
AGENT_SECONDS = 5.0  # how often the Docker instances' agents are played with no task waiting
DEFAULT_JOB_SECONDS = 1.0  # how long a runner "runs" its job (`make local-up JOB_SECONDS=`)


def iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def environment_files(task: dict, container: str = RUNNER_CONTAINER) -> list[str]:
    """The S3 ARNs of the container's environment files (RunTask overrides)."""
    return [
        item["value"]
        for override in task.get("overrides", {}).get("containerOverrides", [])
        if override.get("name", container) == container
        for item in override.get("environmentFiles", [])
        if item.get("type") == "s3"
    ]


def parse_env_file(body: str) -> dict[str, str]:
    """ECS's environment file format: VAR=value lines; # comments and blank lines skipped."""
    pairs = (line.split("=", 1) for line in body.splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


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


@dataclass
class Timeline:
    """When one task went through its states (epoch seconds), as all its events report them.

    ECS's fields (the ECS API's Task): createdAt is RunTask; pullStartedAt/pullStoppedAt the
    image pull; startedAt the move to RUNNING; stoppingAt the move to STOPPING,
    executionStoppedAt the containers' exit, stoppedAt the move to STOPPED. A task that never
    started has no pull or start times. Fargate bills from pullStartedAt to stoppedAt.
    """

    created: float
    pull_started: float | None = None
    pull_stopped: float | None = None
    started: float | None = None
    stopping: float | None = None
    stopped: float | None = None

    @classmethod
    def of(cls, task: dict) -> Timeline:
        """A new task's timeline: created when the emulator took its RunTask."""
        return cls(created=_epoch(task.get("createdAt")) or time.time())

    def start(self) -> None:
        """The image pulled (instantly here: there is no image) and the container started."""
        self.pull_started = self.pull_stopped = self.started = time.time()

    def stop(self) -> None:
        self.stopping = self.stopped = time.time()

    def fields(self) -> dict[str, str]:
        times = {
            "createdAt": self.created,
            "connectivityAt": self.pull_started,
            "pullStartedAt": self.pull_started,
            "pullStoppedAt": self.pull_stopped,
            "startedAt": self.started,
            "stoppingAt": self.stopping,
            "executionStoppedAt": self.stopped,
            "stoppedAt": self.stopped,
        }
        return {name: iso(moment) for name, moment in times.items() if moment is not None}


def task_state_change(
    task: dict, last_status: str, timeline: Timeline | None = None, **overrides: Any
) -> dict:
    """An "ECS Task State Change" event shaped as ECS emits it to EventBridge, with the
    task's `timeline` (by default: started, and if STOPPED stopped, just now)."""
    task_arn = task["taskArn"]
    region = task_arn.split(":")[3]
    account = task_arn.split(":")[4]
    now = iso()
    stopped = last_status == "STOPPED"
    if timeline is None:
        timeline = Timeline.of(task)
        timeline.start()
        if stopped:
            timeline.stop()
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
        "launchType": task.get("launchType") or "FARGATE",  # EC2 on an Auto Scaling group
        "capacityProviderName": task.get("capacityProviderName") or "FARGATE",
        "cpu": str(task.get("cpu", "")),
        "memory": str(task.get("memory", "")),
        "desiredStatus": "STOPPED" if stopped else "RUNNING",
        "group": task.get("group", ""),
        "lastStatus": last_status,
        "overrides": task.get("overrides", {}),
        "connectivity": "CONNECTED",
        **timeline.fields(),
        "startedBy": task.get("startedBy", ""),
        "taskArn": task_arn,
        "taskDefinitionArn": task["taskDefinitionArn"],
        "updatedAt": now,
        "version": 2,
        "platformVersion": task.get("platformVersion") or "1.4.0",
    }
    if task.get("containerInstanceArn"):  # a task on an EC2 instance names it
        detail["containerInstanceArn"] = task["containerInstanceArn"]
    if stopped:
        detail.update(
            {
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
# local mode's stand-in for the Actions runner's run.sh: hands the JIT config back and, when
# the job has one, runs its step with the environment the runner gives steps (its own, minus
# the JIT config, which the runner unsets, and this stand-in's plumbing).
umask 077
printf '%s' "$ACTIONS_RUNNER_INPUT_JITCONFIG" > "$LOCAL_MODE_JIT_OUT"
if [ -n "${LOCAL_MODE_JOB_STEP:-}" ]; then
  step="$LOCAL_MODE_JOB_STEP" report="$LOCAL_MODE_JOB_REPORT"
  env -u ACTIONS_RUNNER_INPUT_JITCONFIG -u LOCAL_MODE_JIT_OUT -u LOCAL_MODE_JOB_STEP \\
    -u LOCAL_MODE_JOB_REPORT bash -c "$step" > "$report"
fi
"""
JOB_STEPS = "job-steps"  # <state dir>/job-steps/<job id>: a shell command, the job's one step


def without_docker(env: dict[str, str]) -> dict[str, str]:
    """A Docker class's container environment minus RUNNER_DOCKER: no Docker daemon runs here
    (the entrypoint would start dockerd, as root, before the runner; tests/runner covers that
    on the image), so the simulated container starts the runner at once."""
    return {name: value for name, value in env.items() if name != "RUNNER_DOCKER"}


def real_entrypoint_available() -> bool:
    tools = ("bash",)
    return ENTRYPOINT.is_file() and all(shutil.which(tool) for tool in tools)


def run_real_entrypoint(
    container_env: dict[str, str], step: str | None = None, report: Path | None = None
) -> tuple[str | None, int]:
    """Runs runner/entrypoint.sh as the container would (and `step` as the job's one step,
    its stdout to `report`); returns (JIT config, exit code)."""
    with tempfile.TemporaryDirectory(prefix="runner-") as work:
        run_sh = Path(work) / "run.sh"
        run_sh.write_text(RUN_SH)
        run_sh.chmod(0o700)
        out = Path(work) / "jit"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": work,
            **container_env,
            "LOCAL_MODE_JIT_OUT": str(out),
        }
        if step and report:
            env.update(LOCAL_MODE_JOB_STEP=step, LOCAL_MODE_JOB_REPORT=str(report))
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

    def wait_for_job(self, runner_id: int, wait: float) -> tuple[bool, dict | None]:
        """(still registered, the job GitHub gave the runner or None)."""
        response = requests.get(
            f"{self.url}/_local/runners/{runner_id}/job", params={"wait": wait}, timeout=wait + 10
        )
        if response.status_code == 404:
            return False, None
        response.raise_for_status()
        return True, (response.json()["job"] if response.status_code == 200 else None)

    def finish(self, runner_id: int, conclusion: str) -> None:
        requests.post(
            f"{self.url}/_local/runners/{runner_id}/finish",
            json={"conclusion": conclusion},
            timeout=10,
        ).raise_for_status()

    def disconnect(self, runner_id: int) -> None:
        response = requests.post(f"{self.url}/_local/runners/{runner_id}/disconnect", timeout=10)
        if response.status_code != 404:  # already gone: nothing to tell
            response.raise_for_status()


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
    job_seconds: float = DEFAULT_JOB_SECONDS
    poll_seconds: float = 0.5
    conclusion: str = "success"
    real_entrypoint: bool = True
    state_dir: str = ""

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
    ended: float = 0.0  # when its STOPPED event was sent (monotonic)
    stopping_by_us: bool = False
    task: dict = field(default_factory=dict)
    timeline: Timeline = field(default_factory=lambda: Timeline(created=time.time()))
    runner: dict = field(default_factory=dict)
    job: dict = field(default_factory=dict)  # the job GitHub gave its runner


class RunnerSimulator:
    def __init__(
        self,
        settings: Settings,
        post: Callable[..., Any] | None = None,
        fate: Callable[[dict], str] | None = None,
    ) -> None:
        self.settings = settings
        kwargs = {"endpoint_url": settings.aws_endpoint_url, "region_name": settings.region}
        self.ecs = boto3.client("ecs", **kwargs)
        self.autoscaling = boto3.client("autoscaling", **kwargs)  # the Docker instances' agents
        self.ec2 = boto3.client("ec2", **kwargs)
        self.sts = boto3.client("sts", **kwargs)
        self.github = GitHubStandIn(settings.github_api_url)
        self.post = post or requests.post
        self.fate = fate or (lambda task: RUN)
        self.tracked: dict[str, Tracked] = {}
        self.waiting: dict[str, dict] = {}  # PROVISIONING tasks (no instance yet), by ARN
        self.agents_played = 0.0  # when the Docker instances' agents were last played
        self.lock = threading.Lock()
        self.stop_event = threading.Event()

    # ---- delivery

    def deliver_event(self, event: dict) -> None:
        response = self.post(self.settings.events_url, json=event, timeout=60)
        if response.status_code >= 300:
            LOG.error("event %s refused: %s %s", event["id"], response.status_code, response.text)

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

    def container_environment(self, task: dict) -> dict[str, str]:
        """What ECS's agent gives the runner container: the task definition's variables, then
        its environment files, read from S3 with the task execution role (ECS does that before
        the container starts; a file it cannot read fails the task), and the credentials URI of
        the task role when the task has one."""
        definition = self.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
            "taskDefinition"
        ]
        container = next(
            c for c in definition["containerDefinitions"] if c["name"] == RUNNER_CONTAINER
        )
        env = {pair["name"]: pair["value"] for pair in container.get("environment", [])}
        if environment_files(task):
            role = definition.get("executionRoleArn")  # the seeded fleets (bench) have none
            s3 = self.role_client("s3", role) if role else self.own_client("s3")
            for arn in environment_files(task):
                bucket, _, key = arn.split(":::", 1)[1].partition("/")
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
                env.update(parse_env_file(body))
        if definition.get("taskRoleArn"):
            env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = f"/v2/credentials/{uuid.uuid4()}"
        return env

    def job_step(self, task: dict) -> tuple[str | None, Path | None]:
        """The job's step, if `<state dir>/job-steps/<job id>` gives one (tests use it to run a
        hostile step); its report goes to `<job id>.report` beside it."""
        job_id = task_tags(task).get("job_id", "")
        if not (self.settings.state_dir and job_id.isdigit()):
            return None, None
        steps = Path(self.settings.state_dir) / JOB_STEPS
        step = steps / job_id
        return (step.read_text(), steps / f"{job_id}.report") if step.is_file() else (None, None)

    def own_client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.settings.aws_endpoint_url, region_name=self.settings.region
        )

    def role_client(self, service: str, role_arn: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.settings.aws_endpoint_url,
            region_name=self.settings.region,
            **role_session(self.sts, role_arn, "ecs-agent"),
        )

    def entrypoint(self, task: dict, env: dict[str, str]) -> tuple[dict, int]:
        """The container: runner/entrypoint.sh with `env` (with bash at hand; else its one step
        in Python), then the runner connects; returns (runner, exit code)."""
        runner_name = task.get("startedBy", "")
        if self.settings.real_entrypoint and real_entrypoint_available():
            step, report = self.job_step(task)
            value, code = run_real_entrypoint(without_docker(env), step, report)
            if code != 0 or value is None:
                LOG.error("runner %s: entrypoint exited %s", runner_name, code)
                return {}, code or 1
        else:
            value = env.get("ACTIONS_RUNNER_INPUT_JITCONFIG")
            if not value:
                LOG.error("task %s: no JIT config in its environment", task["taskArn"])
                return {}, 3
        LOG.info("runner %s started with its JIT config", runner_name)
        runner = decode_jit_config(value)
        registered = self.github.register(runner_name, value)
        runner.update(registered.get("runner", registered) if registered else {})
        runner.setdefault("name", runner.get("AgentName") or runner_name)
        runner.setdefault("id", runner.get("AgentId"))
        return runner, 0

    def run_task(self, task: dict) -> None:
        arn = task["taskArn"]
        try:
            env = self.container_environment(task)
        except Exception as exc:  # ECS: the task stops before its container starts
            LOG.error("task %s: environment files not readable: %s", arn, exc)
            reason = f"ResourceInitializationError: unable to pull secrets or registry auth: {exc}"
            with self.lock:
                self.tracked[arn].stopping_by_us = True
            stopped = self.ecs.stop_task(
                cluster=self.settings.cluster_name, task=arn, reason=reason
            )
            self.finish(
                stopped["task"], exit_code=None, stopCode="TaskFailedToStart", stoppedReason=reason
            )  # it never started: no pull or start times
            return
        with self.lock:
            timeline = self.tracked[arn].timeline
            timeline.start()
        self.deliver_event(task_state_change(task, "RUNNING", timeline))
        fate = self.fate(task)
        if fate == SPOT:
            self.interrupt(task)
            return
        runner, exit_code = ({}, DIED_EXIT) if fate == DIE else self.entrypoint(task, env)
        if exit_code == 0 and runner.get("id"):
            with self.lock:
                self.tracked[arn].runner = runner
            job = self.await_job(arn, int(runner["id"]))
            if job is None:
                exit_code = REMOVED_EXIT if self.still_running(arn) else exit_code
            else:
                with self.lock:
                    self.tracked[arn].job = job
                if self.stop_event.wait(self.settings.job_seconds):
                    return
                if self.still_running(arn):
                    self.github.finish(int(runner["id"]), self.settings.conclusion)
        with self.lock:
            tracked = self.tracked[arn]
            if tracked.finished:
                return
            tracked.stopping_by_us = True
        stopped = self.ecs.stop_task(
            cluster=self.settings.cluster_name, task=arn, reason=EXIT_REASON
        )["task"]
        self.finish(stopped, exit_code=exit_code)

    def await_job(self, arn: str, runner_id: int) -> dict | None:
        """The job GitHub gives the runner; None once its task or its registration is gone."""
        while self.still_running(arn) and not self.stop_event.is_set():
            registered, job = self.github.wait_for_job(runner_id, wait=2.0)
            if job is not None or not registered:
                return job
        return None

    def interrupt(self, task: dict) -> None:
        """Fargate Spot takes the capacity back: SIGTERM, then the task stops."""
        arn = task["taskArn"]
        with self.lock:
            self.tracked[arn].stopping_by_us = True
        stopped = self.ecs.stop_task(
            cluster=self.settings.cluster_name, task=arn, reason=SPOT_REASON
        )
        self.finish(
            stopped["task"], exit_code=143, stopCode="SpotInterruption", stoppedReason=SPOT_REASON
        )

    def still_running(self, arn: str) -> bool:
        with self.lock:
            return not self.tracked[arn].finished

    def finish(
        self, task: dict, exit_code: int | None, external: bool = False, **stopped: Any
    ) -> None:
        with self.lock:
            tracked = self.tracked[task["taskArn"]]
            if tracked.finished:
                return
            tracked.finished = True
            tracked.ended = time.monotonic()
            tracked.timeline.stop()
        overrides: dict[str, Any] = {"exit_code": exit_code, **stopped}
        if external:
            overrides.update(
                stopCode="UserInitiated", stoppedReason=task.get("stoppedReason") or "Task stopped"
            )
        self.deliver_event(task_state_change(task, "STOPPED", tracked.timeline, **overrides))
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
                if task.get("lastStatus") == PROVISIONING:
                    self.wait_for_capacity(task)
                    continue
                self.waiting.pop(task["taskArn"], None)  # placed at last
                with self.lock:
                    self.tracked[task["taskArn"]] = Tracked(
                        task["taskArn"], task=task, timeline=Timeline.of(task)
                    )
                LOG.info("task %s is RUNNING (%s)", task["taskArn"], task.get("startedBy"))
                threading.Thread(target=self.safe, args=(self.run_task, task), daemon=True).start()
        self.settle_waiting(running)
        # Instances boot and terminate (single use): their agents register, and ECS deregisters
        # the terminated ones. At once when a task waits for one, else every few seconds.
        if self.waiting or time.monotonic() >= self.agents_played + AGENT_SECONDS:
            self.safe(self.play_agents)
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

    def play_agents(self) -> None:
        """The Docker instances' ECS agents (local_mode/ecs_agent.py): a fresh instance that
        replaced a single-use one registers, and the emulator places a waiting task on it."""
        self.agents_played = time.monotonic()
        clients = (self.ecs, self.autoscaling, self.ec2)
        for arn in ecs_agent.sync(*clients, self.settings.cluster_name, self.settings.region):
            LOG.info("container instance %s registered", arn.rsplit("/", 1)[-1])

    def wait_for_capacity(self, task: dict) -> None:
        """A task on an EC2 capacity provider with no room: no agent runs it until the emulator
        places it on an instance (it is then RUNNING and taken as a new task)."""
        if task["taskArn"] not in self.waiting:
            LOG.info("task %s waits for capacity (PROVISIONING)", task["taskArn"])
        self.waiting[task["taskArn"]] = task

    def settle_waiting(self, running: list[str]) -> None:
        """A waiting task stopped (by the cleanup, a terminate) never started: ECS sends its
        STOPPED event, with no container exit code and no start times."""
        gone = [arn for arn in self.waiting if arn not in running]
        for task in self.describe(gone) if gone else []:
            del self.waiting[task["taskArn"]]
            with self.lock:
                self.tracked[task["taskArn"]] = Tracked(
                    task["taskArn"], task=task, timeline=Timeline.of(task)
                )
            self.safe(self.finish, task, None, True)

    def cancelled(self, task: dict) -> None:
        """Someone else stopped the task: SIGTERM to the runner, which disconnects (GitHub
        fails the job it was running)."""
        with self.lock:
            runner = self.tracked[task["taskArn"]].runner
        self.finish(task, exit_code=143, external=True)
        if runner.get("id"):
            self.github.disconnect(int(runner["id"]))

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
