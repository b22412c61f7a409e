"""Static checks of the HCL: formatting, `terraform validate` of every module, checkov."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform.tfharness import REPO_ROOT, run_terraform

MODULE_DIRS = [
    ".",
    "modules/ecs-fleet",
    "modules/control-plane",
    "modules/image-build",
    "examples/default",
    "examples/default/vpc",
    "examples/image-builds",
    "examples/github-app",
    "examples/docker-builds",
]
# What checkov scans: the module and its examples (not the test and local-mode harnesses).
CHECKOV_SKIP_PATHS = ["tests", "local_mode", ".venv", ".build", ".local", ".git"]


def hcl_files() -> list[Path]:
    found = []
    for directory in MODULE_DIRS:
        found += sorted((REPO_ROOT / directory).glob("*.tf"))
    return found


def test_terraform_fmt_is_clean() -> None:
    result = run_terraform(["fmt", "-check", "-recursive", "-diff"], REPO_ROOT, check=False)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


@pytest.mark.parametrize("module_dir", MODULE_DIRS)
def test_terraform_validate(module_dir: str, tmp_path: Path) -> None:
    directory = REPO_ROOT / module_dir
    run_terraform(["init", "-backend=false"], directory, data_dir=tmp_path)
    result = run_terraform(["validate", "-json"], directory, data_dir=tmp_path, check=False)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


def test_every_module_has_its_files_and_documents_each_input_and_output() -> None:
    for directory in [".", "modules/ecs-fleet", "modules/control-plane", "modules/image-build"]:
        path = REPO_ROOT / directory
        for name in ["main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"]:
            assert (path / name).is_file(), f"{directory}/{name} is missing"
        readme = (path / "README.md").read_text()
        variables = re.findall(r'^variable "([^"]+)"', (path / "variables.tf").read_text(), re.M)
        outputs = re.findall(r'^output "([^"]+)"', (path / "outputs.tf").read_text(), re.M)
        for name in variables + outputs:
            assert f"`{name}`" in readme, f"{directory}/README.md does not document {name}"


def test_every_variable_and_output_has_a_description_and_every_variable_a_type() -> None:
    for path in hcl_files():
        text = path.read_text()
        for kind, name, body in re.findall(
            r'^(variable|output) "([^"]+)" \{\n(.*?)^\}', text, re.M | re.S
        ):
            assert re.search(r"^  description\s*=", body, re.M), f"{path}: {kind} {name}"
            if kind == "variable":
                assert re.search(r"^  type\s*=", body, re.M), f"{path}: variable {name}"


def test_secrets_are_sensitive_variables() -> None:
    for path in [REPO_ROOT / "variables.tf", REPO_ROOT / "modules/control-plane/variables.tf"]:
        text = path.read_text()
        for name in [
            "github_pat",
            "github_app_private_key",
            "webhook_secret",
            "webhook_secret_previous",
        ]:
            body = re.search(rf'^variable "{name}" \{{\n(.*?)^\}}', text, re.M | re.S)
            assert body and re.search(r"sensitive\s*=\s*true", body.group(1)), f"{path}: {name}"


def test_only_the_aws_provider_is_required() -> None:
    for path in REPO_ROOT.glob("**/versions.tf"):
        # Not the test harnesses, nor what local mode and terraform write under the tree.
        if {".terraform", "tests", ".local", ".build", ".venv"} & set(path.parts):
            continue
        text = path.read_text()
        providers = re.findall(r"source\s*=\s*\"([^\"]+)\"", text)
        assert providers == ["hashicorp/aws"], f"{path}: {providers}"
        if "local_mode" not in path.parts:
            assert 'required_version = ">= 1.5"' in text, path
            assert 'version = ">= 5.100, < 7.0"' in text, path


def test_checkov_skips_give_a_reason() -> None:
    skips = []
    for path in hcl_files():
        skips += [(path, line) for line in path.read_text().splitlines() if "checkov:skip" in line]
    assert skips, "expected the documented inline skips"
    for path, line in skips:
        assert re.search(r"checkov:skip=CKV2?_[A-Z]+_\d+: \S.{10,}", line), f"{path}: {line}"


def checkov_command() -> list[str]:
    executable = shutil.which("checkov", path=str(Path(sys.executable).parent)) or shutil.which(
        "checkov"
    )
    if executable is None:
        pytest.fail("checkov is not installed (it is a dev dependency in pyproject.toml)")
    command = [executable, "--directory", str(REPO_ROOT), "--framework", "terraform"]
    for skipped in CHECKOV_SKIP_PATHS:
        command += ["--skip-path", skipped]
    return [*command, "--output", "json", "--quiet", "--compact", "--skip-download"]


def test_checkov_finds_no_failed_check() -> None:
    result = subprocess.run(checkov_command(), capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.stdout.strip(), result.stderr
    reports = json.loads(result.stdout)
    if isinstance(reports, dict):
        reports = [reports]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:"
        f"{check['file_line_range'][0]}) {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert passed > 50, "checkov scanned (almost) nothing"


def test_service_endpoint_hosts_follow_the_partition() -> None:
    """kms:ViaService names the service's endpoint host, which in aws-cn ends in
    amazonaws.com.cn: every host the HCL builds takes the partition's DNS suffix."""
    hosts = []
    for path in hcl_files():
        text = path.read_text()
        assert not re.search(r'"(ssm|s3|kms|sqs|logs)\.\$\{[^}]+\}\.amazonaws\.com', text), path
        hosts += re.findall(r'"(\w+)\.\$\{local\.region\}\.\$\{([^}]+)\}"', text)
    assert sorted(hosts) == [
        ("s3", "data.aws_partition.current.dns_suffix"),
        ("ssm", "data.aws_partition.current.dns_suffix"),
    ]
