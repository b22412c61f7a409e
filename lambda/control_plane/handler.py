"""Lambda entry point: routes each EventBridge event to the function that handles it.

| source                    | detail-type                  | handled by                           |
|---------------------------|------------------------------|--------------------------------------|
| aws-runner-fleet.github   | (the X-GitHub-Event header)  | webhooks.handle_webhook              |
| aws.ecs                   | ECS Task State Change        | lifecycle.on_task_state_change       |
| aws.codebuild             | CodeBuild Build State Change | events.on_build_state_change   |
| aws.events                | Scheduled Event              | cleanup.run.run_scheduled_cleanup    |

An exception propagates on purpose (the event is delivered again); anything else the event
needs is decided and logged by the functions above.
"""

from __future__ import annotations

from typing import Any

from control_plane import lifecycle, log, webhook_event, webhooks
from control_plane.cleanup.run import run_scheduled_cleanup
from control_plane.images import events
from control_plane.retry import Deadline
from control_plane.services import Services
from control_plane.settings import Settings


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    log.set_level(settings.log_level)
    return route(event, Services(settings, Deadline.from_context(context)))


def route(event: dict[str, Any], svc: Services) -> dict[str, Any]:
    """Hands the event to its function (the cleanup also replays dead-lettered events here)."""
    if not isinstance(event, dict):
        log.warning("ignored: the event is not a JSON object")
        return {"result": "ignored", "reason": "event is not an object"}
    source = event.get("source")
    detail_type = event.get("detail-type")
    with log.bound(event_id=event.get("id"), source=source, detail_type=detail_type):
        if source == webhook_event.SOURCE:
            return webhooks.handle_webhook(event, svc)
        if (source, detail_type) == ("aws.ecs", "ECS Task State Change"):
            return lifecycle.on_task_state_change(event, svc)
        if (source, detail_type) == ("aws.codebuild", "CodeBuild Build State Change"):
            return events.on_build_state_change(event, svc)
        if (source, detail_type) == ("aws.events", "Scheduled Event"):
            return run_scheduled_cleanup(event, svc, replay=route)
        log.warning("ignored: event this function does not handle")
        return {"result": "ignored", "reason": "unknown event"}
