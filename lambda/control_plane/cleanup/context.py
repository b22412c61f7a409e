"""One cleanup run: its limits, counters, time budget, and what it has read so far.

Every action of the cleanup is bounded per run (a `Limits` budget, and the invocation's
remaining time); what does not fit is left for the next run, which finds it again because
each action changes what the next run sees (a stopped task is no longer listed, a reconciled
record is terminal, a deleted registration is gone).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from control_plane import log, retry
from control_plane.cleanup.policy import Thresholds
from control_plane.services import Services
from control_plane.state import iso
from control_plane.workflow_job import job_id_of_runner

# Keep back enough time to finish a launch (GitHub + SSM + RunTask) and log the summary.
TIME_RESERVE_SECONDS = 15.0
LOOKBACK_MIN_SECONDS = 24 * 3600.0  # ECS clientTokens and unused JIT registrations last a day

COUNTS = (
    "tasks_stopped_timeout",
    "tasks_stopped_idle",
    "tasks_stopped_orphan",
    "tasks_stopped_lingering",
    "tasks_stopped_spare",
    "tasks_waiting_for_capacity",
    "records_reconciled",
    "jobs_relaunched",
    "launches_resumed",
    "records_failed",
    "dlq_replayed",
    "dlq_dropped",
    "dlq_left",
    "queued_jobs_launched",
    "queued_jobs_rejected",
    "jobs_stranded",
    "registrations_deleted",
    "jit_configs_deleted",
    "builds_reconciled",
    "task_definitions_deregistered",
    "errors",
)


@dataclass(frozen=True)
class Limits:
    """Most of each kind of work one run does (AWS and GitHub rate limits, Lambda time).

    GitHub's secondary rate limit is about 900 points a minute and a POST or DELETE costs 5:
    100 deletions and 20 launches (one JIT registration each) stay well inside it.
    """

    task_stops: int = 100
    record_updates: int = 200
    launches: int = 20
    github_reads: int = 100
    # org scope: repositories of the organization looked at for lost jobs, from where the
    # last run stopped (two reads each at least: their queued and in-progress runs)
    repository_scans: int = 20
    registration_deletes: int = 100
    config_deletes: int = 200
    dlq_messages: int = 50
    listed_records: int = 20000
    listed_tasks: int = 2000
    listed_runners: int = 2000
    listed_configs: int = 1000
    # `-img` task definitions (images.py); what one run leaves, the next one does
    task_definition_deregisters: int = 20
    listed_task_definitions: int = 1000


@dataclass
class CleanupRun:
    svc: Services
    limits: Limits
    now: float
    counts: Counter = field(default_factory=Counter)
    used: Counter = field(default_factory=Counter)
    deferred: set[str] = field(default_factory=set)
    live: dict[str, dict[str, Any]] | None = None  # the cluster's live tasks, once listed
    stopped: set[str] = field(default_factory=set)  # task ARNs stopped by this run
    _records: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts.update(dict.fromkeys(COUNTS, 0))

    # ------------------------------------------------------------------ bounds

    @cached_property
    def thresholds(self) -> Thresholds:
        return Thresholds.from_settings(self.svc.settings)

    def has_time(self) -> bool:
        if self.svc.deadline.remaining() > TIME_RESERVE_SECONDS:
            return True
        self.deferred.add("time")
        return False

    def take(self, budget: str) -> bool:
        """One unit of `budget` (a field of Limits), if this run's limit and time allow it."""
        limit = getattr(self.limits, budget)
        if not self.has_time():
            return False
        if self.used[budget] >= limit:
            self.deferred.add(budget)
            return False
        self.used[budget] += 1
        return True

    def count(self, name: str, n: int = 1) -> None:
        assert name in COUNTS, name
        self.counts[name] += n

    # ------------------------------------------------------------------ state records

    @cached_property
    def recent(self) -> list[int]:
        """Job ids of the records created within the lookback window, newest first (the
        state table's by-kind-created index, never a scan)."""
        lookback = max(LOOKBACK_MIN_SECONDS, 2 * self.thresholds.timeout_s)
        ids = []
        records = self.svc.store.newest(since=iso(self.now - lookback))
        for record in itertools.islice(records, self.limits.listed_records):
            job_id = int(record["job_id"])
            self._records[job_id] = record
            ids.append(job_id)
        return ids

    def record(self, job_id: int, fresh: bool = False) -> dict[str, Any] | None:
        """The job's record as read by this run (a consistent read the first time). Anything
        that deletes or stops asks for a `fresh` read first: another run, or a webhook, may
        have changed the record since (a relaunch's new runner must not look stale)."""
        if fresh or job_id not in self._records:
            self._records[job_id] = self.svc.store.get(job_id)
        return self._records[job_id]

    def changed(self, job_id: int) -> None:
        """This run changed the record: the next look reads it again."""
        self._records.pop(job_id, None)

    # ------------------------------------------------------------------ GitHub runners

    @cached_property
    def fleet_runners(self) -> dict[str, dict[str, Any]] | None:
        """This fleet's runner registrations by name (None when GitHub could not list them:
        then nothing that depends on them is decided in this run)."""
        prefix = self.svc.settings.name_prefix
        try:
            listed = itertools.islice(self.svc.github.runners(), self.limits.listed_runners)
            return {
                r["name"]: r for r in listed if job_id_of_runner(prefix, r.get("name")) is not None
            }
        except Exception as exc:
            self.count("errors")
            log.error("cleanup: could not list GitHub runners", error=retry.describe(exc))
            return None
