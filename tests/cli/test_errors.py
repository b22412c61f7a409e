"""Every way a command fails is one line on stderr and an exit code (1: the thing asked for
failed, 2: usage or configuration), never a traceback; and the JSON of every read command
keeps its documented shape (docs/cli.md), with ISO 8601 times."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from ecsrunner.records import SUMMARY_FIELDS
from local_mode.fault_proxy import FaultProxy
from local_mode.moto_server import free_port
from tests.cli.conftest import RUN_FIELDS, Cli, advance, queue
from tests.control_plane.harness import ACCOUNT, REGION, REPO, Fleet

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NO_TABLE = "error: no state table: pass --table or set RUNNER_TABLE (or RUNNER_STATE_TABLE)\n"

# Every command that reads the state table, as an operator would type it (job id 42).
TABLE_COMMANDS = {
    "runners list": ("runners", "list"),
    "runners details": ("runners", "details", "42"),
    "runners terminate": ("runners", "terminate", "42", "--yes"),
    "runners exec": ("runners", "exec", "42"),
    "runs list": ("runs", "list", "--repo", REPO),
    "cluster status": ("cluster", "status"),
    "stats": ("stats",),
}
# The first AWS call of each (what an IAM policy must allow first).
FIRST_CALL = {
    "runners list": ("dynamodb", "Query"),
    "runners details": ("dynamodb", "GetItem"),
    "runners terminate": ("dynamodb", "GetItem"),
    "runners exec": ("dynamodb", "GetItem"),
    "runs list": ("dynamodb", "Query"),
    "cluster status": ("ecs", "ListTasks"),
    "list-class-sizes": ("ssm", "GetParameter"),
    "stats": ("dynamodb", "Query"),
}
EVERY_COMMAND = {**TABLE_COMMANDS, "list-class-sizes": ("list-class-sizes",)}


def one_error_line(result: Any) -> str:
    assert result.stdout == "", result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr


# ---------------------------------------------------------------------- settings


@pytest.mark.parametrize("command", TABLE_COMMANDS)
def test_no_table_setting(run: Cli, command: str) -> None:
    result = run(*TABLE_COMMANDS[command], env={"RUNNER_TABLE": None, "RUNNER_STATE_TABLE": None})
    assert result.exit_code == 2
    assert one_error_line(result) == NO_TABLE


def test_the_table_from_either_variable_or_the_option(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet)
    table = f"{fleet.prefix}-state"
    ways = [
        {"RUNNER_TABLE": None, "RUNNER_STATE_TABLE": table},
        {"RUNNER_TABLE": "wrong-state", "RUNNER_STATE_TABLE": None, "--table": table},
    ]
    for env in ways:
        option = ("--table", env.pop("--table")) if "--table" in env else ()
        listing = run.json("runners", "list", *option, env=env)
        assert [r["job_id"] for r in listing["runners"]] == [job_id]


def test_table_not_found(run: Cli) -> None:
    for args in TABLE_COMMANDS.values():
        if args[0] == "cluster":
            continue  # asks ECS first: see test_an_unknown_cluster
        result = run(*args, "--table", "nowhere-state")
        assert result.exit_code == 1, args
        assert one_error_line(result) == (
            f"error: state table 'nowhere-state' not found in {REGION}: "
            "check --table / RUNNER_TABLE\n"
        )


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_no_credentials(run: Cli, command: str) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        # nor any other source a CI machine may have (container, web identity, instance)
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = run(*EVERY_COMMAND[command], env=env)
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: no AWS credentials: use --profile / AWS_PROFILE, or set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY\n"
    )


def test_no_region(run: Cli) -> None:
    for args in EVERY_COMMAND.values():
        result = run(*args, env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None})
        assert result.exit_code == 2, args
        assert one_error_line(result) == "error: no AWS region: pass --region or set AWS_REGION\n"


def test_an_unknown_profile(run: Cli) -> None:
    result = run("runners", "list", "--profile", "nobody")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: AWS profile 'nobody' not found (--profile)\n"


def test_bad_arguments_are_usage_errors(run: Cli) -> None:
    since = run("runners", "list", "--since", "yesterday")
    assert since.exit_code == 2
    assert one_error_line(since) == (
        "error: --since 'yesterday': give a span (30m, 12h, 7d, 2w) or an ISO 8601 date/time\n"
    )
    output = run("runners", "list", "--output", "yaml")
    assert output.exit_code == 2
    assert "Invalid value for '-o' / '--output': 'yaml' is not one of 'table', 'json'" in (
        output.stderr
    )


# ---------------------------------------------------------------------- AWS says no


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_access_denied(fleet: Fleet, run: Cli, aws_proxy: FaultProxy, command: str) -> None:
    service, operation = FIRST_CALL[command]
    action = f"{service}:{operation}"
    message = (
        f"User: arn:aws:iam::{ACCOUNT}:user/operator is not authorized to perform: {action} "
        f"because no identity-based policy allows the {action} action"
    )
    aws_proxy.add(
        {
            "operation": operation,
            "status": 400,
            "body": {"__type": "AccessDeniedException", "message": message},
        }
    )
    env = {f"AWS_ENDPOINT_URL_{service.upper()}": aws_proxy.url}

    result = run(*EVERY_COMMAND[command], env=env)

    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"error: AWS refused {operation}: AccessDeniedException: {message}\n"
    )
    assert [r["operation"] for r in aws_proxy.requests()] == [operation]  # asked once, no retry


def test_aws_unreachable(run: Cli) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = run("runners", "list", env={"AWS_ENDPOINT_URL_DYNAMODB": endpoint})
    assert result.exit_code == 1
    assert one_error_line(result) == f"error: cannot reach AWS at {endpoint}/\n"


def test_an_unknown_runner_is_exit_1(fleet: Fleet, run: Cli) -> None:
    for args in (("runners", "details", "42"), ("runs", "list", "--runner-id", "42")):
        result = run(*args)
        assert result.exit_code == 1
        assert one_error_line(result) == f"error: no runner 42 in table {fleet.prefix}-state\n"


# ---------------------------------------------------------------------- JSON


def times(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a JSON document whose key names a time."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") or key in ("at", "since"):
                yield f"{path}.{key}", item
            yield from times(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from times(item, f"{path}[{index}]")


@pytest.mark.usefixtures("held_tasks")
def test_every_read_command_keeps_its_json_shape(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:medium"))
    advance(fleet, job_id, "completed")
    name = fleet.runner_name(job_id)

    documents = {
        "runners list": run.json("runners", "list"),
        "runners details": run.json("runners", "details", name),
        "runs list": run.json("runs", "list", "--repo", REPO),
        "list-class-sizes": run.json("list-class-sizes"),
        "cluster status": run.json("cluster", "status"),
        "stats": run.json("stats"),
    }

    assert list(documents["runners list"]) == ["runners", "truncated"]
    assert list(documents["runners list"]["runners"][0]) == list(SUMMARY_FIELDS)
    details = documents["runners details"]
    assert list(details) == ["runner", "task", "task_error"]
    assert list(details["runner"])[: len(SUMMARY_FIELDS) + 1] == [*SUMMARY_FIELDS, "history"]
    assert list(details["task"]) == [
        "task_arn",
        "last_status",
        "desired_status",
        "stop_code",
        "stopped_reason",
        "container_status",
        "exit_code",
        "capacity_provider",
        "cpu",
        "memory",
        "created_at",
        "started_at",
        "stopped_at",
    ]
    assert list(documents["runs list"]) == ["runs", "truncated"]
    assert list(documents["runs list"]["runs"][0]) == RUN_FIELDS
    sizes = documents["list-class-sizes"]
    assert list(sizes) == ["parameter", "default_class", "classes"]
    class_fields = [
        "name",
        "cpu",
        "memory",
        "vcpu",
        "memory_gib",
        "architecture",
        "disk_gib",
        "runs_on",
        "capacity",
        "default",
    ]
    assert list(sizes["classes"][0]) == class_fields
    status = documents["cluster status"]
    assert list(status) == [
        "cluster",
        "tasks",
        "totals",
        "classes",
        "runners",
        "queue_wait_seconds",
    ]
    assert list(status["classes"][0]) == class_fields
    assert list(status["tasks"][0]) == [
        "class",
        "capacity_provider",
        "running",
        "pending",
        "stopping",
    ]
    assert list(status["runners"]) == ["table", "since", "by_status"]
    assert list(status["queue_wait_seconds"]) == ["since", "p50", "p90"]
    summary = ["jobs", "outcomes", "queue_wait_seconds", "start_seconds", "cost_usd"]
    stats = documents["stats"]
    assert list(stats) == ["since", *summary, "by_class"]
    assert list(stats["by_class"]["medium"]) == summary
    assert list(stats["outcomes"]) == ["completed", "failed", "stopped", "rejected", "in-flight"]
    assert (
        list(stats["queue_wait_seconds"]) == list(stats["start_seconds"]) == ["p50", "p90", "max"]
    )
    assert list(stats["cost_usd"]) == ["total", "per_job_mean"]

    found = {path: value for doc in documents.values() for path, value in times(doc)}
    assert {
        ".runner.expires_at",
        ".runner.history[3].at",
        ".runs[0].finished_at",
        ".queue_wait_seconds.since",
    } <= set(found)
    for path, value in found.items():
        assert value is None or ISO.fullmatch(value), (path, value)
