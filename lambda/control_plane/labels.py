"""Which jobs this fleet serves, from the job's `runs-on` labels.

A job is ours when every one of its labels is served by the fleet: `self-hosted`, the
fleet's extra labels (RUNNER_EXTRA_LABELS), `class:<name>` and `image:<ref>`. GitHub matches
labels case-insensitively, and so does this. A job with any other label (`ubuntu-latest`,
another fleet's label) is not ours: it is ignored. A job that is ours but asks for two
classes or two images cannot be served by any runner: it is rejected with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SELF_HOSTED = "self-hosted"
CLASS_PREFIX = "class:"
IMAGE_PREFIX = "image:"


@dataclass(frozen=True)
class Selection:
    ours: bool
    class_name: str | None = None  # as written in the label; None: the default class
    image: str | None = None
    problem: str | None = None  # ours, but no runner can serve it
    foreign: tuple[str, ...] = ()  # the labels that make a job not ours


def distinct(values: list[str]) -> list[str]:
    """First spelling of each value, compared case-insensitively."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())


def select(labels: Iterable[str], extra_labels: Iterable[str] = ()) -> Selection:
    labels = [label.strip() for label in labels if label and label.strip()]
    if not labels:
        return Selection(ours=False)
    served = {SELF_HOSTED} | {label.lower() for label in extra_labels}
    classes: list[str] = []
    images: list[str] = []
    foreign: list[str] = []
    for label in labels:
        lower = label.lower()
        if lower in served:
            continue
        if lower.startswith(CLASS_PREFIX):
            classes.append(label[len(CLASS_PREFIX) :].strip())
        elif lower.startswith(IMAGE_PREFIX):
            images.append(label[len(IMAGE_PREFIX) :].strip())
        else:
            foreign.append(label)
    if foreign:
        return Selection(ours=False, foreign=tuple(foreign))
    classes, images = distinct(classes), distinct(images)
    problem = None
    if "" in classes or "" in images:
        problem = "a class: or image: label without a value"
    elif len(classes) > 1:
        problem = f"more than one class label ({', '.join(classes)})"
    elif len(images) > 1:
        problem = f"more than one image label ({', '.join(images)})"
    return Selection(
        ours=True,
        class_name=classes[0] if classes else None,
        image=images[0] if images else None,
        problem=problem,
    )
