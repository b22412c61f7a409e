"""`python -m local_mode demo|up|down|job|status` (the Makefile's demo/local-* targets)."""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click

from local_mode import follow, runner_sim, send_job, stack

DEMO_LABELS = "self-hosted,class:medium"


def require_stack() -> dict:
    current = stack.load()
    if not current or current.get("status") != "ready":
        raise click.ClickException("no local stack is up: run `make local-up` first")
    return current


def cli_argv() -> list[str]:
    script = stack.REPO_ROOT / "ecsrunner_cli.py"
    return [sys.executable, str(script)]


def run_cli(current: dict, *args: str) -> int:
    argv = [*cli_argv(), *args]
    click.secho(f"$ ecsrunner {shlex.join(args)}", bold=True)
    if not Path(argv[1]).exists():
        click.echo("  (ecsrunner_cli.py is not in this checkout yet)")
        return 1
    result = subprocess.run(argv, env=stack.cli_env(current), check=False)
    return result.returncode


@click.group()
def main() -> None:
    """Local mode: the whole fleet on loopback (moto, a GitHub stand-in, the real module)."""


@main.command()
@click.option("--restart", is_flag=True, help="Restart even when the running stack is healthy.")
@click.option(
    "--job-seconds",
    type=float,
    default=None,
    help="How long each simulated job runs (default 1; a change restarts a running stack).",
)
@click.option(
    "--fail-builds",
    envvar="FAIL_BUILDS",
    default=None,
    metavar="PATTERNS",
    help="Image builds on a base matching one of these comma-separated glob patterns fail "
    "(e.g. 'docker.io/library/debian:*'); '' for none. Also applies to a running stack.",
)
def up(restart: bool, job_seconds: float | None, fail_builds: str | None) -> None:
    """Start the stack in the background (or reuse a healthy one)."""
    patterns = (
        None if fail_builds is None else [p.strip() for p in fail_builds.split(",") if p.strip()]
    )
    try:
        current = stack.up(
            restart=restart, say=click.echo, job_seconds=job_seconds, fail_builds=patterns
        )
    except stack.StackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"  webhook URL: {current['webhook_url']}")
    click.echo(f"  AWS endpoint: {current['aws_endpoint_url']}")
    click.echo(f"  GitHub API:   {current['github_api_url']}")
    click.echo(f"  logs:         {current['logs']}")
    click.echo(f"Point the CLI at it with: source {stack.env_file()}")


@main.command()
def down() -> None:
    """Stop every process of the stack."""
    stack.down(say=click.echo)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print stack.json and health as JSON.")
def status(as_json: bool) -> None:
    """Is the stack up and healthy?"""
    info = stack.status()
    if as_json:
        safe = json.loads(json.dumps(info))
        safe.get("stack", {}).pop("webhook_secret", None)
        click.echo(json.dumps(safe, indent=2, sort_keys=True))
        return
    if info["status"] == "down":
        click.echo("Local stack: down")
        sys.exit(1)
    current = info["stack"]
    click.echo(f"Local stack: {info['status']}")
    for problem in info["problems"]:
        click.echo(f"  - {problem}")
    for name, proc in info["processes"].items():
        state = "running" if proc["alive"] else "NOT running"
        click.echo(f"  {name:<11} pid {proc['pid']}  {state}")
    for key in (
        "aws_endpoint_url",
        "github_api_url",
        "webhook_url",
        "cluster_name",
        "runner_table",
    ):
        click.echo(f"  {key:<17} {current.get(key)}")
    sys.exit(0 if info["status"] == "healthy" else 1)


def default_timeout(current: dict) -> float:
    """A minute for the stack's work, plus how long its runners take over a job."""
    return 60.0 + float(current.get("job_seconds", runner_sim.DEFAULT_JOB_SECONDS))


@main.command()
@click.option("--labels", default=DEMO_LABELS, show_default=True, help="Comma-separated labels.")
@click.option("--bad-signature", is_flag=True, help="Sign with the wrong secret.")
@click.option("--job-id", type=int, default=None, help="Job id (default: a new unique one).")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the job, printing each status change, until its outcome.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait for the outcome (default: 60 plus the stack's job seconds).",
)
def job(
    labels: str, bad_signature: bool, job_id: int | None, wait: bool, timeout: float | None
) -> None:
    """Send a signed workflow_job `queued` webhook to the stack and say what became of it.

    Exits 0 when the job completed with success; 1 when it was refused, ignored or rejected,
    failed, or had no outcome within the timeout."""
    current = require_stack()
    job_id = job_id or send_job.new_job_id()
    watcher = follow.Watcher(current, job_id, say=click.echo)
    delivery = send_job.send_job(current, labels, job_id=job_id, bad_signature=bad_signature)
    signed = "a WRONG signature" if bad_signature else "a valid signature"
    click.echo(
        f"Sent workflow_job queued, job {delivery.job_id}, labels {delivery.labels}, "
        f"with {signed} (delivery {delivery.delivery_id}) → HTTP {delivery.status}"
    )
    if delivery.status >= 300:
        raise click.ClickException(f"the webhook endpoint answered {delivery.status}")
    outcome = follow.unrecorded(delivery.response)
    if outcome is None and wait:
        outcome = watcher.follow(timeout or default_timeout(current))
    elif outcome is None:
        outcome = follow.settled(*watcher.look())
    if outcome is None:
        click.echo(f"Follow it with: source {stack.env_file()} && ecsrunner runners list")
        return
    click.echo(outcome.summary)
    if not outcome.ok:
        click.echo(f"  logs: {current['logs']}")
        sys.exit(1)


def await_cost(watcher: follow.Watcher, timeout: float = 10.0) -> None:
    """The task's STOPPED event, which prices the job, may land just after GitHub's
    `completed`: wait (a little) for the record's cost before the stats read it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = watcher.store.get(watcher.job_id)
        if record and "cost_usd" in record:
            return
        time.sleep(follow.POLL_SECONDS)


@main.command()
@click.option("--labels", default=DEMO_LABELS, show_default=True)
@click.option("--restart", is_flag=True, help="Start from a fresh stack.")
def demo(labels: str, restart: bool) -> None:
    """Up, a job for [self-hosted, class:medium] becoming a runner, the CLI's view of it,
    and the stats of the jobs the stack ran."""
    started = time.monotonic()
    click.secho("== 1. The stack", bold=True)
    try:
        current = stack.up(restart=restart, say=click.echo)
    except stack.StackError as exc:
        raise click.ClickException(str(exc)) from exc

    click.secho(f"\n== 2. GitHub queues a job for [{labels}]", bold=True)
    job_id = send_job.new_job_id()
    watcher = follow.Watcher(current, job_id, say=click.echo)
    delivery = send_job.send_job(current, labels, job_id=job_id)
    click.echo(
        f"POST {current['webhook_url']} workflow_job/queued job {delivery.job_id} "
        f"(delivery {delivery.delivery_id}) → HTTP {delivery.status}"
    )
    if delivery.status >= 300:
        raise click.ClickException(f"webhook answered {delivery.status}: {delivery.response}")

    click.secho("\n== 3. The job, as GitHub and the fleet's state table record it", bold=True)
    outcome = watcher.follow(default_timeout(current))
    click.echo(outcome.summary)
    if not outcome.ok:
        click.echo(f"  logs: {current['logs']}")
        sys.exit(1)

    click.secho("\n== 4. The CLI's view", bold=True)
    run_cli(current, "runners", "list")
    click.echo()
    runner = (watcher.record or {}).get("runner_name") or str(delivery.job_id)
    run_cli(current, "runners", "details", runner)

    click.secho("\n== 5. What the fleet's jobs waited for and cost", bold=True)
    await_cost(watcher)
    run_cli(current, "stats", "--since", "1h")

    elapsed = time.monotonic() - started
    env = stack.env_file()
    click.secho(f"\n== Done in {elapsed:.0f}s. The stack keeps running; try:", bold=True)
    click.echo(
        f"""  make job LABELS="self-hosted,class:large"     # another job, another size
  make job LABELS="self-hosted,class:docker"    # a Docker class: the EC2 capacity provider
  make job LABELS="self-hosted,class:huge"      # an unknown class: rejected, no task
  make job LABELS="self-hosted,image:ubuntu:24.04"  # builds its runner image first
  make job BAD_SIGNATURE=1                      # a forged webhook: refused, nothing starts
  make job NOWAIT=1                             # send it and return at once
  source {env}                     # point the CLI and boto3 at the emulator
  ecsrunner runners list                         # every runner and its status
  ecsrunner runners details <runner name>        # one runner's timeline
  ecsrunner list-class-sizes                     # the classes from SSM
  ecsrunner stats --since 1h -o json             # queue wait, start time, cost
  python -m local_mode status                    # the stack's processes and URLs
Logs: {current["logs"]} (the Lambda's log lines and EMF metrics: webhook.log)
Stop it with: make local-down"""
    )


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Burst, cold-init, cleanup and rate-limited figures (local_mode/bench.py; `bench --help`)."""
    try:
        module = importlib.import_module("local_mode.bench")
    except ModuleNotFoundError as exc:
        raise click.ClickException("local_mode/bench.py is not in this checkout") from exc
    sys.exit(module.main(list(args)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(prog_name="python -m local_mode")
