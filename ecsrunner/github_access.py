"""GitHub as the fleet reaches it, for `runners terminate`.

One source of truth: the control-plane Lambda's configuration (API URL, scope, owner/repo,
PAT or App, and the names of the SSM parameters holding the secrets) is read with
lambda:GetFunctionConfiguration and parsed by the control plane's own Settings; the secret
itself is read from SSM with the operator's credentials and never printed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from functools import cache

from control_plane import log as control_plane_log
from control_plane.github import GitHubClient
from control_plane.retry import Deadline
from control_plane.settings import Settings, SettingsError

from ecsrunner.config import Config

GITHUB_BUDGET_SECONDS = 30.0


class Unavailable(Exception):
    """The fleet's GitHub settings or secret could not be read (the message says why)."""


def fleet_settings(cfg: Config) -> Settings:
    name = cfg.control_plane_function
    try:
        response = cfg.client("lambda").get_function_configuration(FunctionName=name)
        variables = (response.get("Environment") or {}).get("Variables") or {}
        return Settings.from_env(variables)
    except SettingsError as exc:
        raise Unavailable(f"the configuration of function {name} is incomplete: {exc}") from exc
    except Exception as exc:  # AWS said no (missing function, access denied, no network)
        raise Unavailable(
            f"cannot read the configuration of function {name} (--function-name): {exc}"
        ) from exc


def client(cfg: Config) -> GitHubClient:
    """The GitHub client of the fleet's scope, with the fleet's credentials."""
    settings = fleet_settings(cfg)
    ssm = cfg.client("ssm")

    @cache
    def secret(name: str) -> str:
        try:
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:
            raise Unavailable(f"cannot read the GitHub credential {name} from SSM: {exc}") from exc

    return GitHubClient.from_settings(settings, secret, Deadline(GITHUB_BUDGET_SECONDS))


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """The control plane's GitHub code logs JSON lines to stdout (for CloudWatch): in the
    CLI only its warnings show, on stderr, so that stdout stays the command's own output."""
    logger = logging.getLogger(control_plane_log.LOGGER_NAME)
    previous = logger.level or logging.INFO  # INFO: what the logger starts with
    control_plane_log.set_level("WARNING")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logger.setLevel(previous)
