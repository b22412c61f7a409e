"""GitHub webhook request ⇄ EventBridge event, as the module's API Gateway mapping template does it.

API Gateway puts one entry on the fleet's bus per webhook request (docs/CONTRACTS.md):
`Source = "aws-runner-fleet.github"`, `DetailType = <X-GitHub-Event>`, `Detail` = a JSON
object with the raw body in base64 (the HMAC is computed over the exact bytes GitHub sent,
and EventBridge would re-serialise a JSON body) and the three headers the Lambda needs.

The template (modules/control-plane/templates/webhook-request.vtl) passes a header on only
when it has GitHub's format (else an empty string), so no client can break the JSON of the
detail; local mode and the tests render it with a Velocity engine (local_mode/vtl.py).
`from_detail` is what the Lambda does with the `detail` it receives.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

SOURCE = "aws-runner-fleet.github"


class WebhookEventError(ValueError):
    """The event's detail is not what the mapping template produces (the reason is loggable)."""


@dataclass(frozen=True)
class WebhookRequest:
    """What GitHub sent: the exact body bytes and the headers the control plane needs."""

    body: bytes
    signature: str
    event: str
    delivery: str


def from_detail(detail: Any) -> WebhookRequest:
    """Decodes the `detail` of a webhook event; raises WebhookEventError when it is malformed."""
    if isinstance(detail, str):  # a PutEvents entry's Detail, as a string
        try:
            detail = json.loads(detail)
        except ValueError as exc:
            raise WebhookEventError("detail is not JSON") from exc
    if not isinstance(detail, dict):
        raise WebhookEventError("detail is not an object")
    for key in ("body", "signature", "event", "delivery"):
        if not isinstance(detail.get(key, ""), str):
            raise WebhookEventError(f"detail.{key} is not a string")
    try:
        body = base64.b64decode(detail.get("body", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookEventError("detail.body is not base64") from exc
    return WebhookRequest(
        body=body,
        signature=detail.get("signature", "").strip(),
        event=detail.get("event", "").strip(),
        delivery=detail.get("delivery", "").strip(),
    )
