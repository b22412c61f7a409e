"""`ecsrunner runners ...`: list, details, terminate, exec."""

from __future__ import annotations

from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from ecsrunner import ecs_exec, records, tasks, terminate
from ecsrunner.config import AWS, FUNCTION, LIMIT, OUTPUT, SINCE, TABLE, Config, uses
from ecsrunner.output import age, emit, fields, since_time, table, when
from ecsrunner.records import STATUSES, task_id, timeline_rows

RUNNER_ID = click.argument("runner_id", metavar="RUNNER")


@click.group()
def runners() -> None:
    """See, enter and stop runners (one per job, in the state table).

    RUNNER is a runner's name (<name_prefix>-<job id>) or its job id.
    """


@runners.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([*STATUSES, records.ACTIVE]),
    help="Only these statuses (repeatable); 'active' = not finished.",
)
@click.option("--repo", metavar="OWNER/REPO", help="Only jobs of this repository.")
@click.option("--class", "class_name", metavar="CLASS", help="Only runners of this class.")
@SINCE
@LIMIT
@uses(TABLE, AWS, OUTPUT)
def list_runners(
    statuses: tuple[str, ...],
    repo: str | None,
    class_name: str | None,
    since: str | None,
    limit: int,
) -> None:
    """List runners, newest first.

    \b
    Examples:
      ecsrunner runners list
      ecsrunner runners list --status active
      ecsrunner runners list --repo octo-org/app --class large --since 12h
      ecsrunner runners list --status failed --limit 0 --output json
    """
    found, truncated = records.newest(
        since=since_time(since),
        statuses=statuses,
        repo=repo,
        class_name=class_name,
        limit=limit,
    )

    def render() -> str:
        if not found:
            return "no runners match"
        headers = ["RUNNER", "STATUS", "CLASS", "REPOSITORY", "JOB", "AGE", "TASK"]
        rows = [
            [
                r.get("runner_name"),
                r.get("status"),
                r.get("class_name"),
                r.get("repository"),
                " / ".join(x for x in (r.get("workflow_name"), r.get("job_name")) if x),
                age(r.get("created_at")),
                task_id(r.get("task_arn")),
            ]
            for r in found
        ]
        if any(r.get("status") in records.UNSUCCESSFUL for r in found):
            headers.append("REASON")
            for row, r in zip(rows, found, strict=True):
                row.append(records.failure_reason(r))
        text = table(rows, headers)
        if truncated:
            text += f"\n({len(found)} shown; more match: raise --limit or narrow the filters)"
        return text

    emit({"runners": [records.summary(r) for r in found], "truncated": truncated}, render)


@runners.command()
@RUNNER_ID
@uses(TABLE, AWS, OUTPUT)
def details(runner_id: str) -> None:
    """Everything about one runner: stored fields, status timeline, live ECS task.

    The live task state (last status, stop reason, exit code of the runner container) is
    shown while ECS still knows the task (about an hour after it stopped).

    \b
    Examples:
      ecsrunner runners details runner-fleet-1234567890
      ecsrunner runners details 1234567890 --output json
    """
    record = records.load(runner_id)
    task, task_error = None, None
    if record.get("task_arn"):
        try:
            task = tasks.describe(Config.current().client("ecs"), record["task_arn"])
        except (ClientError, BotoCoreError) as exc:  # the stored facts are still worth showing
            task_error = str(exc)
    live = tasks.view(task) if task else None
    data = {"runner": records.detail(record), "task": live, "task_error": task_error}
    emit(data, lambda: _details_text(record, data["runner"], live, task_error))


TIME_FIELDS = ("created_at", "updated_at", "started_at", "stopped_at", *records.EPOCH_FIELDS)


def _pairs(view: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """`key  value` pairs of a JSON view: times with their age, lists joined."""
    pairs = []
    for name, value in view.items():
        if name in skip:
            continue
        if name in TIME_FIELDS:
            value = when(value)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        pairs.append((name, value))
    return pairs


def _details_text(
    record: dict[str, Any], shown: dict[str, Any], live: dict[str, Any] | None, error: str | None
) -> str:
    stored = {name: value for name, value in shown.items() if name in record}
    timeline = table(timeline_rows(record), ["STATUS", "AT", "AFTER", "REASON"])
    parts = [fields(_pairs(stored, skip=("history",))), "", "Timeline", timeline, "", "ECS task"]
    if error:
        parts.append(f"could not describe the task: {error}")
    elif live:  # only what ECS reports: an absent value is no line, not a "-"
        reported = {name: value for name, value in live.items() if value is not None}
        parts.append(fields(_pairs(reported, skip=("task_arn",))))
    elif record.get("task_arn"):
        parts.append(f"{task_id(record['task_arn'])}: ECS no longer knows this task")
    else:
        parts.append("no task was started")
    return "\n".join(parts)


@runners.command("terminate")
@RUNNER_ID
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@uses(TABLE, FUNCTION, AWS)
def terminate_runner(runner_id: str, yes: bool) -> None:
    """Stop a runner: its ECS task, its record (status stopped) and its GitHub registration.

    GitHub is reached as the control plane reaches it: its settings are read from the
    control-plane Lambda's configuration, its credential from SSM. If GitHub cannot be
    reached, or still holds the runner busy with its job, the task is stopped and the record
    marked all the same, and the command says so (exit 1): run it again later. A runner with
    nothing left to stop is a message (exit 0).

    \b
    Examples:
      ecsrunner runners terminate runner-fleet-1234567890
      ecsrunner runners terminate 1234567890 --yes
    """
    terminate.terminate(records.load(runner_id), assume_yes=yes)


@runners.command("exec")
@RUNNER_ID
@click.option(
    "--command",
    default=ecs_exec.DEFAULT_COMMAND,
    show_default=True,
    help="What to run in the runner container.",
)
@uses(TABLE, AWS)
def exec_runner(runner_id: str, command: str) -> None:
    """Open a shell (or run a command) in a runner's container with ECS Exec.

    Needs the AWS Session Manager plugin (session-manager-plugin) on PATH. Local mode has
    no ECS Exec.

    \b
    Examples:
      ecsrunner runners exec runner-fleet-1234567890
      ecsrunner runners exec 1234567890 --command "df -h"
    """
    ecs_exec.require_ecs_exec(runner_id)
    ecs_exec.execute(records.load(runner_id), command)
