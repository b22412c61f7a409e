"""The scheduled cleanup (a later issue): stale runners, leftover JIT parameters, DLQ replay."""

from __future__ import annotations

from typing import Any

from control_plane import log


def run_scheduled_cleanup(event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge "Scheduled Event": logged, nothing else yet."""
    log.info("scheduled cleanup is not implemented yet", rule=(event.get("resources") or [""])[0])
    return {"result": "ignored", "reason": "cleanup is not implemented yet"}
