"""`image:<ref>` labels: where on-demand runner image builds plug in (issue 4).

Today a job with an `image:` label is served (it is ours) but rejected with a reason: the
build path is not there yet. `decide_image` is the single hook point for it; CodeBuild's
Build State Change events arrive at `on_build_state_change`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control_plane import log
from control_plane.settings import Settings

BUILDS_DISABLED = (
    "image builds are not enabled (IMAGE_BUILD_PROJECT is empty): remove the image: label "
    "or enable image builds in the module"
)
BUILDS_NOT_IMPLEMENTED = "image builds are not available in this control plane version yet"


@dataclass(frozen=True)
class ImageDecision:
    """How to run a job's image: the class's own task definition, or a rejection."""

    rejection: str | None = None


def decide_image(image_ref: str | None, settings: Settings) -> ImageDecision:
    """The hook point for `image:<ref>`: None → the class's default runner image."""
    if image_ref is None:
        return ImageDecision()
    if not settings.image_build_project:
        return ImageDecision(rejection=BUILDS_DISABLED)
    return ImageDecision(rejection=BUILDS_NOT_IMPLEMENTED)


def on_build_state_change(event: dict[str, Any]) -> dict[str, Any]:
    """CodeBuild Build State Change for the image project (issue 4): logged, nothing else."""
    detail = event.get("detail") or {}
    log.info(
        "CodeBuild event ignored: image builds are not handled yet",
        build_id=detail.get("build-id"),
        build_status=detail.get("build-status"),
    )
    return {"result": "ignored", "reason": "image builds are not handled yet"}
