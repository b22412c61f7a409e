"""Helpers of the Terraform tests: run terraform, talk to the emulator, plan the module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import hcl2

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TERRAFORM = shutil.which("terraform")

# Providers come from the machine's filesystem mirror (scripts/terraformrc.sh); plugins are
# cached across the session's many `terraform init`s.
TERRAFORMRC = REPO_ROOT / ".build" / "terraformrc"
PLUGIN_CACHE = REPO_ROOT / ".build" / "tf-plugin-cache"


def emulator_provider(endpoint: str) -> dict[str, Any]:
    """The AWS provider block (JSON syntax) pointed at the emulator."""
    services = ["apigateway", "autoscaling", "cloudwatch", "codebuild", "dynamodb", "ec2", "ecr"]
    services += ["ecs", "events", "iam", "kms", "lambda", "logs", "s3", "sns", "sqs", "ssm", "sts"]
    return {
        "region": REGION,
        "access_key": "testing",
        "secret_key": "testing",
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        "skip_region_validation": True,
        "s3_use_path_style": True,
        "endpoints": [{service: endpoint for service in services}],
    }


def cli_config_file() -> str:
    """The caller's CLI config when it exists (a machine may name a missing one), else ours."""
    given = os.environ.get("TF_CLI_CONFIG_FILE", "")
    return given if given and Path(given).is_file() else str(TERRAFORMRC)


def terraform_env() -> dict[str, str]:
    """Environment of every terraform command (and of pytest-terraform's, via os.environ)."""
    if not TERRAFORMRC.is_file():
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "terraformrc.sh"), str(TERRAFORMRC)])
    PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
    return {
        "TF_CLI_CONFIG_FILE": cli_config_file(),
        "TF_PLUGIN_CACHE_DIR": str(PLUGIN_CACHE),
        "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def run_terraform(
    args: list[str],
    cwd: Path,
    data_dir: Path | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **terraform_env(), **(env or {})}
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [TERRAFORM, *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"terraform {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Emulator:
    url: str

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's fixed test credential
        )

    def role_credentials(self, role_arn: str) -> dict[str, str]:
        """A session of `role_arn` (STS in the emulator): boto3 Session keyword arguments."""
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="test")[
            "Credentials"
        ]
        return {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }

    def role_client(self, service: str, role_arn: str, region: str = REGION) -> Any:
        """A client acting as `role_arn`: resource policies that name the role apply to it."""
        session = boto3.session.Session(**self.role_credentials(role_arn))
        return session.client(service, endpoint_url=self.url, region_name=region)


@dataclass
class PlanResult:
    returncode: int
    output: str
    plan: dict[str, Any] | None

    def resources(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Planned resources (with their planned values), anywhere in the module tree."""
        assert self.plan is not None, self.output
        found = [
            change
            for change in self.plan.get("resource_changes", [])
            if change["mode"] == "managed" and (type_ is None or change["type"] == type_)
        ]
        return found

    def resource(self, address_suffix: str) -> dict[str, Any]:
        matches = [r for r in self.resources() if r["address"].endswith(address_suffix)]
        assert len(matches) == 1, [r["address"] for r in self.resources()]
        return matches[0]["change"]["after"]


class ModulePlanner:
    """Plans a root module that calls the fleet module with the given arguments.

    One working directory for the session: the configuration (JSON syntax) is rewritten per
    plan, `terraform init` runs once.
    """

    def __init__(self, workdir: Path, emulator: Emulator) -> None:
        self.workdir = workdir
        self.emulator = emulator
        self.initialised = False

    def plan(self, secrets: dict[str, str] | None = None, **arguments: Any) -> PlanResult:
        """Plans the module with `arguments`; `secrets` reach it through sensitive root
        variables set in the environment, as a careful user passes them."""
        secrets = secrets or {}
        config = {
            "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}},
            "provider": {"aws": emulator_provider(self.emulator.url)},
            "variable": {name: {"type": "string", "sensitive": True} for name in secrets},
            "module": {
                "fleet": {
                    # A relative path: Terraform uses the module in place (it copies absolute ones).
                    "source": os.path.relpath(REPO_ROOT, self.workdir),
                    **arguments,
                    **{name: f"${{var.{name}}}" for name in secrets},
                }
            },
        }
        if not config["variable"]:
            del config["variable"]
        (self.workdir / "main.tf.json").write_text(json.dumps(config, indent=2))
        if not self.initialised:
            run_terraform(["init", "-backend=false"], self.workdir)
            self.initialised = True
        env = {f"TF_VAR_{name}": value for name, value in secrets.items()}
        plan_file = self.workdir / "tfplan"
        plan_file.unlink(missing_ok=True)
        result = run_terraform(["plan", "-out=tfplan"], self.workdir, check=False, env=env)
        output = result.stdout + result.stderr
        plan = None
        if result.returncode == 0:
            shown = run_terraform(["show", "-json", "tfplan"], self.workdir)
            plan = json.loads(shown.stdout)
        return PlanResult(result.returncode, output, plan)


def copy_example(name: str, workdir: Path, emulator: Emulator) -> Path:
    """A copy of examples/<name> that applies to the emulator, the example itself unchanged.

    An override file (Terraform merges `*_override.tf.json` into the blocks it names) adds the
    emulator's endpoints and test credentials to the example's own provider block, keeping
    its region, and points the fleet module's relative `source` back at this repository.
    """
    source = REPO_ROOT / "examples" / name
    directory = workdir / name
    shutil.copytree(source, directory, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    with (source / "main.tf").open() as main_tf:
        calls = [call for block in hcl2.load(main_tf).get("module", []) for call in block.items()]
    # The calls of this module: a relative source that leads to the repository's root.
    fleet_calls = [
        name for name, body in calls if (source / body["source"][0]).resolve() == REPO_ROOT
    ]
    provider = {k: v for k, v in emulator_provider(emulator.url).items() if k != "region"}
    override = {
        "provider": {"aws": provider},
        "module": {call: {"source": os.path.relpath(REPO_ROOT, directory)} for call in fleet_calls},
    }
    assert fleet_calls, f"examples/{name}/main.tf calls no module at ../.."
    (directory / "emulator_override.tf.json").write_text(json.dumps(override, indent=2))
    return directory
