"""The fleet as a whole: `list-class-sizes` (SSM), `cluster status` (ECS + state table) and
`stats` (state table)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click
from botocore.exceptions import ClientError
from control_plane.classes import ClassSizes, ClassSizesError, parse_class_sizes
from control_plane.cost import INCLUDED_STORAGE_GIB as FARGATE_DISK_GIB

from ecsrunner import records, stats, tasks
from ecsrunner.config import (
    AWS,
    CLASS_SIZES,
    CLUSTER_VAR,
    OUTPUT,
    TABLE,
    CliError,
    Config,
    ConfigError,
    uses,
)
from ecsrunner.output import duration, emit, memory, since_time, spread, table, usd, vcpu

DEFAULT_SINCE = "24h"
STATS_SINCE = "7d"
RECENT = "1h"  # `cluster status`: the queue wait of the jobs created this recently


@click.command("list-class-sizes")
@uses(CLASS_SIZES, AWS, OUTPUT)
def list_class_sizes() -> None:
    """The runner classes: size, architecture, disk, Fargate or Docker.

    Read from the SSM parameter the control plane reads; a job picks its class with a
    class:<name> label, and the default class (jobs without one) is marked. CAPACITY is a
    Fargate class's own capacity strategy (module-wide: the module's capacity_strategy) or a
    Docker class's EC2 capacity provider.

    \b
    Examples:
      ecsrunner list-class-sizes
      ecsrunner list-class-sizes --class-sizes-param /runner-fleet/config/class-sizes -o json
    """
    cfg = Config.current()
    name = cfg.require_class_sizes_param()
    classes = class_views(read_class_sizes(cfg, name))

    def render() -> str:
        rows = [
            [c["name"], vcpu(c["cpu"]), memory(c["memory"]), *placement_cells(c), yes(c)]
            for c in classes
        ]
        return table(rows, ["CLASS", "VCPU", "MEMORY", *PLACEMENT_HEADERS, "DEFAULT"])

    default = next(c["name"] for c in classes if c["default"])
    emit({"parameter": name, "default_class": default, "classes": classes}, render)


PLACEMENT_HEADERS = ["ARCH", "DISK", "RUNS ON", "CAPACITY"]


def yes(view: dict[str, Any]) -> str:
    return "yes" if view["default"] else "no"


def read_class_sizes(cfg: Config, name: str) -> ClassSizes:
    text = cfg.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    try:
        return parse_class_sizes(text)
    except ClassSizesError as exc:
        raise CliError(f"the class sizes in {name} are invalid: {exc}") from exc


def class_views(sizes: ClassSizes) -> list[dict[str, Any]]:
    """Each class as the CLI shows it (JSON fields: docs/cli.md), smallest first.
    `disk_gib`: a Fargate task's ephemeral storage (None for a Docker class: the instance's
    volume); `capacity`: a Fargate class's own strategy (None: the module-wide one) or a
    Docker class's EC2 capacity provider."""
    ordered = sorted(sizes.classes.items(), key=lambda item: (item[1].cpu, item[1].memory, item[0]))
    return [
        {
            "name": name,
            "cpu": size.cpu,
            "memory": size.memory,
            "vcpu": size.cpu / 1024,
            "memory_gib": size.memory / 1024,
            "architecture": size.architecture,
            "disk_gib": None if size.docker else size.ephemeral_storage_gib or FARGATE_DISK_GIB,
            "runs_on": "docker" if size.docker else "fargate",
            "capacity": size.capacity_provider if size.docker else size.capacity_strategy,
            "default": name == sizes.default_class,
        }
        for name, size in ordered
    ]


def placement_cells(view: dict[str, Any]) -> list[str]:
    """ARCH, DISK, RUNS ON and CAPACITY of a class view, as the tables show them."""
    docker = view["runs_on"] == "docker"
    return [
        view["architecture"],
        "instance volume" if docker else f"{view['disk_gib']} GiB",
        "Docker (EC2)" if docker else "Fargate",
        view["capacity"] or "module-wide",
    ]


@click.group()
def cluster() -> None:
    """The fleet's ECS cluster."""


@cluster.command()
@click.argument("cluster_name", metavar="[CLUSTER]", envvar=CLUSTER_VAR, required=False)
@click.option(
    "--since",
    default=DEFAULT_SINCE,
    show_default=True,
    metavar="WHEN",
    help="Count the runners created within this span (30m, 12h, 7d) or since a date.",
)
@uses(TABLE, CLASS_SIZES, AWS, OUTPUT)
def status(cluster_name: str | None, since: str) -> None:
    """Tasks running and pending per class and capacity provider, the classes, and runners
    by status.

    Task counts come from ECS (tasks meant to run); the classes (architecture, disk, Fargate
    or Docker, capacity) from the class sizes parameter (default
    `/<name_prefix>/config/class-sizes`); runner counts, and the queue wait (p50, p90) of the
    jobs created in the last hour, from the state table. CLUSTER defaults to $CLUSTER_NAME.

    \b
    Examples:
      ecsrunner cluster status runner-fleet
      ecsrunner cluster status runner-fleet --since 7d --output json
    """
    if not cluster_name:
        raise ConfigError(f"no cluster: give the CLUSTER argument or set {CLUSTER_VAR}")
    cfg = Config.current()
    since_iso = since_time(since)
    by_class = tasks.count(tasks.running_tasks(cfg.client("ecs"), cluster_name), cfg.name_prefix)
    counted = Counter(r.get("status") for r in records.store().newest(since=since_iso))
    by_status = {s: counted.get(s, 0) for s in records.STATUSES}
    totals = {p: sum(row[p] for row in by_class) for p in ("running", "pending", "stopping")}
    recent = since_time(RECENT)
    recent_wait = stats.summarize(records.store().newest(since=recent))["queue_wait_seconds"]
    queue_wait = {"since": recent, "p50": recent_wait["p50"], "p90": recent_wait["p90"]}
    classes, unread = _classes(cfg)

    def render() -> str:
        rows = [
            [r["class"], r["capacity_provider"], r["running"], r["pending"], r["stopping"]]
            for r in by_class
        ]
        rows.append(["total", "", totals["running"], totals["pending"], totals["stopping"]])
        headers = ["CLASS", "CAPACITY PROVIDER", "RUNNING", "PENDING", "STOPPING"]
        statuses = table([[s, n] for s, n in by_status.items()], ["STATUS", "RUNNERS"], [1])
        waits = ", ".join(f"{p} {duration(queue_wait[p])}" for p in ("p50", "p90"))
        class_rows = [[c["name"], *placement_cells(c)] for c in classes or []]
        described = table(class_rows, ["CLASS", *PLACEMENT_HEADERS]) if classes else unread
        return (
            f"Cluster {cluster_name}: tasks\n{table(rows, headers, [2, 3, 4])}\n\n"
            f"Classes ({cfg.class_sizes_param})\n{described}\n\n"
            f"Runners created since {since_iso} (table {cfg.table})\n{statuses}\n\n"
            f"Queue wait of the jobs created in the last hour: {waits}"
        )

    emit(
        {
            "cluster": cluster_name,
            "tasks": by_class,
            "totals": totals,
            "classes": classes,
            "runners": {"table": cfg.table, "since": since_iso, "by_status": by_status},
            "queue_wait_seconds": queue_wait,
        },
        render,
    )


def _classes(cfg: Config) -> tuple[list[dict[str, Any]] | None, str]:
    """The class views for `cluster status`, or None and why not (the status still shows
    the tasks and runners)."""
    if not cfg.class_sizes_param:
        cfg.class_sizes_param = f"/{cfg.name_prefix}/config/class-sizes"
    try:
        return class_views(read_class_sizes(cfg, cfg.class_sizes_param)), ""
    except CliError as exc:
        return None, f"not shown: {exc.format_message()}"
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return None, f"not shown: {error.get('Code', 'Error')}: {error.get('Message', '')}"


@click.command("stats")
@click.option(
    "--since",
    default=STATS_SINCE,
    show_default=True,
    metavar="WHEN",
    help="The jobs created within this span (30m, 12h, 7d, 2w) or since an ISO 8601 date/time.",
)
@click.option("--repo", metavar="OWNER/REPO", help="Only jobs of this repository.")
@click.option("--class", "class_name", metavar="CLASS", help="Only jobs of this class.")
@uses(TABLE, AWS, OUTPUT)
def fleet_stats(since: str, repo: str | None, class_name: str | None) -> None:
    """Job outcomes, queue wait, start time and cost, overall and by class.

    Of the jobs created since --since: how many ended how (in-flight: not finished), the
    p50 / p90 / max of their queue wait (GitHub's created to started) and start time (RunTask
    to the task running), and the total and mean estimated Fargate cost of those with a cost
    (a Docker class's EC2 tasks have none: EC2 bills the instance).
    Read from the state table only.

    \b
    Examples:
      ecsrunner stats
      ecsrunner stats --since 24h --class large
      ecsrunner stats --repo octo-org/app --since 2026-11-01 --output json
    """
    since_iso = since_time(since)
    found, _ = records.newest(since=since_iso, repo=repo, class_name=class_name)
    summary = stats.summarize(found)
    filters = [f"repository {repo}" if repo else "", f"class {class_name}" if class_name else ""]
    title = ", ".join([f"Jobs created since {since_iso}", *filter(None, filters)])
    emit({"since": since_iso, **summary}, lambda: _stats_text(title, summary))


def _stats_text(title: str, summary: dict) -> str:
    if not summary["jobs"]:
        return f"{title}: none"
    rows = {**summary["by_class"], "all": summary}
    outcomes = [
        [name, s["jobs"], *(s["outcomes"][o] for o in stats.OUTCOMES)] for name, s in rows.items()
    ]
    headers = ["CLASS", "JOBS", *(o.upper() for o in stats.OUTCOMES)]
    times = [
        [
            name,
            spread(s["queue_wait_seconds"]),
            spread(s["start_seconds"]),
            usd(s["cost_usd"]["total"]),
            usd(s["cost_usd"]["per_job_mean"]),
        ]
        for name, s in rows.items()
    ]
    return (
        f"{title} (table {Config.current().table})\n"
        f"{table(outcomes, headers, range(1, len(headers)))}\n\n"
        "Queue wait and start time (p50 / p90 / max); cost of the jobs that have one\n"
        f"{table(times, ['CLASS', 'QUEUE WAIT', 'START', 'COST', 'PER JOB'])}"
    )
