"""The scheduled cleanup: nothing left running, leaked or lost (docs/reliability-cleanup.md).

One run, in this order (each step bounded, see cleanup/context.Limits; a step that fails is
logged and counted, and the next steps still run):

1. stop tasks past the runner timeout, idle runners, orphans, tasks outliving their record;
   report tasks waiting for EC2 capacity past the limit;
2. reconcile in-flight records whose task is gone;
3. relaunch jobs whose task stopped before it ran them (or close them as failed);
4. resume launches that every delivery of their event failed (or close them as failed);
5. replay dead-lettered events through the handler's routing;
6. launch queued jobs GitHub shows that have no record;
7. delete offline runner registrations no task will use;
8. delete JIT config parameters no runner will read;
9. image builds stuck past their timeout;
10. deregister `-img` task definitions whose image has gone from ECR.

Every action is idempotent: a second run finds nothing more to do. What a run had no time or
budget for is found again by the next one. One summary line is logged per run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from control_plane import log, retry
from control_plane.cleanup import dlq, github, images, jit, relaunch, tasks
from control_plane.cleanup.context import COUNTS, CleanupRun, Limits
from control_plane.images import events
from control_plane.services import Services


def reconcile_stuck_builds(run: CleanupRun) -> None:
    """Image builds stuck past their timeout (images/events.py settles them and their jobs)."""
    result = events.fail_stuck_builds(run.svc, run.now)
    run.count("builds_reconciled", len(result.get("settled") or []))


def run_scheduled_cleanup(
    event: dict[str, Any], svc: Services, replay: dlq.Route | None = None
) -> dict[str, Any]:
    """EventBridge "Scheduled Event" → one cleanup run; `replay` is the handler's routing."""
    log.bind(rule=(event.get("resources") or [None])[0])
    return run_cleanup(svc, replay=replay)


def run_cleanup(
    svc: Services,
    *,
    replay: dlq.Route | None = None,
    limits: Limits | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    run = CleanupRun(svc, limits or Limits(), time.time() if now is None else now)
    steps: list[tuple[str, Callable[[CleanupRun], None]]] = [
        ("stop_tasks", tasks.stop_tasks),
        ("report_capacity_waits", tasks.report_capacity_waits),
        ("reconcile_records", tasks.reconcile_records),
        ("relaunch_interrupted", relaunch.relaunch_interrupted),
        ("resume_stalled_launches", relaunch.resume_stalled_launches),
        ("replay_dead_letters", lambda r: dlq.replay_dead_letters(r, replay)),
        ("launch_lost_jobs", github.launch_lost_jobs),
        ("delete_stale_registrations", github.delete_stale_registrations),
        ("delete_leftover_configs", jit.delete_leftover_configs),
        ("reconcile_stuck_builds", reconcile_stuck_builds),
        ("deregister_orphaned_definitions", images.deregister_orphaned_definitions),
    ]
    for name, step in steps:
        if not run.has_time():
            break
        try:
            step(run)
        except Exception as exc:  # one failing step (an outage) must not stop the others
            run.count("errors")
            log.error("cleanup step failed", step=name, error=retry.describe(exc))
    counts = {name: run.counts[name] for name in COUNTS}
    summary = {
        "result": "cleaned",
        "complete": not run.deferred,
        "deferred": sorted(run.deferred),
        "counts": counts,
    }
    log.info(
        "cleanup finished",
        complete=summary["complete"],
        deferred=summary["deferred"],
        duration_s=round(time.monotonic() - started, 2),
        **counts,
    )
    return summary
