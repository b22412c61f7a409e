"""Structured logging: one JSON object per line, one line per decision.

Every line carries the fields bound for the current event (delivery id, job id, runner name)
through a context variable, so concurrent invocations in one process (tests, local mode)
never mix them up. Secret values the control plane has loaded are registered here and
replaced by "***" should one ever reach a log line: a second guard, not the first (the code
never passes a secret, a request body or a JIT config to the logger). Values are masked before
they are serialised, as JSON escapes a secret's line breaks, quotes and non-ASCII characters;
`redact` masks text bound for other sinks (reasons stored in the state table).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from control_plane.times import iso

LOGGER_NAME = "control_plane"
_fields: ContextVar[dict[str, Any] | None] = ContextVar("control_plane_log_fields", default=None)
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()  # longest first: a whole key before its lines
_secrets_lock = threading.Lock()
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words


def _forms(value: str) -> set[str]:
    """What to mask for a secret: the value; each line of a multi-line one but its PEM armour
    (a log of one line of a key); and the escaped forms of text serialised upstream (an HTTP
    body echoing it, an exception's repr)."""
    lines = (line.strip() for line in value.splitlines())
    forms = {value, *(line for line in lines if not line.startswith("-----"))}
    forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(repr(value)[1:-1])
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> None:
    """Marks a value as secret: it is masked in every later log line."""
    global _ordered
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _secrets_lock:
            if value not in _secrets:
                _secrets.add(value)
                _ordered = tuple(sorted({*_ordered, *_forms(value)}, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every registered secret (and each line of a multi-line one) as "***"."""
    for secret in _ordered:  # a tuple, replaced whole on registration: no lock needed
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _redacted(value: Any) -> Any:
    """`value` with its strings redacted, recursively; any other object (an exception) as its
    redacted text, which json.dumps(default=str) would otherwise write unredacted."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return redact(str(value))


class _StdoutHandler(logging.Handler):
    """Writes to the current sys.stdout (Lambda ships stdout to CloudWatch Logs)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso(record.created),
            "level": record.levelname.lower(),
            "msg": redact(record.getMessage()),
        }
        entry.update(_redacted(getattr(record, "fields", {})))
        return json.dumps(entry, default=str, separators=(",", ":"))


def _logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(_JsonFormatter())
        logger.addHandler(handler)
        # The Lambda runtime's root handler would print every line a second time, unformatted.
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger


def set_level(level: str) -> None:
    _logger().setLevel(getattr(logging, (level or "INFO").upper(), logging.INFO))


def _merged(fields: dict[str, Any]) -> dict[str, Any]:
    return {**(_fields.get() or {}), **{k: v for k, v in fields.items() if v is not None}}


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Adds fields to every line logged inside the block (this thread/context only)."""
    token = _fields.set(_merged(fields))
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: Any) -> None:
    """Adds fields to the current context until the enclosing `bound` block ends."""
    _fields.set(_merged(fields))


def _log(level: int, msg: str, fields: dict[str, Any]) -> None:
    logger = _logger()
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": _merged(fields)})


def always(msg: str, **fields: Any) -> None:
    """An info line written whatever the log level (metrics.py: an EMF line is data)."""
    logger = _logger()
    logger.handle(
        logger.makeRecord(
            LOGGER_NAME, logging.INFO, "", 0, msg, (), None, extra={"fields": _merged(fields)}
        )
    )


def info(msg: str, **fields: Any) -> None:
    _log(logging.INFO, msg, fields)


def warning(msg: str, **fields: Any) -> None:
    _log(logging.WARNING, msg, fields)


def error(msg: str, **fields: Any) -> None:
    _log(logging.ERROR, msg, fields)
