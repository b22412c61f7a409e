"""SSM parameters the control plane reads, cached across invocations of one environment.

Secrets (webhook secret, PAT, App private key) are SecureStrings read with decryption and
kept for SECRET_TTL; the class sizes are kept for CLASS_SIZES_TTL so a `terraform apply`
that changes them is picked up within a minute. Every secret read is registered with the
logger's redaction guard.

The webhook secrets (the current one and, during a rotation, the previous one) are read
together. A signature that matches neither may mean the secret was rotated since they were
cached: `refreshed_webhook_secrets` reads them again, at most once per REFRESH_INTERVAL
per execution environment, so forged deliveries cannot turn into one SSM read each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from control_plane import aws, log
from control_plane.classes import ClassSizes, parse_class_sizes

SECRET_TTL = 900.0
CLASS_SIZES_TTL = 60.0
REFRESH_INTERVAL = 30.0


class TtlCache:
    """name → (value, loaded at); thread-safe; a value older than `ttl` is loaded again.
    `refresh` loads a value before its time, at most once per `refresh_interval` per name."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.ttl = ttl
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._values: dict[str, tuple[Any, float]] = {}
        self._refreshed: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, name: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._values.get(name)
            if found is not None and self._clock() - found[1] < self.ttl:
                return found[0]
        return self._store(name, load())

    def refresh(self, name: str, load: Callable[[], Any]) -> Any | None:
        """`name` loaded again now, or None when it was refreshed less than
        `refresh_interval` ago (the value then is as fresh as the caller can have it)."""
        with self._lock:
            now = self._clock()
            last = self._refreshed.get(name)
            if last is not None and now - last < self.refresh_interval:
                return None
            self._refreshed[name] = now
        return self._store(name, load())

    def _store(self, name: str, value: Any) -> Any:
        with self._lock:
            self._values[name] = (value, self._clock())
        return value


@dataclass(frozen=True)
class WebhookSecrets:
    """The secrets a delivery's signature may match: the current one, and the previous one
    until `previous_until` (epoch seconds: when its parameter was written + the grace period)."""

    current: str
    previous: str = ""
    previous_until: float = 0.0

    def previous_accepted(self, now: float) -> str:
        """The previous secret while its grace period lasts, else ""."""
        return self.previous if now < self.previous_until else ""


_secrets = TtlCache(SECRET_TTL)
_webhook_secrets = TtlCache(SECRET_TTL)
_class_sizes = TtlCache(CLASS_SIZES_TTL)


def _get(name: str, decrypt: bool) -> dict[str, Any]:
    return aws.client("ssm").get_parameter(Name=name, WithDecryption=decrypt)["Parameter"]


def _read(name: str, decrypt: bool) -> str:
    return _get(name, decrypt)["Value"]


def _read_secret(name: str) -> str:
    value = _read(name, decrypt=True)
    log.register_secret(value)
    return value


def secret(name: str) -> str:
    """A SecureString's value (cached)."""
    return _secrets.get(name, lambda: _read_secret(name))


def _load_webhook_secrets(current: str, previous: str, grace: float) -> WebhookSecrets:
    secrets = WebhookSecrets(_read_secret(current))
    if not previous:
        return secrets
    try:
        found = _get(previous, decrypt=True)
    except aws.client("ssm").exceptions.ParameterNotFound:
        return secrets  # deleted by the apply that also takes its name out of the environment
    log.register_secret(found["Value"])
    until = found["LastModifiedDate"].timestamp() + grace
    return WebhookSecrets(secrets.current, found["Value"], until)


def webhook_secrets(current: str, previous: str = "", grace: float = 0.0) -> WebhookSecrets:
    """The webhook secrets in parameters `current` and `previous` ("": none), the previous
    one accepted for `grace` seconds after its parameter was written (cached)."""
    return _webhook_secrets.get(
        f"{current}\n{previous}", lambda: _load_webhook_secrets(current, previous, grace)
    )


def refreshed_webhook_secrets(
    current: str, previous: str = "", grace: float = 0.0
) -> WebhookSecrets | None:
    """webhook_secrets read again now (and cached), or None when this environment read them
    again less than REFRESH_INTERVAL ago."""
    return _webhook_secrets.refresh(
        f"{current}\n{previous}", lambda: _load_webhook_secrets(current, previous, grace)
    )


def class_sizes(name: str) -> ClassSizes:
    """The parsed class sizes (cached briefly); raises ClassSizesError when invalid."""
    return _class_sizes.get(name, lambda: parse_class_sizes(_read(name, decrypt=False)))
