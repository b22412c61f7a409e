"""`runners terminate`: stop the task, mark the record `stopped`, remove the GitHub runner.

Order matters: the task is stopped first (nothing may keep running), the record is marked
only once the task is stopped (it must never claim what is not true), GitHub comes last (if
it cannot be reached, the runner is stopped anyway and the command says what it could not
do). Each step is idempotent, so terminating twice is safe; a runner with nothing left to
stop is a message, not an error.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass
from typing import Any

import click
from control_plane.github import GitHubClient, GitHubError
from control_plane.retry import describe
from control_plane.state import TERMINAL

from ecsrunner import github_access, tasks
from ecsrunner.config import CliError, Config
from ecsrunner.output import age
from ecsrunner.records import cluster_of, store, task_id


def operator() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no user name in some containers
        return "unknown operator"


@dataclass
class Plan:
    record: dict[str, Any]
    task: dict[str, Any] | None  # as ECS describes it now; None: no task or forgotten
    github: GitHubClient | None  # None: GitHub could not be reached (github_problem says why)
    registration: dict[str, Any] | None  # the GitHub runner, None: not registered
    github_problem: str | None

    @property
    def name(self) -> str:
        return str(self.record.get("runner_name"))

    @property
    def task_live(self) -> bool:
        return tasks.is_live(self.task)

    @property
    def record_open(self) -> bool:
        return self.record.get("status") not in TERMINAL

    @property
    def nothing_to_do(self) -> bool:
        return not (self.task_live or self.record_open or self.registration)


def make_plan(record: dict[str, Any]) -> Plan:
    cfg = Config.current()
    name = str(record.get("runner_name"))
    lease_until = int(record.get("lease_until") or 0)
    launching = record.get("status") == "pending" and not record.get("task_arn")
    if launching and lease_until > time.time():  # the control plane is starting it: no race
        raise CliError(
            f"runner {name} is being launched right now; try again in "
            f"{int(lease_until - time.time()) + 1}s"
        )
    task_arn = record.get("task_arn")
    task = tasks.describe(cfg.client("ecs"), task_arn) if task_arn else None
    github, registration, problem = None, None, None
    try:
        with github_access.quiet_logs():
            github = github_access.client(cfg)
            registration = github.find_runner(name)
    except Exception as exc:  # GitHub is the last, optional step: say why, stop the runner
        github, problem = None, _why(exc)
    return Plan(record, task, github, registration, problem)


def describe_plan(plan: Plan) -> list[str]:
    lines = []
    if plan.task_live:
        lines.append(f"stop ECS task {task_id(plan.task['taskArn'])} ({plan.task['lastStatus']})")
    if plan.record_open:
        lines.append(f"mark the record stopped (now {plan.record.get('status')})")
    if plan.registration:
        lines.append(f"remove runner {plan.registration['id']} from GitHub")
    elif plan.github_problem:
        lines.append("remove the runner from GitHub, if it is registered")
    return lines


def terminate(record: dict[str, Any], assume_yes: bool) -> None:
    plan = make_plan(record)
    status = record.get("status")
    if plan.nothing_to_do:
        ended = age(record.get("updated_at"))
        task = "its task is not running" if record.get("task_arn") else "no task was started"
        click.echo(
            f"runner {plan.name} is already {status} ({ended} ago): {task}"
            + ("" if plan.github_problem else " and GitHub has no runner of that name")
            + "; nothing to do"
        )
        if plan.github_problem:
            raise CliError(f"could not check GitHub: {plan.github_problem}")
        return
    if not assume_yes:
        click.echo(f"Runner {plan.name} (job {record.get('job_id')}, {status}). This will:")
        for line in describe_plan(plan):
            click.echo(f"  - {line}")
        click.confirm("Terminate it?", abort=True)

    reason = f"Terminated by {operator()} with ecsrunner"
    click.echo(f"Terminating runner {plan.name}:")
    stop_task(plan, reason)  # an AWS error ends the command here (exit 1), nothing else done
    mark_stopped(plan, reason)
    if not remove_from_github(plan):
        raise CliError(f"runner {plan.name} is stopped, but could not be removed from GitHub")


def stop_task(plan: Plan, reason: str) -> None:
    task_arn = plan.record.get("task_arn")
    if not task_arn:
        click.echo("  ECS: no task was started")
        return
    if plan.task is None:
        click.echo(f"  ECS: task {task_id(task_arn)} is gone (ECS no longer knows it)")
        return
    if not plan.task_live:
        click.echo(f"  ECS: task {task_id(task_arn)} is already {plan.task.get('lastStatus')}")
        return
    ecs = Config.current().client("ecs")
    ecs.stop_task(cluster=cluster_of(task_arn), task=task_arn, reason=reason[:255])
    click.echo(f"  ECS: task {task_id(task_arn)} stopped (was {plan.task.get('lastStatus')})")


def mark_stopped(plan: Plan, reason: str) -> None:
    job_id = int(plan.record["job_id"])
    if store().transition(job_id, "stopped", reason=reason):
        click.echo(f"  state table: marked stopped (was {plan.record.get('status')})")
    else:
        current = (store().get(job_id) or {}).get("status")
        click.echo(f"  state table: already {current}")


def remove_from_github(plan: Plan) -> bool:
    """False if the runner may still be registered with GitHub."""
    if plan.github is None:
        click.echo(f"  GitHub: not done: {plan.github_problem}")
        return False
    if plan.registration is None:
        click.echo("  GitHub: not registered (an ephemeral runner is removed when its job ends)")
        return True
    runner_id = int(plan.registration["id"])
    try:
        with github_access.quiet_logs():
            removed = plan.github.delete_runner(runner_id)
    except GitHubError as exc:
        if exc.status == 422:  # "still running a job": GitHub has not noticed the stop yet
            click.echo(
                f"  GitHub: runner {runner_id} is still busy with its job: GitHub fails the "
                "job once the stopped runner stops answering (a few minutes); run this "
                "command again then to remove it"
            )
            return False
        click.echo(f"  GitHub: not done: {_why(exc)}")
        return False
    except Exception as exc:  # the runner is stopped already: report, do not hide that
        click.echo(f"  GitHub: not done: {_why(exc)}")
        return False
    click.echo(f"  GitHub: runner {runner_id} removed" if removed else "  GitHub: already removed")
    return True


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, github_access.Unavailable) else describe(exc)
