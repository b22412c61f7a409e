"""GitHub webhook events: decode, verify the signature first, then route.

Nothing is parsed, stored or called before the signature has been checked against the
webhook secret. Every refusal is one log line with its reason (never the body or a secret).

A signature may match the current secret or, during a rotation's grace period, the previous
one. One that matches neither makes the secrets be read again before the delivery is refused
(a rotation this environment has not seen yet), at most once per REFRESH_INTERVAL
(parameters.py): GitHub does not redeliver what is refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

from control_plane import jobs, lifecycle, log, signature
from control_plane.parameters import WebhookSecrets
from control_plane.services import Services
from control_plane.webhook_event import WebhookEventError, WebhookRequest, from_detail
from control_plane.workflow_job import PayloadError, WorkflowJob


def _refused(reason: str) -> dict[str, Any]:
    log.warning("refused: " + reason)
    return {"result": "refused", "reason": reason}


def _problem(secrets: WebhookSecrets, request: WebhookRequest) -> str | None:
    problem = signature.problem(secrets.current, request.body, request.signature)
    previous = secrets.previous_accepted(time.time())
    if problem != signature.MISMATCH or not previous:
        return problem
    if signature.problem(previous, request.body, request.signature) is not None:
        return problem
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secrets.previous_until))
    log.info("signed with the previous webhook secret", accepted_until=until)
    return None


def verify(request: WebhookRequest, svc: Services) -> str | None:
    """Why the request's signature is refused, or None when it matches an accepted secret."""
    problem = _problem(svc.webhook_secrets(), request)
    if problem != signature.MISMATCH:
        return problem
    fresh = svc.refreshed_webhook_secrets()
    if fresh is None:  # read again a moment ago
        return problem
    log.info("webhook secrets read again after a signature mismatch")
    return _problem(fresh, request)


def handle_webhook(event: dict[str, Any], svc: Services) -> dict[str, Any]:
    try:
        request = from_detail(event.get("detail"))
    except WebhookEventError as exc:
        return _refused(str(exc))
    github_event = request.event or str(event.get("detail-type") or "")
    log.bind(delivery_id=request.delivery or None, github_event=github_event)

    problem = verify(request, svc)
    if problem:
        return _refused(problem)

    if github_event == "ping":
        log.info("ping acknowledged")
        return {"result": "pong"}
    if github_event != "workflow_job":
        log.info("ignored: not a workflow_job event")
        return {"result": "ignored", "reason": f"event {github_event!r}"}
    try:
        job = WorkflowJob.from_payload(json.loads(request.body))
    except (ValueError, RecursionError) as exc:  # JSON (nested too deep too), PayloadError
        return _refused(str(exc) if isinstance(exc, PayloadError) else "body is not JSON")
    log.bind(job_id=job.job_id, action=job.action, repository=job.repository)

    if job.action == "queued":
        return jobs.handle_queued(job, svc, request.delivery)
    if job.action in ("in_progress", "completed"):
        return lifecycle.on_workflow_job(job, svc)
    log.info("ignored: action needs nothing from the fleet")
    return {"result": "ignored", "reason": f"action {job.action!r}"}
