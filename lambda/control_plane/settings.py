"""The Lambda's configuration, read from its environment (docs/CONTRACTS.md).

Only names live in the environment: every secret is an SSM parameter name here.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from control_plane.classes import CAPACITY_STRATEGIES
from control_plane.cost import Prices, PricesError
from control_plane.images.refs import (
    DEFAULT_ALLOWED_BASE_IMAGES,
    DEFAULT_MAX_AGE_DAYS,
    InvalidReference,
    base_allowed,
    normalise,
)


class SettingsError(ValueError):
    """The Lambda's environment is incomplete or wrong (a deployment problem)."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _check_default_base(settings: Settings) -> None:
    """Every job without an image: label builds on DEFAULT_BASE_IMAGE: one that
    ALLOWED_BASE_IMAGES refuses is a deployment error, not a rejection of every such job. (An
    invalid reference is left to the jobs' rejection, which quotes it with the reason.)"""
    try:
        base = str(normalise(settings.default_base_image))
    except InvalidReference:
        return
    if not base_allowed(base, settings.allowed_base_images):
        raise SettingsError(
            f"DEFAULT_BASE_IMAGE {base} matches none of ALLOWED_BASE_IMAGES "
            f"({', '.join(settings.allowed_base_images)}): add a pattern for it to the module "
            "input allowed_base_images, or change default_base_image"
        )


@dataclass(frozen=True)
class Settings:
    name_prefix: str
    state_table: str
    class_sizes_param: str
    ssm_prefix: str
    webhook_secret_param: str
    github_auth: str
    github_pat_param: str
    github_app_id: str
    github_app_installation_id: str
    github_app_key_param: str
    github_api_url: str
    github_scope: str
    github_owner: str
    github_repo: str
    runner_group_id: int
    runner_extra_labels: tuple[str, ...]
    cluster_name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    assign_public_ip: bool
    capacity_strategy: str
    image_build_project: str
    log_level: str
    # the cleanup (cleanup/): its limits and the dead-letter queue it replays
    runner_timeout_minutes: int = 360
    runner_idle_minutes: int = 15
    dlq_url: str = ""
    max_relaunches: int = 2
    # a task still waiting for EC2 capacity (PROVISIONING) this long is reported
    docker_capacity_wait_minutes: int = 15
    # runner images (builds.py): the image the class task definitions run (empty: the
    # default image is built on DEFAULT_BASE_IMAGE), and the runner files' fingerprint
    ecr_repository_url: str = ""
    runner_image: str = ""
    default_base_image: str = ""
    runner_image_fingerprint: str = ""
    # one-shot JIT configs (jit_config.py) and ECS Exec on runner tasks
    jit_bucket: str = ""
    enable_execute_command: bool = True
    region: str = "us-east-1"
    # image builds (images/refs.py): glob patterns of the normalised bases jobs may build on,
    # and the age in days after which an image on a mutable base tag is built again (0: never)
    allowed_base_images: tuple[str, ...] = DEFAULT_ALLOWED_BASE_IMAGES
    image_max_age_days: int = DEFAULT_MAX_AGE_DAYS
    # webhook secret rotation (parameters.py): the previous secret's parameter ("": none),
    # accepted for this long after the parameter was written
    webhook_secret_previous_param: str = ""
    webhook_secret_previous_grace_seconds: int = 86400
    # the fleet-wide pace of GitHub JIT config creation (pacing.py)
    github_jit_configs_per_minute: float = 150.0
    # observability (metrics.py, cost.py): the EMF namespace, the price table, and how long a
    # job may wait queued on GitHub before the cleanup counts it stranded
    metrics_namespace: str = "AWSRunnerFleet"
    fargate_prices: Prices = field(default_factory=Prices)
    stranded_job_seconds: int = 900

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str:
            value = env.get(name, "").strip()
            if value:
                return value
            if default is None:
                raise SettingsError(f"environment variable {name} is not set")
            return default

        prefix = get("NAME_PREFIX")
        auth = get("GITHUB_AUTH", "pat").lower()
        scope = get("GITHUB_SCOPE", "repo").lower()
        strategy = get("CAPACITY_STRATEGY", "FARGATE")
        if auth not in ("pat", "app"):
            raise SettingsError(f"GITHUB_AUTH must be pat or app, not {auth!r}")
        if scope not in ("repo", "org"):
            raise SettingsError(f"GITHUB_SCOPE must be repo or org, not {scope!r}")
        if strategy not in CAPACITY_STRATEGIES:
            raise SettingsError(
                f"CAPACITY_STRATEGY must be one of {', '.join(CAPACITY_STRATEGIES)}, "
                f"not {strategy!r}"
            )
        try:
            prices = Prices.from_json(get("FARGATE_PRICES", "{}"))
        except PricesError as exc:
            raise SettingsError(str(exc)) from exc
        try:
            group = int(get("RUNNER_GROUP_ID", "1"))
        except ValueError as exc:
            raise SettingsError("RUNNER_GROUP_ID must be an integer") from exc

        def minimum(name: str, default: str, least: int) -> int:
            try:
                value = int(get(name, default))
            except ValueError as exc:
                raise SettingsError(f"{name} must be an integer") from exc
            if value < least:
                raise SettingsError(f"{name} must be at least {least}")
            return value

        def positive(name: str, default: str) -> float:
            try:
                value = float(get(name, default))
            except ValueError as exc:
                raise SettingsError(f"{name} must be a number") from exc
            if not (value > 0 and math.isfinite(value)):
                raise SettingsError(f"{name} must be a number above 0")
            return value

        settings = cls(
            name_prefix=prefix,
            state_table=get("STATE_TABLE", f"{prefix}-state"),
            class_sizes_param=get("CLASS_SIZES_PARAM", f"/{prefix}/config/class-sizes"),
            ssm_prefix=get("SSM_PREFIX", f"/{prefix}").rstrip("/"),
            webhook_secret_param=get("WEBHOOK_SECRET_PARAM", f"/{prefix}/secrets/webhook-secret"),
            github_auth=auth,
            github_pat_param=get("GITHUB_PAT_PARAM", f"/{prefix}/secrets/github-pat"),
            github_app_id=get("GITHUB_APP_ID", ""),
            github_app_installation_id=get("GITHUB_APP_INSTALLATION_ID", ""),
            github_app_key_param=get(
                "GITHUB_APP_KEY_PARAM", f"/{prefix}/secrets/github-app-private-key"
            ),
            github_api_url=get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            github_scope=scope,
            github_owner=get("GITHUB_OWNER"),
            # the repository's name; an `owner/repo` value is accepted too
            github_repo=get("GITHUB_REPO", "").rsplit("/", 1)[-1] if scope == "repo" else "",
            runner_group_id=group,
            runner_extra_labels=_csv(get("RUNNER_EXTRA_LABELS", "")),
            cluster_name=get("CLUSTER_NAME", prefix),
            subnet_ids=_csv(get("SUBNET_IDS")),
            security_group_ids=_csv(get("SECURITY_GROUP_IDS")),
            assign_public_ip=get("ASSIGN_PUBLIC_IP", "false").lower() in ("true", "1", "yes"),
            capacity_strategy=strategy,
            image_build_project=get("IMAGE_BUILD_PROJECT", ""),
            log_level=get("LOG_LEVEL", "INFO"),
            runner_timeout_minutes=minimum("RUNNER_TIMEOUT_MINUTES", "360", 1),
            runner_idle_minutes=minimum("RUNNER_IDLE_MINUTES", "15", 1),
            dlq_url=get("DLQ_URL", ""),
            max_relaunches=minimum("MAX_RELAUNCHES", "2", 0),
            docker_capacity_wait_minutes=minimum("DOCKER_CAPACITY_WAIT_MINUTES", "15", 1),
            ecr_repository_url=get("ECR_REPOSITORY_URL", ""),
            runner_image=get("RUNNER_IMAGE", ""),
            default_base_image=get("DEFAULT_BASE_IMAGE", ""),
            runner_image_fingerprint=get("RUNNER_IMAGE_FINGERPRINT", "").lower(),
            jit_bucket=get("JIT_BUCKET"),
            enable_execute_command=get("ENABLE_EXECUTE_COMMAND", "true").lower() == "true",
            region=get("AWS_REGION", get("AWS_DEFAULT_REGION", "us-east-1")),
            allowed_base_images=_csv(
                get("ALLOWED_BASE_IMAGES", ",".join(DEFAULT_ALLOWED_BASE_IMAGES))
            ),
            image_max_age_days=minimum("IMAGE_MAX_AGE_DAYS", str(DEFAULT_MAX_AGE_DAYS), 0),
            webhook_secret_previous_param=get("WEBHOOK_SECRET_PREVIOUS_PARAM", ""),
            webhook_secret_previous_grace_seconds=minimum(
                "WEBHOOK_SECRET_PREVIOUS_GRACE_SECONDS", "86400", 1
            ),
            github_jit_configs_per_minute=positive("GITHUB_JIT_CONFIGS_PER_MINUTE", "150"),
            metrics_namespace=get("METRICS_NAMESPACE", "AWSRunnerFleet"),
            fargate_prices=prices,
            stranded_job_seconds=minimum("STRANDED_JOB_SECONDS", "900", 1),
        )
        if settings.image_build_project:
            needed = ["ECR_REPOSITORY_URL", "RUNNER_IMAGE_FINGERPRINT"]
            if not settings.runner_image:
                needed.append("DEFAULT_BASE_IMAGE")
            missing = [name for name in needed if not env.get(name, "").strip()]
            if missing:
                raise SettingsError(
                    f"{', '.join(missing)} must be set when IMAGE_BUILD_PROJECT is set"
                )
            if not re.fullmatch(r"[0-9a-f]{64}", settings.runner_image_fingerprint):
                raise SettingsError("RUNNER_IMAGE_FINGERPRINT must be a sha256 (64 hex digits)")
            if not settings.runner_image:
                _check_default_base(settings)
        if scope == "repo" and not settings.github_repo:
            raise SettingsError("GITHUB_REPO must be set when GITHUB_SCOPE is repo")
        if auth == "app" and not (settings.github_app_id and settings.github_app_installation_id):
            raise SettingsError(
                "GITHUB_APP_ID and GITHUB_APP_INSTALLATION_ID must be set when GITHUB_AUTH is app"
            )
        return settings

    @property
    def scope_name(self) -> str:
        """`owner/repo` (repo scope) or `owner` (org scope), as logged and compared."""
        if self.github_scope == "repo":
            return f"{self.github_owner}/{self.github_repo}"
        return self.github_owner

    @property
    def partition(self) -> str:
        """The AWS partition of the region, for ARNs the control plane builds."""
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"
