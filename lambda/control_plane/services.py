"""What one invocation works with: settings, deadline, the state store, GitHub and AWS clients.

Clients and cached values live at module level in aws.py, parameters.py and github.py, so a
warm Lambda environment reuses them; this object only wires them for the current event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

from control_plane import aws, metrics, parameters
from control_plane.classes import ClassSizes
from control_plane.github import GitHubClient
from control_plane.pacing import Pacer
from control_plane.retry import Deadline
from control_plane.settings import Settings
from control_plane.state import StateStore


@dataclass
class Services:
    settings: Settings
    deadline: Deadline

    @cached_property
    def store(self) -> StateStore:
        return StateStore(self.settings.state_table, aws.client("dynamodb"))

    @property
    def ecs(self) -> Any:
        return aws.client("ecs")

    @property
    def autoscaling(self) -> Any:
        return aws.client("autoscaling")

    @property
    def s3(self) -> Any:
        return aws.client("s3")

    def _webhook_secret_params(self) -> tuple[str, str, float]:
        s = self.settings
        return (
            s.webhook_secret_param,
            s.webhook_secret_previous_param,
            s.webhook_secret_previous_grace_seconds,
        )

    def webhook_secrets(self) -> parameters.WebhookSecrets:
        """The secrets a webhook signature may match (cached)."""
        return parameters.webhook_secrets(*self._webhook_secret_params())

    def refreshed_webhook_secrets(self) -> parameters.WebhookSecrets | None:
        """The same, read again now; None when they were read again a moment ago."""
        return parameters.refreshed_webhook_secrets(*self._webhook_secret_params())

    def class_sizes(self) -> ClassSizes:
        return parameters.class_sizes(self.settings.class_sizes_param)

    @cached_property
    def pacer(self) -> Pacer:
        return Pacer(
            aws.client("dynamodb"),
            self.settings.state_table,
            self.settings.github_jit_configs_per_minute,
        )

    @cached_property
    def github(self) -> GitHubClient:
        return GitHubClient.from_settings(
            self.settings,
            parameters.secret,
            self.deadline,
            pacer=self.pacer,
            on_rate_limit=partial(metrics.emit, self.settings, "GitHubRateLimitRemaining"),
        )
