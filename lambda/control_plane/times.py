"""Times as the control plane reads them: boto3 datetimes, ISO 8601 strings (records, ECS
events, GitHub payloads) and numbers, all as seconds since the epoch (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of a datetime (boto3), an ISO 8601 string (records) or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def seconds_between(start: Any, end: Any) -> float | None:
    """`end - start` in seconds, None unless both are readable and in order."""
    begun, ended = epoch(start), epoch(end)
    if begun is None or ended is None or ended < begun:
        return None
    return round(ended - begun, 3)


def iso(epoch: float) -> str:
    """ISO 8601 UTC to the millisecond, as records and log lines hold times."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
