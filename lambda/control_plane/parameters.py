"""SSM parameters the control plane reads, cached across invocations of one environment.

Secrets (webhook secret, PAT, App private key) are SecureStrings read with decryption and
kept for SECRET_TTL; the class sizes are kept for CLASS_SIZES_TTL so a `terraform apply`
that changes them is picked up within a minute. Every secret read is registered with the
logger's redaction guard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from control_plane import aws, log
from control_plane.classes import ClassSizes, parse_class_sizes

SECRET_TTL = 900.0
CLASS_SIZES_TTL = 60.0


class TtlCache:
    """name → (value, loaded at); thread-safe; a value older than `ttl` is loaded again."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._values.get(name)
            if found is not None and self._clock() - found[1] < self.ttl:
                return found[0]
        value = load()
        with self._lock:
            self._values[name] = (value, self._clock())
        return value


_secrets = TtlCache(SECRET_TTL)
_class_sizes = TtlCache(CLASS_SIZES_TTL)


def _read(name: str, decrypt: bool) -> str:
    return aws.client("ssm").get_parameter(Name=name, WithDecryption=decrypt)["Parameter"]["Value"]


def secret(name: str) -> str:
    """A SecureString's value (cached)."""

    def load() -> str:
        value = _read(name, decrypt=True)
        log.register_secret(value)
        return value

    return _secrets.get(name, load)


def class_sizes(name: str) -> ClassSizes:
    """The parsed class sizes (cached briefly); raises ClassSizesError when invalid."""
    return _class_sizes.get(name, lambda: parse_class_sizes(_read(name, decrypt=False)))
