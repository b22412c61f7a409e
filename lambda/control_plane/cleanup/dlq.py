"""The cleanup's replay of dead-lettered events (DLQ_URL).

EventBridge puts an event it could not deliver (retries exhausted) into the queue, and so
does Lambda for a failed asynchronous invocation; in both cases the message body is the
event itself. Each one is handed to the handler's routing again: on success (whatever the
outcome: launched, duplicate, refused) the message is deleted; on failure it stays, invisible
for the rest of this run, and is tried again by a later run. A Scheduled Event is dropped
(every run does the whole cleanup anyway); a body that is not an event stays, and is logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from control_plane import aws, log, metrics, retry
from control_plane.cleanup.context import CleanupRun
from control_plane.services import Services

Route = Callable[[dict[str, Any], Services], dict[str, Any]]
SQS_BATCH = 10
MAX_VISIBILITY_SECONDS = 43200  # SQS maximum (12 h)


def replay_dead_letters(run: CleanupRun, route: Route | None) -> None:
    url = run.svc.settings.dlq_url
    if not url or route is None:
        return
    sqs = aws.client("sqs")
    while run.has_time():
        left = run.limits.dlq_messages - run.used["dlq_messages"]
        if left <= 0:
            run.deferred.add("dlq_messages")
            return
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(SQS_BATCH, left),
            WaitTimeSeconds=0,
            # a message that fails stays out of sight until this run is over
            VisibilityTimeout=min(MAX_VISIBILITY_SECONDS, int(run.svc.deadline.remaining()) + 60),
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        for message in messages:
            if not run.take("dlq_messages"):
                return  # out of time: the rest is received again by a later run
            outcome = _replay(message, route, run.svc)
            run.count(f"dlq_{outcome}")
            if outcome != "left":
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _replay(message: dict[str, Any], route: Route, svc: Services) -> str:
    """replayed | dropped | left."""
    receives = (message.get("Attributes") or {}).get("ApproximateReceiveCount")
    with log.bound(dlq_message_id=message.get("MessageId"), receive_count=receives):
        try:
            event = json.loads(message.get("Body") or "")
        except ValueError:
            event = None
        if not isinstance(event, dict) or not event.get("source"):
            log.error("cleanup: dead letter is not an EventBridge event: left in the queue")
            return "left"
        if (event.get("source"), event.get("detail-type")) == ("aws.events", "Scheduled Event"):
            log.info("cleanup: dead-lettered scheduled event dropped (this run is the cleanup)")
            return "dropped"
        try:
            result = route(event, svc)
        except Exception as exc:
            log.error("cleanup: replay failed, the dead letter stays", error=retry.describe(exc))
            return "left"
        log.info("cleanup: dead letter replayed", outcome=result.get("result"))
        metrics.emit(svc.settings, "DeadLettersReplayed", 1)
        return "replayed"
