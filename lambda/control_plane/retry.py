"""Bounded retries with jittered backoff, within the Lambda's time budget.

One place for the retry policy of the calls that matter for a launch (GitHub, ECS RunTask):
a retry happens only when the error says it is worth it (the caller's `delay_for`), at most
`max_attempts` times, and only while the wait still fits in the invocation's remaining time
(minus a reserve for recording the failure). Otherwise the error propagates, the record stays
resumable and the Lambda fails, so EventBridge/Lambda deliver the event again later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from control_plane import log

T = TypeVar("T")
RESERVE_SECONDS = 3.0  # kept back to record the failure and release the job's lease
DEFAULT_BUDGET_SECONDS = 60.0  # when there is no Lambda context (local tools)


class Deadline:
    """The end of the current invocation, from the Lambda context."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    @classmethod
    def from_context(cls, context: object) -> Deadline:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            return cls(remaining() / 1000.0)
        return cls(DEFAULT_BUDGET_SECONDS)

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    def allows(self, delay: float) -> bool:
        """Whether waiting `delay` seconds still leaves the reserve."""
        return self.remaining() - delay > RESERVE_SECONDS


def backoff(attempt: int, base: float = 0.25, cap: float = 8.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base·2^(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - not crypto


def with_retries(
    call: Callable[[], T],
    delay_for: Callable[[Exception, int], float | None],
    deadline: Deadline,
    *,
    max_attempts: int,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs `call`; on an error for which `delay_for(error, attempt)` gives a delay, waits and
    tries again (bounded by `max_attempts` and the deadline)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            delay = delay_for(exc, attempt)
            if delay is None:
                raise
            if attempt >= max_attempts or not deadline.allows(delay):
                log.warning(
                    "giving up",
                    call=what,
                    attempts=attempt,
                    error=describe(exc),
                    remaining_s=round(deadline.remaining(), 1),
                )
                raise
            log.info(
                "retrying", call=what, attempt=attempt, delay_s=round(delay, 2), error=describe(exc)
            )
            sleep(delay)


def describe(exc: BaseException) -> str:
    """A short, loggable description of an error (AWS and GitHub errors carry no secret)."""
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}"
