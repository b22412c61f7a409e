"""Fleet-wide pacing of GitHub JIT runner configs (generate-jitconfig) across invocations.

GitHub's secondary rate limit lets an App create about 180 JIT configs a minute (900 points,
5 per POST) and answers 403/429 past it. A burst of queued jobs runs many Lambda invocations
at once, so a per-invocation retry cannot keep under it: the fleet shares one schedule.

The schedule is one item of the state table, `pk = "pace#github-jit"` (no `kind`: it stays
out of the by-kind-created index), with `next_at` (N, epoch s): when the next config may be
created, and `blocked_until` (N): the end of the last rate-limited answer. Slots are
`interval = 60 / GITHUB_JIT_CONFIGS_PER_MINUTE` apart.

- Taking a slot is one write: `ADD next_at :interval` on condition
  `next_at BETWEEN :now AND :latest`; the old value is the caller's slot. Concurrent callers
  each get their own slot, without a read or a retry loop.
- When `next_at` is in the past (the fleet was idle, or no item yet), the caller restarts the
  schedule at now instead (`SET next_at = now + interval` if it is still in the past): idle
  time never banks a burst. Each execution environment tries first what the `next_at` it last
  saw suggests, so a slot usually costs one write whether the fleet is busy or idle (two
  when the guess was wrong).
- When `next_at` is past `latest` (the invocation could not wait for it and keep
  retry.RESERVE_SECONDS), no slot is taken: NoSlotInTime, and the launch fails cleanly (the
  job's lease is released with the reason; the event is delivered again later).
- A rate-limited answer (`hold_until`) moves `next_at` to the time GitHub gave, only ever
  later, and records `blocked_until`: every invocation's next slot comes after it. A caller
  that slept until its slot re-reads `blocked_until` (one consistent read) and takes a new
  slot if a throttled answer arrived meanwhile, rather than calling GitHub into the limit.
- A caller that finds its slot passed by more than one interval (0.1 s at least: its
  DynamoDB calls or its process stalled) takes another, once: slots missed together would
  otherwise become calls made together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from control_plane import log, retry

KEY = {"pk": {"S": "pace#github-jit"}}
MAX_TRIES = 8  # restarts lost to other callers; each loss means someone else got a slot
MIN_LATENESS = 0.1  # s: a caller later than its slot by one interval, and this, takes another
# `next_at` as this execution environment last saw it, per table: a hint (a warm Lambda
# keeps it across invocations), never trusted for a decision without its conditional write
_last_seen: dict[str, float] = {}


class NoSlotInTime(Exception):
    """The fleet's next JIT slot comes too late for this invocation to wait for it."""


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


class Pacer:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.interval = max(0.001, 60.0 / per_minute)
        self.clock = clock  # wall clock: the schedule is shared by every execution environment
        self.sleep = sleep

    @property
    def _seen(self) -> float:
        return _last_seen.get(self.table, 0.0)

    @_seen.setter
    def _seen(self, value: float) -> None:
        _last_seen[self.table] = value

    def wait_turn(self, deadline: retry.Deadline) -> None:
        """Waits for this caller's slot; raises NoSlotInTime when it would come too late."""
        skipped = False
        while True:
            now = self.clock()
            slot = self.reserve(now + max(0.0, deadline.remaining() - retry.RESERVE_SECONDS))
            wait = slot - self.clock()
            if wait > 0:
                log.info("waiting for a GitHub JIT slot", wait_s=round(wait, 2))
                self.sleep(wait)
                if self.blocked_until() > slot:
                    log.info("GitHub rate-limited the fleet meanwhile: taking a later slot")
                    continue
            late = self.clock() - slot
            if skipped or late <= max(self.interval, MIN_LATENESS):
                return
            # A stall (DynamoDB, this process) made the slot pass: callers that missed theirs
            # together would call GitHub together. Once only: slow calls never livelock.
            skipped = True
            log.info("missed its GitHub JIT slot: taking another", late_s=round(late, 2))

    def reserve(self, latest: float) -> float:
        """Takes the fleet's next slot (epoch s) if it comes no later than `latest`. Tries
        first what the schedule last seen suggests (a restart after idle time, else the next
        slot), so either case usually costs one write."""
        for _ in range(MAX_TRIES):
            now = self.clock()
            steps = (self._restart, self._take) if self._seen < now else (self._take, self._restart)
            for step in steps:
                slot = step(now, latest)
                if slot is not None:
                    return slot
        raise NoSlotInTime("the fleet's JIT schedule kept changing under this caller")

    def _take(self, now: float, latest: float) -> float | None:
        """The next slot of a schedule that lies ahead (None: it lies in the past)."""
        taken = self._write(
            "ADD next_at :interval",
            "next_at BETWEEN :now AND :latest",
            {":interval": _n(self.interval), ":now": _n(now), ":latest": _n(latest)},
            ReturnValues="UPDATED_OLD",
        )
        if taken is not None:
            slot = float(taken["Attributes"]["next_at"]["N"])
            self._seen = slot + self.interval
            return slot
        if self._seen > latest:
            raise NoSlotInTime(
                f"the fleet's next GitHub JIT slot is {self._seen - now:.0f} s away, beyond "
                f"this invocation's time ({latest - now:.0f} s to wait at most)"
            )
        return None

    def _restart(self, now: float, latest: float) -> float | None:
        """Restarts a schedule that lies in the past (idle time) at now: this caller's slot,
        which is never late (the write's own time does not count)."""
        if self._set_later("next_at", now + self.interval, before=now):
            return self.clock()
        return None

    def hold_until(self, until: float) -> None:
        """A rate-limited answer: no invocation creates a JIT config before `until`."""
        self._set_later("next_at", until)
        if self._set_later("blocked_until", until):
            wait = round(until - self.clock(), 1)
            log.warning("GitHub rate limit: every JIT config waits", wait_s=wait)

    def blocked_until(self) -> float:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=KEY, ConsistentRead=True, ProjectionExpression="blocked_until"
        ).get("Item", {})
        return float(item["blocked_until"]["N"]) if "blocked_until" in item else 0.0

    def _set_later(self, name: str, value: float, before: float | None = None) -> bool:
        """Sets `name` to `value` if it is absent or earlier than `before` (default `value`):
        it only ever moves later. False if it did not."""
        done = self._write(
            f"SET {name} = :value",
            f"attribute_not_exists({name}) OR {name} < :before",
            {":value": _n(value), ":before": _n(value if before is None else before)},
        )
        if done is not None and name == "next_at":
            self._seen = value
        return done is not None

    def _write(self, expression: str, condition: str, values: dict, **extra: Any) -> dict | None:
        """One conditional UpdateItem of the schedule; None when its condition failed (and
        the `next_at` it found is remembered)."""
        try:
            return self.dynamodb.update_item(
                TableName=self.table,
                Key=KEY,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **extra,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            found = exc.response.get("Item", {}).get("next_at")
            self._seen = float(found["N"]) if found else 0.0
            return None
