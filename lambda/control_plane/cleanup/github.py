"""The cleanup's GitHub work: jobs no delivery brought us, and registrations nobody will use.

- Lost jobs: GitHub does not redeliver a failed webhook by itself. For the repositories in
  scope, jobs GitHub shows queued (in queued and in-progress runs) with labels this fleet
  serves and no record are handed to the webhook path (jobs.handle_queued), as if their event
  arrived. Repo scope: the fleet's repository. Org scope: every repository the PAT or the App
  installation sees, `Limits.repository_scans` a run from where the last run stopped (a cursor
  in the state table, wrapping around at the end of GitHub's listing), then the repositories
  of recent records not yet looked at. The listing goes first: it alone reaches a repository
  whose every delivery failed, and the recent ones are in it too.
- Stranded jobs: of the jobs the scan sees, those queued longer than STRANDED_JOB_SECONDS are
  counted (metric JobsStranded, published each run). A lower bound: the scan reads the newest
  runs of each status, stops at the run's budgets, and in org scope covers part of the
  organization per run.
- Stale registrations: this fleet's runners (name `${name_prefix}-${job_id}[-${n}]`) that
  are offline, have no live task, and whose record is missing, ended, or another attempt's.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from control_plane import jobs, log, metrics, retry
from control_plane.cleanup import policy
from control_plane.cleanup.context import CleanupRun
from control_plane.cleanup.tasks import live_tasks
from control_plane.github import PER_PAGE, GitHubError, rate_limit_delay
from control_plane.workflow_job import PayloadError, WorkflowJob, job_id_of_runner

RUN_STATUSES = ("queued", "in_progress")  # a run with a job still queued has one of these
MAX_RECENT_REPOSITORIES = 20  # org scope: repositories of recent records looked at per run
MAX_RUNS_PER_STATUS = 20  # the newest runs of each status (a job queued longer waits a run)
DELIVERY_ID = "cleanup"  # in place of GitHub's delivery id in the record and the logs
CURSOR = "lost-jobs"  # the state table's cursor into the organization's repository listing
REFUSED = (403, 404)  # GitHub will not show a repository's runs: skip it, do not stall on it


def launch_lost_jobs(run: CleanupRun) -> None:
    """Launches queued jobs this fleet serves that have no record (bounded per run), and
    publishes how many of the jobs it saw are stranded (JobsStranded, 0 included, so that the
    alarm sees the count fall; a lower bound: the scan is bounded per run)."""
    try:
        _scan_scope(run)
    finally:  # what a scan cut short (budget, an outage) saw still counts
        metrics.emit(run.svc.settings, "JobsStranded", run.counts["jobs_stranded"])


def _scan_scope(run: CleanupRun) -> None:
    settings = run.svc.settings
    if settings.github_scope == "repo":
        _scan(run, settings.scope_name)
        return
    done = scan_organization(run)
    for repository in recent_repositories(run):
        if repository.lower() not in done and not _scan(run, repository):
            return


def recent_repositories(run: CleanupRun) -> list[str]:
    """Org scope: the repositories of the recent records (the likeliest to have lost jobs)."""
    seen: dict[str, str] = {}
    for job_id in run.recent:
        repository = (run.record(job_id) or {}).get("repository")
        if repository:
            seen.setdefault(repository.lower(), repository)
    return list(seen.values())[:MAX_RECENT_REPOSITORIES]


def scan_organization(run: CleanupRun) -> set[str]:
    """Looks at the next `repository_scans` repositories of the organization's listing from
    the cursor, which then moves past those looked at completely (to 0 at the listing's end).
    Archived and disabled repositories run no job: passed over. Returns the names looked at
    (lowercase)."""
    store = run.svc.store
    start = store.cursor(CURSOR)
    entries, ends = _listing(run, start)
    if not entries and ends and start:  # the listing shrank below the cursor: start over
        start = 0
        entries, ends = _listing(run, start)
    done: set[str] = set()
    position = start
    try:
        for offset, repository in entries:
            name = repository.get("full_name")
            if name and not (repository.get("archived") or repository.get("disabled")):
                if not _scan(run, name):
                    break  # the budget ran out: the next run starts at this repository
                done.add(name.lower())
            position = offset + 1
        else:
            if ends:
                position = 0
    finally:  # an error stops at the repository it happened in; what was done stays done
        if position != start:
            store.set_cursor(CURSOR, position)
    return done


def _listing(run: CleanupRun, start: int) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """Up to `repository_scans` repositories of the listing from position `start`, with their
    positions, and whether the listing ends with them (one GitHub read a page)."""
    size = run.limits.repository_scans
    page, skip = divmod(start, PER_PAGE)
    entries: list[tuple[int, dict[str, Any]]] = []
    while len(entries) < size and run.take("github_reads"):
        items = run.svc.github.organization_repositories(page + 1)
        entries += enumerate(items[skip:], start=page * PER_PAGE + skip)
        if len(items) < PER_PAGE:
            return entries[:size], len(entries) <= size
        page, skip = page + 1, 0
    return entries[:size], False


def _scan(run: CleanupRun, repository: str) -> bool:
    """Launches the repository's lost jobs; False if this run's budget ran out first."""
    try:
        return _scan_runs(run, repository)
    except GitHubError as exc:
        if exc.status not in REFUSED or rate_limit_delay(exc, time.time()) is not None:
            raise
        run.count("errors")
        log.warning(
            "cleanup: GitHub shows no runs of the repository: skipped",
            repository=repository,
            error=str(exc),
        )
        return True


def _scan_runs(run: CleanupRun, repository: str) -> bool:
    github = run.svc.github
    for status in RUN_STATUSES:
        if not run.take("github_reads"):
            return False
        runs = itertools.islice(github.workflow_runs(repository, status), MAX_RUNS_PER_STATUS)
        for workflow_run in list(runs):
            if not run.take("github_reads"):
                return False
            for job in github.run_jobs(repository, int(workflow_run["id"])):
                _note_stranded(run, job)
                if not _lost(run, job):
                    continue
                if not run.take("launches"):
                    return False
                _launch(run, repository, job)
    return True


def _note_stranded(run: CleanupRun, job: dict[str, Any]) -> None:
    settings = run.svc.settings
    extra, limit = settings.runner_extra_labels, settings.stranded_job_seconds
    if policy.stranded_job(job, run.now, extra, limit):
        run.count("jobs_stranded")
        log.warning("cleanup: job queued on GitHub past the stranded limit", job_id=job.get("id"))


def _lost(run: CleanupRun, job: dict[str, Any]) -> bool:
    extra = run.svc.settings.runner_extra_labels
    if not policy.lost_job(job, run.now, extra, run.thresholds):
        return False
    try:
        return run.record(int(job["id"])) is None
    except (KeyError, TypeError, ValueError):
        return False


def _launch(run: CleanupRun, repository: str, job: dict[str, Any]) -> None:
    payload = {"action": "queued", "workflow_job": job, "repository": {"full_name": repository}}
    with log.bound(job_id=job.get("id"), repository=repository, delivery_id=DELIVERY_ID):
        try:
            workflow_job = WorkflowJob.from_payload(payload)
            log.warning("cleanup: queued job has no record: launching it", run_id=job.get("run_id"))
            result = jobs.handle_queued(workflow_job, run.svc, DELIVERY_ID)
        except PayloadError as exc:
            log.warning("cleanup: queued job not understood", error=str(exc))
            return
        except Exception as exc:  # the record stays resumable: the next run resumes it
            run.count("errors")
            log.error("cleanup: launch of a queued job failed", error=retry.describe(exc))
            return
        finally:
            run.changed(int(job["id"]))
    if result.get("result") == "launched":
        run.count("queued_jobs_launched")
    elif result.get("result") == "rejected":
        run.count("queued_jobs_rejected")


def delete_stale_registrations(run: CleanupRun) -> None:
    """Deletes this fleet's offline runner registrations that no task will ever use."""
    registrations = run.fleet_runners
    if registrations is None:
        return
    live_names = {
        task.get("startedBy") for arn, task in live_tasks(run).items() if arn not in run.stopped
    }
    prefix = run.svc.settings.name_prefix
    for name, runner in registrations.items():
        if runner.get("busy") or runner.get("status") == "online" or name in live_names:
            continue
        job_id = job_id_of_runner(prefix, name)
        if job_id is None:
            continue
        why = policy.stale_registration(runner, run.record(job_id), live_names)
        if why is not None:  # confirmed on the record as it is now
            record = run.record(job_id, fresh=True)
            why = policy.stale_registration(runner, record, live_names)
        if why is None:
            continue
        if not run.take("registration_deletes"):
            return
        with log.bound(runner_name=name, runner_id=runner.get("id"), job_id=job_id):
            try:
                deleted = run.svc.github.delete_runner(int(runner["id"]))
            except GitHubError as exc:
                if exc.status != 422:  # 422: it took a job since the listing
                    raise
                log.info("cleanup: registration kept, it is running a job now")
                continue
            if deleted:
                run.count("registrations_deleted")
                log.info("cleanup: runner registration deleted", reason=why)
