"""The command tree, and the one place where AWS errors become one line and an exit code.

Exit codes: 0 success; 1 the thing asked for failed (not found, AWS refused or unreachable);
2 usage or configuration (bad argument, missing setting, no region or credentials).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ecsrunner import fleet, images, runners, runs
from ecsrunner.config import CLASS_SIZES_VAR, TABLE_VARS, CliError, Config, ConfigError

# The command groups, in --help order: a new group (e.g. `images`) is one more entry here.
COMMANDS: tuple[click.Command, ...] = (
    runners.runners,
    runs.runs,
    fleet.list_class_sizes,
    fleet.cluster,
    fleet.fleet_stats,
    images.images,
)
STATE_TABLE_OPERATIONS = {"Query", "GetItem", "UpdateItem", "PutItem", "DescribeTable"}
DISTRIBUTION = "aws-runner-fleet"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def version(distribution: str = DISTRIBUTION, pyproject: Path = PYPROJECT) -> str:
    """The version of the code that runs: a checkout's pyproject.toml (the installed metadata
    may be another copy's), else the installed distribution's; else "unknown"."""
    try:
        project = tomllib.loads(pyproject.read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == distribution:
        return str(project["version"])
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def aws_failure(exc: Exception, cfg: Config) -> CliError:
    """One readable line for an AWS error (never a traceback)."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            "no AWS credentials: use --profile / AWS_PROFILE, or set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return ConfigError("no AWS region: pass --region or set AWS_REGION")
    if isinstance(exc, ProfileNotFound):
        return ConfigError(f"AWS profile {exc.kwargs.get('profile')!r} not found (--profile)")
    if isinstance(exc, EndpointConnectionError):
        return CliError(f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}")
    if not isinstance(exc, ClientError):
        return CliError(f"AWS: {exc}")
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Error"), error.get("Message", "")
    operation = exc.operation_name
    if code == "ResourceNotFoundException" and operation in STATE_TABLE_OPERATIONS:
        return CliError(
            f"state table {cfg.table!r} not found in {cfg.session.region_name}: "
            f"check --table / {TABLE_VARS[0]}"
        )
    if code == "ParameterNotFound":
        return CliError(
            f"SSM parameter {cfg.class_sizes_param!r} not found in {cfg.session.region_name}: "
            f"check --class-sizes-param / {CLASS_SIZES_VAR}"
        )
    return CliError(f"AWS refused {operation}: {code}: {message}")


class Cli(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # COMMANDS order, not alphabetical

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BotoCoreError, ClientError) as exc:
            raise aws_failure(exc, ctx.ensure_object(Config)) from exc


@click.group(
    cls=Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(version(), "--version", prog_name="ecsrunner")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Operate the runner fleet: see, enter and stop the ECS runners of GitHub jobs.

    Settings come from options or the environment: --table / RUNNER_TABLE (the state table,
    `<name_prefix>-state`), --class-sizes-param / CLASS_SIZES_PARAM, --region / AWS_REGION,
    --profile / AWS_PROFILE; the standard AWS environment (credentials, AWS_ENDPOINT_URL)
    is honoured. Read commands take --output table|json.

    Exit codes: 0 success, 1 failed (not found, AWS error), 2 usage or configuration error.

    \b
    Examples:
      export RUNNER_TABLE=runner-fleet-state CLASS_SIZES_PARAM=/runner-fleet/config/class-sizes
      ecsrunner runners list --status active
      ecsrunner runners details runner-fleet-1234567890
      ecsrunner runners terminate runner-fleet-1234567890
      ecsrunner runs list --repo octo-org/app
      ecsrunner list-class-sizes
      ecsrunner cluster status runner-fleet
      ecsrunner stats --since 7d
    """
    ctx.ensure_object(Config)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="ecsrunner")
