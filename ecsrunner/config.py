"""What one invocation works with: its options (each with its environment variables), the
AWS session they describe, and the two ways a command fails (exit 1 and exit 2).

Options are attached to the commands that use them (`@uses(TABLE, AWS, OUTPUT)`), so
`ecsrunner runners list --table t` works and each command's --help shows only its own. Their
values are collected in the invocation's `Config` rather than passed to every function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
import botocore.session
import click
from botocore.config import Config as BotoConfig

TABLE_VARS = ("RUNNER_TABLE", "RUNNER_STATE_TABLE")
CLASS_SIZES_VAR = "CLASS_SIZES_PARAM"
FUNCTION_VAR = "CONTROL_PLANE_FUNCTION"
CLUSTER_VAR = "CLUSTER_NAME"
TABLE_SUFFIX = "-state"  # the table is `${name_prefix}-state` (docs/CONTRACTS.md)
# Set to 1 by local mode's <state dir>/env: the AWS endpoint is the local emulator.
LOCAL_MODE_VAR = "RUNNER_FLEET_LOCAL_MODE"

# An operator waits at a terminal: a few retries, and no minute-long hang on a dead endpoint.
BOTO_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
)


class CliError(click.ClickException):
    """The thing asked for failed (not found, AWS refused): one line on stderr, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class ConfigError(CliError):
    """A usage or configuration problem (missing setting, bad argument): exit 2."""

    exit_code = 2


@dataclass
class Config:
    table: str | None = None
    class_sizes_param: str | None = None
    region: str | None = None
    profile: str | None = None
    function_name: str | None = None
    output: str = "table"
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def current(cls) -> Config:
        return click.get_current_context().ensure_object(cls)

    # ------------------------------------------------------------------ settings

    def require_table(self) -> str:
        if not self.table:
            raise ConfigError(
                f"no state table: pass --table or set {TABLE_VARS[0]} (or {TABLE_VARS[1]})"
            )
        return self.table

    def require_class_sizes_param(self) -> str:
        if not self.class_sizes_param:
            raise ConfigError(
                f"no class sizes parameter: pass --class-sizes-param or set {CLASS_SIZES_VAR}"
            )
        return self.class_sizes_param

    @property
    def local_mode(self) -> bool:
        """Whether the CLI talks to local mode's emulator (as `source .local/env` says)."""
        return os.environ.get(LOCAL_MODE_VAR, "") not in ("", "0")

    @property
    def name_prefix(self) -> str:
        """The fleet's name prefix: the table's name without `-state`."""
        table = self.require_table()
        return table.removesuffix(TABLE_SUFFIX) if table.endswith(TABLE_SUFFIX) else table

    @property
    def control_plane_function(self) -> str:
        return self.function_name or f"{self.name_prefix}-control-plane"

    # ------------------------------------------------------------------ AWS

    @cached_property
    def botocore_session(self) -> botocore.session.Session:
        # profile None: botocore's own rules (AWS_PROFILE, then the default credential chain)
        return botocore.session.Session(profile=self.profile)

    @cached_property
    def session(self) -> boto3.Session:
        session = boto3.Session(botocore_session=self.botocore_session, region_name=self.region)
        if not session.region_name:
            raise ConfigError("no AWS region: pass --region or set AWS_REGION")
        return session

    @property
    def profile_name(self) -> str:
        """The profile in use, "" for none (what session-manager-plugin expects)."""
        return self.botocore_session.profile or ""

    def client(self, service: str) -> Any:
        """A client of the session; AWS_ENDPOINT_URL[_<SERVICE>] is honoured by boto3."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=BOTO_CONFIG)
        return self._clients[service]


# ---------------------------------------------------------------------- options


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        setattr(ctx.ensure_object(Config), str(param.name), value)
    return value


def _option(*decls: str, **kwargs: Any) -> Callable:
    kwargs.setdefault("show_envvar", True)
    return click.option(*decls, expose_value=False, callback=_store, **kwargs)


TABLE = [
    _option(
        "--table",
        "table",
        envvar=list(TABLE_VARS),
        metavar="NAME",
        help="The fleet's DynamoDB state table (`<name_prefix>-state`).",
    )
]
CLASS_SIZES = [
    _option(
        "--class-sizes-param",
        "class_sizes_param",
        envvar=CLASS_SIZES_VAR,
        metavar="NAME",
        help="SSM parameter of the class sizes (`/<name_prefix>/config/class-sizes`).",
    )
]
FUNCTION = [
    _option(
        "--function-name",
        "function_name",
        envvar=FUNCTION_VAR,
        metavar="NAME",
        help="The control-plane Lambda, whose configuration says how to reach GitHub "
        "[default: <name_prefix>-control-plane].",
    )
]
AWS = [
    _option("--region", "region", envvar="AWS_REGION", metavar="REGION", help="AWS region."),
    _option("--profile", "profile", envvar="AWS_PROFILE", metavar="NAME", help="AWS profile."),
]
OUTPUT = [
    _option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        show_envvar=False,
        help="Table for people, JSON for scripts (fields: docs/cli.md).",
    )
]


SINCE = click.option(
    "--since",
    metavar="WHEN",
    help="Only those created within a span (30m, 12h, 7d, 2w) or since an ISO 8601 date/time.",
)
LIMIT = click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="At most this many, newest first (0: all).",
)


def uses(*groups: list[Callable]) -> Callable:
    """Adds the given option groups to a command (in --help order)."""

    def decorate(command: Callable) -> Callable:
        for group in reversed(groups):
            for option in reversed(group):
                command = option(command)
        return command

    return decorate
