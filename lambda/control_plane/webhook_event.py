"""GitHub webhook request ⇄ EventBridge event, as the module's API Gateway mapping template does it.

API Gateway puts one entry on the fleet's bus per webhook request (docs/CONTRACTS.md):
`Source = "aws-runner-fleet.github"`, `DetailType = <X-GitHub-Event>`, `Detail` = a JSON
object with the raw body in base64 (the HMAC is computed over the exact bytes GitHub sent,
and EventBridge would re-serialise a JSON body) and the three headers the Lambda needs.

`to_eventbridge_event` is the Python twin of that template
(modules/control-plane/templates/webhook-request.vtl; local mode and the tests use it): like
the template, it passes a header on only when it has GitHub's format (else an empty string),
so no client can break the JSON of the detail. `from_detail` is what the Lambda does with the
`detail` it receives.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOURCE = "aws-runner-fleet.github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
# the template's checks (VTL String.matches: the whole value must match)
_FORMATS = {
    EVENT_HEADER: re.compile(r"[a-z_]{1,64}"),
    SIGNATURE_HEADER: re.compile(r"sha256=[0-9a-f]{64}"),
    DELIVERY_HEADER: re.compile(r"[0-9A-Za-z-]{1,64}"),
}


class WebhookEventError(ValueError):
    """The event's detail is not what the mapping template produces (the reason is loggable)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value (names compared case-insensitively), or "" unless well-formed."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value if _FORMATS[name].fullmatch(value) else ""
    return ""


def to_eventbridge_event(
    body: bytes, headers: Mapping[str, str], event_bus_name: str | None = None
) -> dict[str, Any]:
    """The PutEvents entry the mapping template builds for one webhook request."""
    event = _header(headers, EVENT_HEADER)
    detail = {
        "body": base64.b64encode(body).decode("ascii"),
        "signature": _header(headers, SIGNATURE_HEADER),
        "event": event,
        "delivery": _header(headers, DELIVERY_HEADER),
    }
    entry: dict[str, Any] = {
        "Source": SOURCE,
        "DetailType": event,
        "Detail": json.dumps(detail, separators=(",", ":")),
    }
    if event_bus_name:
        entry["EventBusName"] = event_bus_name
    return entry


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
