"""`ecsrunner images ...`: the runner images in ECR with their builds, and pre-building one.

A runner image is runner/Dockerfile built on a base image by the fleet's CodeBuild project,
tagged by a digest of the base and the runner files (docs/image-builds.md). `list` joins ECR's
images with the build records of the state table (`build#<tag>`); `build` goes through the
control plane's own code (control_plane/images/builds.py), with the settings the control-plane
Lambda runs with, so the tag it builds is the one jobs will ask for.
"""

from __future__ import annotations

from typing import Any

import click
from control_plane.images.builds import ImageBuilds, resolve
from control_plane.images.records import BUILDING, SUCCEEDED, BuildStore

from ecsrunner.config import AWS, FUNCTION, OUTPUT, TABLE, CliError, Config, ConfigError, uses
from ecsrunner.github_access import Unavailable, fleet_settings, quiet_logs
from ecsrunner.output import age, emit, fields, jsonable, table

HOW_TO_ENABLE = (
    "set the module input image_build_project (the name of the CodeBuild project the module "
    "creates) and apply"
)


@click.group()
def images() -> None:
    """Runner images: runner/Dockerfile built on a base image, one per base and runner version.

    Jobs ask for one with an image:<base> label; the first job builds it (a few minutes),
    later ones reuse it. `images build` builds one ahead of the first job.
    """


@images.command("list")
@click.option(
    "--repository",
    metavar="NAME",
    help="The fleet's ECR repository of runner images [default: <name_prefix>-runner].",
)
@uses(TABLE, AWS, OUTPUT)
def list_images(repository: str | None) -> None:
    """Images in ECR and builds, newest first: tag, base image, build status, digest.

    A build still running (or failed) shows without a digest; an image pushed by hand
    shows without a base.

    \b
    Examples:
      ecsrunner images list
      ecsrunner images list --output json
    """
    cfg = Config.current()
    repository = repository or f"{cfg.name_prefix}-runner"
    builds = {
        b["image_tag"]: b for b in BuildStore(cfg.require_table(), cfg.client("dynamodb")).newest()
    }
    found = _images(cfg, repository, builds)

    def render() -> str:
        if not found:
            return f"no runner images in {repository} and no builds"
        rows = [
            [
                i["tag"],
                i["base_image"],
                i["build_status"],
                (i["digest"] or "")[7:19],
                age(i["pushed_at"]) if i["pushed_at"] else None,
                f"{i['size_bytes'] / 2**20:.0f} MiB" if i["size_bytes"] else None,
            ]
            for i in found
        ]
        return table(rows, ["TAG", "BASE", "BUILD", "DIGEST", "PUSHED", "SIZE"])

    emit({"repository": repository, "images": found}, render)


def _images(cfg: Config, repository: str, builds: dict[str, dict[str, Any]]) -> list[dict]:
    """ECR's images joined with the build records (and builds that pushed nothing yet)."""
    shown: list[dict[str, Any]] = []
    pages = cfg.client("ecr").get_paginator("describe_images").paginate(repositoryName=repository)
    for page in pages:
        for image in page["imageDetails"]:
            for tag in image.get("imageTags") or [None]:
                shown.append(_row(tag, image, builds.pop(tag, None) if tag else None))
    shown += [_row(tag, None, build) for tag, build in builds.items()]
    shown.sort(key=lambda i: i["pushed_at"] or i["created_at"] or "", reverse=True)
    return shown


def _row(tag: str | None, image: dict | None, build: dict | None) -> dict[str, Any]:
    image, build = image or {}, build or {}
    return jsonable(
        {
            "tag": tag,
            "base_image": build.get("base_image"),
            "digest": image.get("imageDigest"),
            "pushed_at": image.get("imagePushedAt"),
            "size_bytes": image.get("imageSizeInBytes"),
            "build_status": build.get("status"),
            "build_id": build.get("build_id"),
            "log_link": build.get("log_link"),
            "created_at": build.get("created_at"),
        }
    )


@images.command("build")
@click.argument("base")
@uses(TABLE, FUNCTION, AWS, OUTPUT)
def build_image(base: str) -> None:
    """Build the runner image for base image BASE now, before a job needs it.

    BASE is what a job's image: label names (ubuntu:24.04, ghcr.io/org/img:tag, ...); a base
    the fleet's allowed_base_images does not match is refused, as jobs asking for it are.
    Starts the fleet's CodeBuild build for it, unless the image exists or is being built; the
    jobs that ask for it meanwhile wait for this build. Exits at once: follow the build with
    `ecsrunner images list`.

    \b
    Examples:
      ecsrunner images build ubuntu:24.04
      ecsrunner images build public.ecr.aws/docker/library/node:20 --output json
    """
    cfg = Config.current()
    try:
        settings = fleet_settings(cfg)
    except Unavailable as exc:
        raise CliError(str(exc)) from exc
    if not settings.image_build_project:
        raise CliError(f"image builds are not enabled for this fleet: {HOW_TO_ENABLE}")
    decision = resolve(base, settings)
    if decision.rejection or not decision.image_tag or not decision.base_image:
        raise ConfigError(decision.rejection or f"no image to build for {base!r}")
    builder = ImageBuilds(
        settings,
        BuildStore(settings.state_table, cfg.client("dynamodb")),
        cfg.client("ecr"),
        cfg.client("codebuild"),
    )
    tag = decision.image_tag
    with quiet_logs():
        if builder.find_image(tag):
            build = builder.builds.get(tag) or {}
            status = "exists"
        else:
            before = builder.builds.get(tag) or {}
            build = builder.request(decision.base_image, tag)
            running_before = before.get("status") == BUILDING
            same = before.get("request_id") == build.get("request_id")
            if build["status"] == SUCCEEDED:
                status = "exists"
            else:
                status = "building" if running_before and same else "started"
    result = {
        "base_image": decision.base_image,
        "image_tag": tag,
        "image_uri": builder.image_uri(tag),
        "status": status,
        "build_id": build.get("build_id"),
        "log_link": build.get("log_link"),
        "project": settings.image_build_project,
    }
    messages = {
        "exists": "the image exists: jobs asking for this base start at once",
        "started": "build started: jobs asking for this base wait for it",
        "building": "already being built: jobs asking for this base wait for it",
    }

    def render() -> str:
        pairs = [(k, result[k]) for k in ("image_uri", "base_image", "build_id", "log_link")]
        return f"{messages[status]}\n{fields(pairs)}"

    emit(result, render)
