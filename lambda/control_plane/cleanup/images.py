"""The cleanup's work on runner images: the `${name_prefix}-<class>-img` task definition
revisions the control plane registers at run time (builds.task_definition; Terraform
does not know them) are deregistered once their image has gone from ECR (the repository's
lifecycle policy expired it, or someone deleted it). Nothing can run them any more, and
without this they would pile up, one per class and image, for good.

A revision is this fleet's when its family is `${name_prefix}-...-img` and its runner container
runs an image of the fleet's repository (`<ECR_REPOSITORY_URL>:<tag>`): a fleet whose prefix
merely starts with ours has a repository of its own. The revisions are listed before ECR's
images, and a revision is only registered once its image is in ECR, so an image missing from
the second listing has gone, not yet to come. A tag built again later gets new revisions
(images/records.BuildStore.replace forgets the old ones).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from control_plane import launcher, log, retry
from control_plane.cleanup.context import CleanupRun
from control_plane.cleanup.tasks import ecs_call
from control_plane.images.builds import IMG_SUFFIX, ImageBuilds

ECS_PAGE = 100  # ListTaskDefinitionFamilies and ListTaskDefinitions return at most 100
ECR_PAGE = 1000  # DescribeImages returns at most 1000
# Revision ARN → the image tag it runs (None: not an image of ours). A revision never changes,
# so a warm Lambda describes each one once.
_image_tags: dict[str, str | None] = {}


def deregister_orphaned_definitions(run: CleanupRun) -> None:
    settings = run.svc.settings
    if not settings.ecr_repository_url:
        return
    revisions = _revisions(run)
    tags: dict[str, str] = {}
    for arn in revisions:
        if not run.has_time():
            return
        tag = _image_tag(run, arn)
        if tag is not None:
            tags[arn] = tag
    if not tags or not run.has_time():
        return
    present = _tags_in_ecr(ImageBuilds.of(run.svc))
    for arn, tag in tags.items():
        if tag in present:
            continue
        if not run.take("task_definition_deregisters"):
            break
        try:
            ecs_call(run, run.svc.ecs.deregister_task_definition, taskDefinition=arn)
        except ClientError as exc:
            run.count("errors")
            log.warning(
                "cleanup: task definition not deregistered",
                task_definition=arn,
                error=retry.describe(exc),
            )
            continue
        _image_tags.pop(arn, None)
        run.count("task_definitions_deregistered")
        log.info("cleanup: task definition of a deleted image deregistered", task_definition=arn)


def _revisions(run: CleanupRun) -> list[str]:
    """The ACTIVE revisions of this fleet's `-img` families, oldest first, up to the limit."""
    ecs, limit = run.svc.ecs, run.limits.listed_task_definitions
    request: dict[str, Any] = {
        "familyPrefix": f"{run.svc.settings.name_prefix}-",
        "status": "ACTIVE",
        "maxResults": ECS_PAGE,
    }
    families = _pages(run, ecs.list_task_definition_families, request, "families")
    arns: list[str] = []
    for family in (f for f in families if f.endswith(IMG_SUFFIX)):
        request = {
            "familyPrefix": family,
            "status": "ACTIVE",
            "sort": "ASC",
            "maxResults": ECS_PAGE,
        }
        arns += _pages(run, ecs.list_task_definitions, request, "taskDefinitionArns")
        if len(arns) >= limit:
            run.deferred.add("listed_task_definitions")
            return arns[:limit]
    return arns


def _pages(run: CleanupRun, operation: Any, request: dict[str, Any], key: str) -> list[str]:
    found: list[str] = []
    while run.has_time():
        response = ecs_call(run, operation, **request)
        found += response.get(key, [])
        if not response.get("nextToken"):
            break
        request = {**request, "nextToken": response["nextToken"]}
    return found


def _image_tag(run: CleanupRun, arn: str) -> str | None:
    """The tag of the fleet's image the revision's runner container runs, or None."""
    if arn not in _image_tags:
        definition = ecs_call(run, run.svc.ecs.describe_task_definition, taskDefinition=arn)
        containers = definition["taskDefinition"].get("containerDefinitions", [])
        image = next(
            (c.get("image", "") for c in containers if c["name"] == launcher.CONTAINER), ""
        )
        repository = f"{run.svc.settings.ecr_repository_url}:"
        tag = image.removeprefix(repository)
        _image_tags[arn] = tag if image.startswith(repository) and tag else None
    return _image_tags[arn]


def _tags_in_ecr(builds: ImageBuilds) -> set[str]:
    """Every tag in the fleet's repository (listed after the revisions: see the docstring)."""
    pages = builds.ecr.get_paginator("describe_images").paginate(
        repositoryName=builds.repository_name,
        filter={"tagStatus": "TAGGED"},
        PaginationConfig={"PageSize": ECR_PAGE},
    )
    return {
        tag
        for page in pages
        for image in page["imageDetails"]
        for tag in image.get("imageTags", [])
    }
