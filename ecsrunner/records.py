"""The state table as the CLI reads it, through the control plane's own StateStore: runner
references (name or job id), listing newest first with filters, and the public JSON shape."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from control_plane.state import ORDER, TERMINAL, StateStore
from control_plane.workflow_job import job_id_of_runner

from ecsrunner.config import CliError, Config, ConfigError
from ecsrunner.output import duration, iso_of_epoch, jsonable, parse_time

STATUSES = (*ORDER, *TERMINAL)
ACTIVE = "active"  # --status active: every status before the terminal ones
UNSUCCESSFUL = ("rejected", "failed")  # the statuses `runners list` gives a REASON
PAGE_SIZE = 100

# `runners list --output json`: every runner has all of these keys (null when unknown).
SUMMARY_FIELDS = (
    "runner_name",
    "job_id",
    "status",
    "class_name",
    "cpu",
    "memory",
    "repository",
    "workflow_name",
    "job_name",
    "run_id",
    "run_attempt",
    "labels",
    "image",
    "task_arn",
    "capacity_provider",
    "conclusion",
    "exit_code",
    "stop_reason",
    "reason",
    "served_job_id",
    "created_at",
    "updated_at",
)
# Stored as epoch seconds (DynamoDB TTL, launch lease): ISO 8601 in JSON, like every time.
EPOCH_FIELDS = ("expires_at", "lease_until")
# Where the runner's JIT config is put (`jit_parameter`: records of versions that kept it in
# SSM). Recorded before the config is created, which happens only on the way to a task.
JIT_FIELDS = ("jit_object", "jit_parameter")


def store() -> StateStore:
    cfg = Config.current()
    return StateStore(cfg.require_table(), cfg.client("dynamodb"))


def job_id_of(reference: str) -> int:
    """The job id behind a runner reference: `<name_prefix>-<job id>[-<attempt>]` or the id."""
    reference = reference.strip()
    if reference.isdigit():
        return int(reference)
    prefix = Config.current().name_prefix
    job_id = job_id_of_runner(prefix, reference)
    if job_id is None:
        raise ConfigError(
            f"{reference!r} is not a runner of this fleet: give its name "
            f"({prefix}-<job id>) or its job id"
        )
    return job_id


def load(reference: str) -> dict[str, Any]:
    """The runner's record; exit 1 if the table has none."""
    job_id = job_id_of(reference)
    record = store().get(job_id)
    if record is None:
        raise CliError(f"no runner {reference} in table {Config.current().table}")
    return record


def statuses_of(selected: Iterable[str]) -> set[str]:
    wanted: set[str] = set()
    for status in selected:
        wanted.update(ORDER if status == ACTIVE else (status,))
    return wanted


def newest(
    *,
    since: str | None = None,
    statuses: Iterable[str] = (),
    repo: str | None = None,
    class_name: str | None = None,
    limit: int = 0,
) -> tuple[list[dict[str, Any]], bool]:
    """Runner records newest first that pass the filters (repository and class compared
    case-insensitively, as GitHub and the labels do); at most `limit` (0: all). Returns the
    records and whether more matched."""
    wanted = statuses_of(statuses)
    found: list[dict[str, Any]] = []
    for record in _matching(store().newest(since=since, page_size=PAGE_SIZE), wanted, repo):
        if class_name and str(record.get("class_name", "")).lower() != class_name.lower():
            continue
        if limit and len(found) == limit:
            return found, True
        found.append(record)
    return found, False


def _matching(
    records: Iterator[dict[str, Any]], statuses: set[str], repo: str | None
) -> Iterator[dict[str, Any]]:
    for record in records:
        if statuses and record.get("status") not in statuses:
            continue
        if repo and str(record.get("repository", "")).lower() != repo.lower():
            continue
        yield record


def failure_reason(record: dict[str, Any]) -> str | None:
    """Why a runner was rejected or failed: the fleet's reason (rejection, launch or build
    failure), else how its task stopped, with the runner's exit code; None for any other
    status."""
    if record.get("status") not in UNSUCCESSFUL:
        return None
    if record.get("reason"):
        return str(record["reason"])
    return how_it_stopped(record)


def how_it_stopped(record: dict[str, Any]) -> str | None:
    """The task's stop reason and the runner's exit code, as far as the record has them."""
    exit_code = record.get("exit_code")
    stopped = [str(record["stop_reason"])] if record.get("stop_reason") else []
    stopped += [f"exit code {exit_code}"] if exit_code is not None else []
    return "; ".join(stopped) or None


def summary(record: dict[str, Any]) -> dict[str, Any]:
    return {name: jsonable(record.get(name)) for name in SUMMARY_FIELDS}


def detail(record: dict[str, Any]) -> dict[str, Any]:
    """`runners details --output json`, field `runner`: the summary fields (always), the
    `history`, then every other stored field; epoch-second fields as ISO 8601. A record
    without a task shows no JIT config key: its config never reached a task (a rejected job
    never had one; what a failed launch left is the cleanup's to delete)."""
    shown = {**summary(record), "history": jsonable(record.get("history") or [])}
    never_created = () if record.get("task_arn") else JIT_FIELDS
    for name in sorted(set(record) - set(shown) - set(never_created)):
        value = record[name]
        shown[name] = iso_of_epoch(value) if name in EPOCH_FIELDS else jsonable(value)
    return shown


# ---------------------------------------------------------------------- timeline


def entered(record: dict[str, Any], statuses: Iterable[str]) -> str | None:
    """When the record first reached one of `statuses` (its history), or None."""
    wanted = set(statuses)
    for entry in record.get("history") or []:
        if entry.get("status") in wanted:
            return entry.get("at")
    return None


def finished_at(record: dict[str, Any]) -> str | None:
    return entered(record, TERMINAL)


def timeline_rows(record: dict[str, Any]) -> list[list[Any]]:
    """STATUS, AT, AFTER (time since the record was created), REASON."""
    start = parse_time(record.get("created_at"))
    rows = []
    for entry in record.get("history") or []:
        moment = parse_time(entry.get("at"))
        after = duration(moment - start) if moment is not None and start is not None else None
        rows.append([entry.get("status"), entry.get("at"), after, entry.get("reason")])
    return rows


# ---------------------------------------------------------------------- ECS tasks


def cluster_of(task_arn: str) -> str:
    """`arn:aws:ecs:<region>:<account>:task/<cluster>/<task id>` → cluster."""
    parts = task_arn.split(":", 5)[-1].split("/")
    return parts[1] if len(parts) == 3 else "default"


def task_id(task_arn: str | None) -> str | None:
    return task_arn.rsplit("/", 1)[-1] if task_arn else None
