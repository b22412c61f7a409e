"""GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "sha256="
MISMATCH = "signature does not match"
_WELL_FORMED = re.compile(r"^sha256=[0-9a-fA-F]{64}$")


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def problem(secret: str, body: bytes, header: str) -> str | None:
    """Why the signature header does not prove the body came from GitHub, or None if it does."""
    if not header:
        return "missing X-Hub-Signature-256"
    if not _WELL_FORMED.match(header):
        return "malformed X-Hub-Signature-256"
    if not secret:
        return "no webhook secret configured"
    # constant-time: the comparison's duration must not reveal how many characters matched
    if not hmac.compare_digest(sign(secret, body), header.lower()):
        return MISMATCH
    return None
