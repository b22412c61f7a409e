"""The pieces of local mode on their own (fast: no Terraform, no stack)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from local_mode import follow, runner_sim, send_job, stack, webhook_server
from local_mode.moto_server import MotoServer, free_port, hold_ecs_tasks
from local_mode.seed import seed_fleet

CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/runner-fleet"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/runner-fleet/0123456789abcdef"


def moto_task() -> dict:
    return {
        "taskArn": TASK_ARN,
        "clusterArn": CLUSTER_ARN,
        "taskDefinitionArn": (
            "arn:aws:ecs:us-east-1:123456789012:task-definition/runner-fleet-medium:1"
        ),
        "startedBy": "runner-fleet-42",
        "group": "family:runner-fleet-medium",
        "lastStatus": "RUNNING",
        "overrides": {
            "containerOverrides": [
                {
                    "name": "runner",
                    "environmentFiles": [
                        {"value": "arn:aws:s3:::bkt/jit/runner-fleet-42/ab.env", "type": "s3"}
                    ],
                }
            ]
        },
        "tags": [{"key": "job_id", "value": "42"}, {"key": "run_id", "value": "7"}],
    }


# ---------------------------------------------------------------- send_job


def test_signature_matches_githubs_documented_example() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    assert send_job.sign(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


@pytest.mark.parametrize("action", ["queued", "in_progress", "completed"])
def test_payloads_follow_githubs_schema(action: str, github_fixtures: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    schemas = github_fixtures / "schemas"
    registry = Registry().with_resources(
        (f"common/{path.name}", DRAFT7.create_resource(json.loads(path.read_text())))
        for path in (schemas / "common").glob("*.json")
    )
    schema = json.loads((schemas / "workflow_job" / f"{action}.schema.json").read_text())
    payload = send_job.workflow_job_payload(
        action,
        labels=["self-hosted", "class:medium"],
        job_id=1234567890,
        repository="octo-org/octo-repo",
        runner_name="runner-fleet-1234567890",
        runner_id=7,
    )
    errors = list(jsonschema.Draft7Validator(schema, registry=registry).iter_errors(payload))
    assert not errors, [error.message for error in errors]
    job = payload["workflow_job"]
    assert job["id"] == 1234567890
    assert job["labels"] == ["self-hosted", "class:medium"]
    assert payload["repository"]["full_name"] == "octo-org/octo-repo"
    assert payload["repository"]["owner"]["login"] == "octo-org"
    assert job["status"] == action


def test_payload_timestamps_are_githubs() -> None:
    def job(action: str, **times: str) -> dict:
        payload = send_job.workflow_job_payload(
            action, labels=["self-hosted"], job_id=1, repository="o/r", **times
        )
        return {k: payload["workflow_job"][k] for k in ("created_at", "started_at", "completed_at")}

    created, started, completed = (
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:03:00Z",
    )
    # GitHub's queued payload has started_at = created_at (its example payload too)
    assert job("queued", created_at=created) == {
        "created_at": created,
        "started_at": created,
        "completed_at": None,
    }
    assert job("in_progress", created_at=created, started_at=started) == {
        "created_at": created,
        "started_at": started,
        "completed_at": None,
    }
    assert job("completed", created_at=created, started_at=started, completed_at=completed) == {
        "created_at": created,
        "started_at": started,
        "completed_at": completed,
    }
    now = job("completed")  # no fixture's 2021 dates: each defaults to now
    assert now["created_at"] == now["started_at"] == now["completed_at"]
    assert now["created_at"][:10] == time.strftime("%Y-%m-%d", time.gmtime())


def test_queued_delivery_is_signed_over_the_exact_body() -> None:
    current = {"webhook_url": "http://x/webhook", "webhook_secret": "s3cret", "github_repo": "o/r"}
    delivery = send_job.queued_job(current, "self-hosted, class:large", job_id=99)
    assert delivery.headers["X-Hub-Signature-256"] == send_job.sign(delivery.body, "s3cret")
    assert delivery.headers["X-GitHub-Event"] == "workflow_job"
    assert json.loads(delivery.body)["workflow_job"]["labels"] == ["self-hosted", "class:large"]
    forged = send_job.queued_job(current, ["self-hosted"], job_id=99, bad_signature=True)
    assert forged.headers["X-Hub-Signature-256"] != send_job.sign(forged.body, "s3cret")


def test_job_ids_are_unique() -> None:
    ids = [send_job.new_job_id() for _ in range(500)]
    assert len(set(ids)) == 500 and ids == sorted(ids)
    assert all(10**9 <= job_id < 10**10 for job_id in ids)


# ---------------------------------------------------------------- runner simulator


def test_task_state_change_has_the_shape_ecs_sends() -> None:
    event = runner_sim.task_state_change(moto_task(), "STOPPED")
    assert event["source"] == "aws.ecs"
    assert event["detail-type"] == "ECS Task State Change"
    assert event["resources"] == [TASK_ARN]
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    detail = event["detail"]
    for key in ("clusterArn", "taskArn", "startedBy", "group", "taskDefinitionArn"):
        assert detail[key] == moto_task()[key]
    assert detail["lastStatus"] == detail["desiredStatus"] == "STOPPED"
    assert detail["stoppedReason"] == "Essential container in task exited"
    assert detail["stopCode"] == "EssentialContainerExited"
    assert detail["containers"][0]["name"] == "runner"
    assert detail["containers"][0]["exitCode"] == 0

    running = runner_sim.task_state_change(moto_task(), "RUNNING")["detail"]
    assert running["lastStatus"] == "RUNNING" and "exitCode" not in running["containers"][0]

    killed = runner_sim.task_state_change(
        moto_task(), "STOPPED", exit_code=143, stopCode="UserInitiated"
    )["detail"]
    assert killed["containers"][0]["exitCode"] == 143 and killed["stopCode"] == "UserInitiated"


@pytest.fixture
def sim_fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoServer, dict]]:
    """An emulator of its own (the simulator holds its tasks' states; its tasks have
    createdAt, as the local stack's) with a seeded fleet."""
    server = MotoServer.start(ecs_created_at=True)
    try:
        for key, value in server.client_env("us-east-1").items():
            monkeypatch.setenv(key, value)
        env = seed_fleet("simfleet", repository="o/r", secrets={}, image="runner:test")
        hold_ecs_tasks(server.url)
        yield server, env
    finally:
        server.stop()


def run_runner_task(env: dict, env_file: str | None = None) -> dict:
    override = {"name": "runner"}
    if env_file:
        override["environmentFiles"] = [{"value": env_file, "type": "s3"}]
    return boto3.client("ecs").run_task(
        cluster=env["CLUSTER_NAME"],
        taskDefinition="simfleet-small",
        launchType="FARGATE",
        startedBy="simfleet-1",
        overrides={"containerOverrides": [override]},
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [env["SUBNET_IDS"]],
                "securityGroups": [env["SECURITY_GROUP_IDS"]],
            }
        },
    )["tasks"][0]


def test_a_tasks_events_carry_one_timeline_like_ecs(sim_fleet: tuple[MotoServer, dict]) -> None:
    server, env = sim_fleet
    ran = run_runner_task(env)
    never = run_runner_task(env, env_file="arn:aws:s3:::simfleet-jit/jit/missing.env")
    sent: list[dict] = []

    def post(url: str, json: dict, timeout: float) -> requests.Response:
        sent.append(json)
        response = requests.Response()
        response.status_code = 202
        return response

    settings = runner_sim.Settings(
        region="us-east-1",
        aws_endpoint_url=server.url,
        cluster_name=env["CLUSTER_NAME"],
        webhook_url="",
        events_url="http://events",
        webhook_secret="",
        github_api_url="http://github",
        github_repo="o/r",
        real_entrypoint=False,
    )
    time.sleep(0.05)  # RunTask before the simulator sees the task, as a poll would
    simulator = runner_sim.RunnerSimulator(settings, post=post, fate=lambda task: runner_sim.DIE)
    simulator.poll_once()
    deadline = time.monotonic() + 20
    while sum(e["detail"]["lastStatus"] == "STOPPED" for e in sent) < 2:
        assert time.monotonic() < deadline, sent
        time.sleep(0.05)

    def events(task: dict) -> list[dict]:
        return [e["detail"] for e in sent if e["detail"]["taskArn"] == task["taskArn"]]

    running, stopped = events(ran)
    assert (running["lastStatus"], stopped["lastStatus"]) == ("RUNNING", "STOPPED")
    # createdAt is RunTask's (the emulator's), and the start times are the same in both events
    assert running["createdAt"] == runner_sim.iso(ran["createdAt"].timestamp())
    start = ("createdAt", "connectivityAt", "pullStartedAt", "pullStoppedAt", "startedAt")
    assert {k: running[k] for k in start} == {k: stopped[k] for k in start}
    assert not {"stoppingAt", "executionStoppedAt", "stoppedAt"} & running.keys()
    order = [*start[:1], *start[2:], "stoppingAt", "executionStoppedAt", "stoppedAt"]
    moments = [stopped[key] for key in order]
    assert moments == sorted(moments), dict(zip(order, moments, strict=True))
    assert stopped["createdAt"] < stopped["startedAt"]  # RunTask came before the start

    (failed,) = events(never)  # it never started: only STOPPED, without pull or start times
    assert failed["stopCode"] == "TaskFailedToStart"
    assert failed["createdAt"] == runner_sim.iso(never["createdAt"].timestamp())
    assert not {"pullStartedAt", "pullStoppedAt", "startedAt", "connectivityAt"} & failed.keys()
    assert failed["createdAt"] <= failed["stoppingAt"] <= failed["stoppedAt"]


def test_ecs_rule_pattern_matches_only_our_cluster() -> None:
    pattern = json.dumps(
        {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [CLUSTER_ARN]},
        }
    )
    event = runner_sim.task_state_change(moto_task(), "RUNNING")
    assert webhook_server.pattern_matches(pattern, event)
    other = json.loads(json.dumps(event))
    other["detail"]["clusterArn"] = CLUSTER_ARN + "-other"
    assert not webhook_server.pattern_matches(pattern, other)


def test_environment_files_and_tags() -> None:
    task = moto_task()
    assert runner_sim.environment_files(task) == ["arn:aws:s3:::bkt/jit/runner-fleet-42/ab.env"]
    assert runner_sim.environment_files(task, container="sidecar") == []
    assert runner_sim.task_tags(task) == {"job_id": "42", "run_id": "7"}
    body = "# comment\n\nACTIONS_RUNNER_INPUT_JITCONFIG=eyJ4Ijo=\nB=c=d\n"
    assert runner_sim.parse_env_file(body) == {
        "ACTIONS_RUNNER_INPUT_JITCONFIG": "eyJ4Ijo=",
        "B": "c=d",
    }


def test_decode_jit_config_reads_the_runner_file() -> None:
    import base64

    runner = base64.b64encode(json.dumps({"AgentId": 7, "AgentName": "r-1"}).encode()).decode()
    encoded = base64.b64encode(json.dumps({".runner": runner}).encode()).decode()
    assert runner_sim.decode_jit_config(encoded)["AgentName"] == "r-1"
    assert runner_sim.decode_jit_config("not base64 json") == {}


def test_real_entrypoint_hands_the_config_to_run_sh_without_credentials() -> None:
    if not runner_sim.real_entrypoint_available():
        pytest.fail("runner/entrypoint.sh or bash is missing")
    env = {
        "ACTIONS_RUNNER_INPUT_JITCONFIG": "eyJ4IjoxfQ==",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x",
    }
    assert runner_sim.run_real_entrypoint(env) == ("eyJ4IjoxfQ==", 0)
    assert runner_sim.run_real_entrypoint({}) == (None, 3)  # ECS gave it no config


# ---------------------------------------------------------------- webhook endpoint


def test_rate_expressions() -> None:
    assert webhook_server.rate_seconds("rate(5 minutes)") == 300
    assert webhook_server.rate_seconds("rate(1 hour)") == 3600
    assert webhook_server.rate_seconds("cron(0 * * * ? *)") is None


class FakeRuntime:
    function_name = "runner-fleet-control-plane"
    invocations = 0

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[dict] = []


class FakeRouter:
    """EventRouter's surface, delivering to a recording runtime."""

    def __init__(self, fail: bool = False) -> None:
        self.rules: list = []
        self.runtime = FakeRuntime(fail)

    def envelope(self, entry: dict) -> dict:
        return {"id": "e-1", "source": entry["Source"], "detail-type": entry["DetailType"]}

    def custom_bus(self) -> str:
        return "runner-fleet"

    def deliver(self, event: dict, bus: str) -> list:
        if self.runtime.fail:
            raise RuntimeError("handler blew up")
        self.runtime.events.append(event)
        return [{"status": "ok"}]


@pytest.mark.parametrize(("fail", "status"), [(False, 202), (True, 500)])
def test_webhook_endpoint_answers_like_api_gateway(monkeypatch, fail: bool, status: int) -> None:
    seen = {}

    def fake_mapping(body: bytes, headers) -> dict:
        seen["body"], seen["signature"] = body, headers.get("x-hub-signature-256")
        return {"Source": "aws-runner-fleet.github", "DetailType": headers.get("X-GitHub-Event")}

    monkeypatch.setattr(webhook_server, "github_event", fake_mapping)
    router = FakeRouter(fail=fail)
    server = webhook_server.WebhookServer(("127.0.0.1", 0), router)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        body = b'{"action":"queued"}'
        response = requests.post(
            f"{url}/webhook",
            data=body,
            headers={"X-GitHub-Event": "workflow_job", "X-Hub-Signature-256": "sha256=abc"},
            timeout=5,
        )
        assert response.status_code == status
        assert seen == {"body": body, "signature": "sha256=abc"}  # raw bytes, any header case
        assert requests.get(f"{url}/health", timeout=5).status_code == 200
        assert requests.post(f"{url}/nope", timeout=5).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- stack


def test_kill_group_ends_the_whole_process_group(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_MODE_DIR", str(tmp_path))
    process = stack.spawn("sleeper", ["bash", "-c", "sleep 60 & sleep 60 & wait"])
    time.sleep(0.3)
    assert stack.group_alive(process.pid)
    stack.kill_group(process.pid, timeout=5)
    process.wait(timeout=5)
    assert not stack.group_alive(process.pid)
    assert (tmp_path / "logs" / "sleeper.log").exists()


def test_terraform_copy_points_at_the_repository(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_MODE_DIR", str(tmp_path / "state"))
    work = stack.prepare_terraform_dir()
    main_tf = (work / "main.tf").read_text()
    source = main_tf.split('source = "', 1)[1].split('"', 1)[0]
    assert source.startswith("../")
    assert (work / source).resolve() == stack.REPO_ROOT
    assert {p.name for p in work.glob("*.tf")} == {p.name for p in stack.TF_SOURCE.glob("*.tf")}


def test_env_file_quotes_values() -> None:
    current = {
        "created_at": "now",
        "aws_endpoint_url": "http://127.0.0.1:1",
        "region": "us-east-1",
        "runner_table": "runner-fleet-state",
        "class_sizes_parameter": "/runner-fleet/config/class-sizes",
        "cluster_name": "runner-fleet",
        "name_prefix": "runner-fleet",
        "github_api_url": "http://127.0.0.1:2",
        "webhook_url": "http://127.0.0.1:3/webhook",
    }
    text = stack.env_lines(current)
    result = subprocess.run(
        ["bash", "-c", f'{text}\nprintf \'%s|%s\' "$RUNNER_TABLE" "$CLASS_SIZES_PARAM"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.stdout == "runner-fleet-state|/runner-fleet/config/class-sizes"
    assert stack.cli_env(current)["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"


def test_status_without_a_stack_is_down(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_MODE_DIR", str(tmp_path))
    assert stack.status() == {"status": "down"}
    result = subprocess.run(
        [sys.executable, "-m", "local_mode", "down"],
        cwd=stack.REPO_ROOT,
        env={**os.environ, "LOCAL_MODE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "No local stack" in result.stdout


def test_free_ports_are_free() -> None:
    port = free_port()
    assert not stack.port_open(port)


def test_a_new_job_seconds_restarts_the_stack_and_none_reuses_it() -> None:
    running = {"job_seconds": 3.0}
    assert stack.changed_settings(running, None) == []
    assert stack.changed_settings(running, 3.0) == []
    assert stack.changed_settings(running, 90.0) == ["job seconds 3 → 90"]
    # a stack.json from before job_seconds was recorded runs the simulator's default
    assert stack.changed_settings({}, runner_sim.DEFAULT_JOB_SECONDS) == []


# ---------------------------------------------------------------- Makefile


def make_argv(target: str, *variables: str) -> list[str]:
    """The `python -m local_mode ...` arguments `make <target>` runs (make -n: nothing runs)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target, *variables],
        cwd=stack.REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    script = result.stdout.replace("\\\n", " ")
    line = next(line for line in script.splitlines() if " -m local_mode " in line)
    argv = shlex.split(line)
    return argv[argv.index("local_mode") + 1 :]


def test_make_job_sends_the_default_labels_whole() -> None:
    assert make_argv("job") == ["job", "--labels", "self-hosted,class:medium"]
    assert make_argv("job", "LABELS=self-hosted,class:large", "NOWAIT=1", "TIMEOUT=30") == [
        *("job", "--labels", "self-hosted,class:large", "--no-wait", "--timeout", "30")
    ]
    assert make_argv("job", "BAD_SIGNATURE=1")[-1] == "--bad-signature"


def test_make_local_up_passes_job_seconds() -> None:
    assert make_argv("local-up") == ["up"]
    assert make_argv("local-up", "JOB_SECONDS=90") == ["up", "--job-seconds", "90"]
    assert make_argv("local-up", "FAIL_BUILDS=docker.io/library/debian:*") == [
        *("up", "--fail-builds", "docker.io/library/debian:*")
    ]


# ---------------------------------------------------------------- follow (make job's report)


def test_refused_and_ignored_deliveries_say_why() -> None:
    refused = {"results": [{"result": "refused", "reason": "signature does not match"}]}
    assert follow.unrecorded(refused) == follow.Outcome(False, "refused: signature does not match")
    ignored = {"results": [{"result": "ignored", "reason": "labels not served by this fleet"}]}
    assert follow.unrecorded(ignored).summary == "ignored: labels not served by this fleet"
    assert follow.unrecorded({"results": [{"result": "launched", "task_arn": "t"}]}) is None
    assert follow.unrecorded("not json") is None


def test_a_job_settles_when_github_and_the_record_both_have_an_outcome() -> None:
    done = {"status": "completed", "conclusion": "success", "runner_name": "runner-fleet-1"}
    assert follow.settled({"status": "busy"}, done) is None
    assert follow.settled({"status": "completed"}, {"status": "in_progress"}) is None
    outcome = follow.settled({"status": "completed"}, done)
    assert outcome is not None and outcome.ok
    assert outcome.summary.startswith("completed: success, run by runner-fleet-1")
    failed = follow.settled({"status": "stopped"}, {**done, "conclusion": "failure"})
    assert failed is not None and not failed.ok
    reason = "unknown class 'xl' (this fleet has: large, medium, small)"
    rejected = follow.settled({"status": "rejected", "reason": reason}, {"status": "queued"})
    assert rejected == follow.Outcome(False, f"rejected: {reason}")


def test_a_failed_launch_or_build_settles_while_github_still_queues_the_job() -> None:
    """GitHub keeps such a job queued (until it cancels it a day later): no waiting it out."""
    why = "image build b:1 FAILED (base docker.io/library/debian:bookworm)"
    failed = follow.settled({"status": "failed", "reason": why}, {"status": "queued"})
    assert failed == follow.Outcome(False, f"failed: {why} (GitHub shows the job queued)")
    # A runner that failed mid-job: GitHub's conclusion is the outcome, once it has one.
    assert follow.settled({"status": "failed"}, {"status": "in_progress"}) is None


def test_fleet_lines_carry_what_the_record_says() -> None:
    assert follow.fleet_detail({"status": "starting", "task_arn": "arn:x:task/c/abc"}) == "task abc"
    assert follow.fleet_detail({"status": "busy", "runner_name": "r-1"}) == "runner r-1"
    stopped = {"status": "stopped", "exit_code": 143, "stop_reason": "UserInitiated: bye"}
    assert follow.fleet_detail(stopped) == "UserInitiated: bye; exit code 143"
    assert follow.fleet_detail({"status": "pending", "reason": "launch attempt failed"}) == (
        "launch attempt failed"
    )
