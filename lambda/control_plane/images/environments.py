"""The CodeBuild environments of image builds per architecture (Lambda setting
IMAGE_BUILD_ENVIRONMENTS, the image-build module's output `build_environments`):

    {"arm64": {"type": "ARM_CONTAINER", "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
               "compute_type": "BUILD_GENERAL1_LARGE"}}

A build of an architecture listed here runs with StartBuild's environmentTypeOverride,
imageOverride and computeTypeOverride (an image is built for the machine that builds it); an
architecture not listed builds on the project's own environment, which is x86_64.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from control_plane.classes import ARCHITECTURES

# The environment types that run privileged Docker builds (Lambda compute cannot).
BUILD_TYPES = ("LINUX_CONTAINER", "ARM_CONTAINER")
COMPUTE_TYPE = re.compile(r"BUILD_GENERAL1_[A-Z0-9_]+")
FIELDS = ("type", "image", "compute_type")
PROJECT_ARCHITECTURE = "x86_64"  # what the project's own environment builds


class BuildEnvironmentsError(ValueError):
    """IMAGE_BUILD_ENVIRONMENTS is not valid (the message says what to fix)."""


@dataclass(frozen=True)
class BuildEnvironment:
    type: str
    image: str
    compute_type: str

    def overrides(self) -> dict[str, str]:
        """StartBuild's arguments that run the build on this environment."""
        return {
            "environmentTypeOverride": self.type,
            "imageOverride": self.image,
            "computeTypeOverride": self.compute_type,
        }


def _environment(architecture: str, value: Any) -> BuildEnvironment:
    what = f"IMAGE_BUILD_ENVIRONMENTS[{architecture!r}]"
    if not isinstance(value, dict) or set(value) != set(FIELDS):
        raise BuildEnvironmentsError(f"{what} must be an object with exactly {', '.join(FIELDS)}")
    if not all(isinstance(value[name], str) and value[name].strip() for name in FIELDS):
        raise BuildEnvironmentsError(f"{what}: {', '.join(FIELDS)} must be non-empty strings")
    if value["type"] not in BUILD_TYPES:
        raise BuildEnvironmentsError(f"{what}.type must be one of {', '.join(BUILD_TYPES)}")
    if not COMPUTE_TYPE.fullmatch(value["compute_type"]):
        raise BuildEnvironmentsError(f"{what}.compute_type must be a BUILD_GENERAL1_* type")
    return BuildEnvironment(value["type"], value["image"], value["compute_type"])


def parse(text: str) -> dict[str, BuildEnvironment]:
    """The environments of IMAGE_BUILD_ENVIRONMENTS (a JSON object keyed by architecture)."""
    try:
        document = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise BuildEnvironmentsError(f"IMAGE_BUILD_ENVIRONMENTS is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BuildEnvironmentsError("IMAGE_BUILD_ENVIRONMENTS must be a JSON object")
    unknown = sorted(set(document) - set(ARCHITECTURES))
    if unknown:
        raise BuildEnvironmentsError(
            f"IMAGE_BUILD_ENVIRONMENTS: unknown architecture(s) {', '.join(unknown)} "
            f"(known: {', '.join(ARCHITECTURES)})"
        )
    return {arch: _environment(arch, value) for arch, value in document.items()}
