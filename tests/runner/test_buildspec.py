"""runner/buildspec.yml as the control plane starts it (issue 4): the variables StartBuild
overrides are the buildspec's own, every tag and normalised base the control plane produces
passes the buildspec's checks, and a build context that is not the one the tag was derived
from is refused before anything is built. (Rendering, shellcheck and the login/build/push
sequence: test_runner_buildspec.py, whose renderer and stub runner this file reuses.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from control_plane.images.builds import build_environment
from control_plane.images.refs import FINGERPRINT_FILES, image_tag, normalise, runner_fingerprint
from control_plane.settings import Settings

from tests.runner.runner_harness import BUILDSPEC
from tests.runner.test_runner_buildspec import REPO_URL, load, run_buildspec

RUNNER_DIR = BUILDSPEC.parent
FINGERPRINT = runner_fingerprint(
    {name: (RUNNER_DIR / name).read_bytes() for name in FINGERPRINT_FILES}
)
SETTINGS = Settings.from_env(
    {
        "NAME_PREFIX": "runner-fleet",
        "JIT_BUCKET": "runner-fleet-jit",
        "GITHUB_OWNER": "octo",
        "GITHUB_REPO": "app",
        "SUBNET_IDS": "subnet-1",
        "SECURITY_GROUP_IDS": "sg-1",
        "IMAGE_BUILD_PROJECT": "runner-fleet-images",
        "ECR_REPOSITORY_URL": REPO_URL,
        "RUNNER_IMAGE_FINGERPRINT": FINGERPRINT,
        "DEFAULT_BASE_IMAGE": "public.ecr.aws/docker/library/ubuntu:22.04",
    }
)
BASES = [
    "ubuntu",
    "ubuntu:24.04",
    "public.ecr.aws/docker/library/node:20-bookworm",
    "ghcr.io/octo-org/ci/base_image:v1.2.3",
    "localhost:5000/team/base",
    "debian@sha256:" + "0123456789abcdef" * 4,
    "python:3.12-slim@sha256:" + "f" * 64,
]


def overrides(base: str) -> dict[str, str]:
    normalised = str(normalise(base))
    variables = build_environment(SETTINGS, normalised, image_tag(normalised, FINGERPRINT))
    assert {v["type"] for v in variables} == {"PLAINTEXT"}
    return {v["name"]: v["value"] for v in variables}


def pre_build_check(pattern_of: str) -> re.Pattern[str]:
    """The regular expression the buildspec tests a variable against (bash =~, ERE)."""
    commands = "\n".join(load()["phases"]["pre_build"]["commands"])
    match = re.search(rf'\[\[ ! "\${pattern_of}" =~ (\S+) \]\]', commands)
    assert match, f"the buildspec does not check {pattern_of}"
    return re.compile(match.group(1))


def test_the_control_plane_overrides_exactly_the_buildspec_variables() -> None:
    declared = set(load()["env"]["variables"])
    assert set(overrides("ubuntu")) == declared
    assert declared == {
        "BASE_IMAGE",
        "IMAGE_TAG",
        "ECR_REPOSITORY_URL",
        "RUNNER_IMAGE_FINGERPRINT",
        "RUNNER_VARIANT",
    }


@pytest.mark.parametrize("base", BASES)
def test_what_the_control_plane_sends_passes_the_buildspec_checks(base: str) -> None:
    sent = overrides(base)
    for name in ("BASE_IMAGE", "IMAGE_TAG", "ECR_REPOSITORY_URL"):
        assert pre_build_check(name).fullmatch(sent[name]), (name, sent[name])


def context_with_runner_files(tmp_path: Path) -> None:
    """The build's source folder as CodeBuild downloads it (the runner/ files)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("Dockerfile", "entrypoint.sh", "buildspec.yml", ".dockerignore"):
        shutil.copy(RUNNER_DIR / name, source / name)


def test_the_context_the_tag_was_derived_from_is_built(tmp_path: Path) -> None:
    context_with_runner_files(tmp_path)
    sent = overrides("ubuntu:24.04")

    run = run_buildspec(tmp_path, sent)

    assert run.returncode == 0, run.stderr
    build = run.tool_calls("docker")[1]
    assert build[build.index("--build-arg") + 1] == "BASE_IMAGE=docker.io/library/ubuntu:24.04"
    assert build[build.index("-t") + 1] == f"{REPO_URL}:{sent['IMAGE_TAG']}"


def test_another_context_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    context_with_runner_files(tmp_path)
    dockerfile = tmp_path / "src" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed while the build was queued\n")

    run = run_buildspec(tmp_path, overrides("ubuntu:24.04"))

    assert run.returncode != 0
    assert "PHASE_FAILED pre_build" in run.stderr
    assert f"is not the one IMAGE_TAG was derived from ({FINGERPRINT})" in run.stderr
    assert run.tool_calls("docker") == []


@pytest.mark.parametrize(
    ("docker", "architecture", "machine", "target"),
    [
        (False, "x86_64", "x86_64", "runner"),
        (False, "arm64", "aarch64", "runner"),
        (True, "x86_64", "x86_64", "docker"),
        (True, "arm64", "aarch64", "docker"),
    ],
)
def test_each_class_variant_builds_its_target_under_its_tag(
    tmp_path: Path, docker: bool, architecture: str, machine: str, target: str
) -> None:
    """What the control plane sends for a class's image (its variant and architecture) builds
    that Dockerfile target on the machine of that architecture, and nothing else does."""
    context_with_runner_files(tmp_path)
    base = str(normalise("ubuntu:24.04"))
    tag = image_tag(base, FINGERPRINT, docker=docker, architecture=architecture)
    sent = {v["name"]: v["value"] for v in build_environment(SETTINGS, base, tag)}
    assert sent["RUNNER_VARIANT"] == target

    run = run_buildspec(tmp_path, sent | {"STUB_MACHINE": machine})

    assert run.returncode == 0, run.stderr
    build = run.tool_calls("docker")[1]
    assert build[build.index("--target") + 1] == target
    assert build[build.index("-t") + 1] == f"{REPO_URL}:{tag}"
    other = "x86_64" if machine == "aarch64" else "aarch64"
    (tmp_path / "other").mkdir()
    context_with_runner_files(tmp_path / "other")
    refused = run_buildspec(tmp_path / "other", sent | {"STUB_MACHINE": other})
    assert refused.returncode != 0 and refused.tool_calls("docker") == []
