"""`ecsrunner runs list`: the jobs the fleet's runners ran, with conclusion and duration."""

from __future__ import annotations

from typing import Any

import click

from ecsrunner import records, stats
from ecsrunner.config import AWS, LIMIT, OUTPUT, SINCE, TABLE, ConfigError, uses
from ecsrunner.output import age, duration, emit, jsonable, parse_time, since_time, table, usd

RAN = tuple(s for s in records.STATUSES if s != "rejected")  # a rejected job had no runner


def run_of(record: dict[str, Any]) -> dict[str, Any]:
    """One job as a run: started when the runner took it (busy; else when its task ran),
    finished at the runner's terminal status."""
    started = records.entered(record, ("busy",)) or records.entered(record, ("running",))
    finished = records.finished_at(record)
    rejected = record.get("status") == "rejected"
    start, end = parse_time(started), parse_time(finished)
    took = round(end - start, 3) if start is not None and end is not None else None
    return jsonable(
        {
            "job_id": record.get("served_job_id") or record.get("job_id"),
            # a rejected job never had a runner: its record only names the one it would have had
            "runner_name": None if rejected else record.get("runner_name"),
            "repository": record.get("repository"),
            "workflow_name": record.get("workflow_name"),
            "job_name": record.get("job_name"),
            "run_id": record.get("run_id"),
            "run_attempt": record.get("run_attempt"),
            "status": record.get("status"),
            # the run is the job the runner ran: another job's outcome when it took one
            "conclusion": (
                record.get("served_conclusion")
                if record.get("served_job_id")
                else record.get("conclusion")
            ),
            "created_at": record.get("created_at"),
            "started_at": started,
            "finished_at": finished,
            "duration_seconds": took,
            **stats.measures(record),
        }
    )


def shown_duration(run: dict[str, Any]) -> float | None:
    """The job's own duration on GitHub (started to completed) when recorded, else how long
    the runner had it."""
    return run["job_seconds"] if run["job_seconds"] is not None else run["duration_seconds"]


@click.group()
def runs() -> None:
    """The jobs runners ran."""


@runs.command("list")
@click.option("--runner-id", metavar="RUNNER", help="The job of one runner (name or job id).")
@click.option("--repo", metavar="OWNER/REPO", help="The jobs of one repository, newest first.")
@click.option(
    "--all", "everything", is_flag=True, help="Rejected jobs too (no runner was started)."
)
@SINCE
@LIMIT
@uses(TABLE, AWS, OUTPUT)
def list_runs(
    runner_id: str | None, repo: str | None, everything: bool, since: str | None, limit: int
) -> None:
    """List jobs with their conclusion and duration (--runner-id or --repo).

    DURATION is the job's time on GitHub (started to completed) as the control plane
    recorded it, else from when the runner took the job to when it finished. COST is the
    job's estimated Fargate cost (none for a Docker class: EC2 bills the instance). Jobs the
    fleet rejected had no runner: --all lists them too.

    \b
    Examples:
      ecsrunner runs list --repo octo-org/app
      ecsrunner runs list --repo octo-org/app --since 7d --output json
      ecsrunner runs list --repo octo-org/app --all
      ecsrunner runs list --runner-id runner-fleet-1234567890
    """
    if bool(runner_id) == bool(repo):
        raise ConfigError("give one of --runner-id RUNNER or --repo OWNER/REPO")
    if runner_id:
        found, truncated = [records.load(runner_id)], False
    else:
        found, truncated = records.newest(
            since=since_time(since),
            statuses=records.STATUSES if everything else RAN,
            repo=repo,
            limit=limit,
        )
    shown = [run_of(r) for r in found]

    def render() -> str:
        if not shown:
            return "no runs match"
        rows = [
            [
                r["job_id"],
                " / ".join(x for x in (r["workflow_name"], r["job_name"]) if x),
                r["repository"],
                r["runner_name"],
                r["status"],
                r["conclusion"],
                duration(shown_duration(r)),
                usd(r["cost_usd"]),
                age(r["created_at"]),
            ]
            for r in shown
        ]
        headers = [
            "JOB",
            "NAME",
            "REPOSITORY",
            "RUNNER",
            "STATUS",
            "CONCLUSION",
            "DURATION",
            "COST",
            "AGE",
        ]
        text = table(rows, headers)
        if truncated:
            text += f"\n({len(shown)} shown; more match: raise --limit or use --since)"
        return text

    emit({"runs": shown, "truncated": truncated}, render)
