"""Fleet-wide pacing of JIT config creation (lambda/control_plane/pacing.py): concurrent
invocations against the GitHub stand-in's JIT rate limit, a rate-limited answer that holds
back every invocation, the schedule's restart after idle time, and a wait that does not fit.

Rates and counts are small: these check behaviour, the bench (`rate_limited`) the figures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from control_plane import pacing, retry
from control_plane.pacing import NoSlotInTime, Pacer
from control_plane.settings import Settings, SettingsError

from tests.control_plane.harness import Fleet, job_payload

JIT_PATH = r"/generate-jitconfig$"
PACER = "pace#github-jit"


class Clock:
    """A wall clock the test moves (the pacer's schedule is in epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pacer_of(fleet: Fleet, per_minute: float, clock: Any = time.time) -> Pacer:
    return Pacer(fleet.client("dynamodb"), f"{fleet.prefix}-state", per_minute, clock=clock)


def deliver_all(fleet: Fleet, payloads: list[dict]) -> list[Any]:
    """Each payload delivered by its own thread (concurrent Lambda invocations)."""
    results: list[Any] = [None] * len(payloads)

    def deliver(index: int) -> None:
        try:
            results[index] = fleet.deliver(payloads[index])
        except Exception as exc:  # reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


class Invocation(threading.Thread):
    """One delivery in a thread of its own (an invocation running beside the test's)."""

    def __init__(self, fleet: Fleet, payload: dict) -> None:
        super().__init__()
        self.fleet, self.payload, self.value = fleet, payload, None
        self.start()

    def run(self) -> None:
        self.value = self.fleet.deliver(self.payload)


def test_concurrent_launches_are_paced_under_githubs_limit(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    rate, jobs = 5.0, 12
    fleet.github.set_jit_limit(rate, burst=2)
    monkeypatch.setenv("GITHUB_JIT_CONFIGS_PER_MINUTE", str(rate * 60))
    payloads = [job_payload() for _ in range(jobs)]

    started, started_at = time.monotonic(), time.time()
    results = deliver_all(fleet, payloads)
    seconds = time.monotonic() - started

    assert [r["result"] for r in results if isinstance(r, dict)] == ["launched"] * jobs, results
    statuses = [r["status"] for r in fleet.jit_requests()]
    assert statuses.count(201) == jobs
    calls = [(round(r["time"] - started_at, 3), r["status"]) for r in fleet.jit_requests()]
    assert statuses.count(403) <= 1, calls  # unpaced, 10 of the 12 first calls are refused
    times = sorted(r["time"] for r in fleet.jit_requests() if r["status"] == 201)
    assert times[-1] - times[0] >= (jobs - 1) / rate * 0.8  # one slot every 1/rate s
    assert seconds < 3 * jobs / rate  # and no retry storm


def test_a_rate_limited_answer_holds_back_every_invocation(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_JIT_CONFIGS_PER_MINUTE", "6000")  # pacing alone: no wait
    fleet.github.add_fault(JIT_PATH, status=403, count=1, retry_after=2)
    first, second = job_payload(), job_payload()
    first_invocation = Invocation(fleet, first)

    deadline = time.monotonic() + 10
    while "blocked_until" not in (fleet.item(PACER) or {}) and time.monotonic() < deadline:
        time.sleep(0.02)  # until the first invocation has had its 403 and recorded the hold
    (throttled,) = fleet.jit_requests()
    assert throttled["status"] == 403
    assert fleet.deliver(second)["result"] == "launched"  # another invocation, after the 403
    first_invocation.join()
    assert first_invocation.value["result"] == "launched"

    later = fleet.jit_requests()[1:]
    assert [r["status"] for r in later] == [201, 201]
    for request in later:  # neither called GitHub before Retry-After was over
        assert request["time"] - throttled["time"] >= 1.9


def test_idle_time_banks_no_burst(fleet: Fleet) -> None:
    clock = Clock(1_800_000_000.0)
    pacer = pacer_of(fleet, per_minute=60, clock=clock)  # one slot a second
    far = 10**10
    assert [pacer.reserve(far) for _ in range(3)] == [clock.now, clock.now + 1, clock.now + 2]

    clock.now += 1000  # idle: the schedule restarts at now, not 997 slots in the past
    assert [pacer.reserve(far) for _ in range(3)] == [clock.now, clock.now + 1, clock.now + 2]
    assert float(fleet.item(PACER)["next_at"]) == clock.now + 3


def test_a_slot_missed_in_a_stall_is_not_used(fleet: Fleet) -> None:
    clock = Clock(1_800_000_000.0)
    start = clock.now

    def stalled_sleep(seconds: float) -> None:
        clock.now += seconds + 5  # the process stalled while it slept

    pacer = Pacer(
        fleet.client("dynamodb"), f"{fleet.prefix}-state", 60, clock=clock, sleep=stalled_sleep
    )
    assert [pacer.reserve(10**10) for _ in range(3)] == [start, start + 1, start + 2]
    pacer.wait_turn(retry.Deadline(60))
    # its slot (start + 3) passed 5 s before it woke: it called at a new slot, at now
    assert clock.now == start + 8
    assert float(fleet.item(PACER)["next_at"]) == start + 9


def test_a_hold_only_moves_the_schedule_later(fleet: Fleet) -> None:
    clock = Clock(1_800_000_000.0)
    pacer = pacer_of(fleet, per_minute=60, clock=clock)
    pacer.hold_until(clock.now + 30)
    pacer.hold_until(clock.now + 10)  # an earlier end changes nothing
    assert pacer.reserve(10**10) == clock.now + 30
    assert pacer.blocked_until() == clock.now + 30
    with pytest.raises(NoSlotInTime):
        pacer.reserve(clock.now + 20)  # beyond what the caller can wait: no slot taken
    assert float(fleet.item(PACER)["next_at"]) == clock.now + 31


def test_a_slot_beyond_the_invocations_time_fails_cleanly_and_resumes(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_JIT_CONFIGS_PER_MINUTE", "60")
    pacer_of(fleet, per_minute=60).hold_until(time.time() + 300)  # e.g. a long rate limit
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]

    started = time.monotonic()
    with pytest.raises(NoSlotInTime):
        fleet.deliver(payload, timeout=30)
    assert time.monotonic() - started < 5  # gave up at once instead of waiting to time out
    record = fleet.record(job_id)
    assert record["status"] == "pending" and "NoSlotInTime" in record["reason"]
    assert "lease_owner" not in record  # released: the next delivery may resume
    assert fleet.jit_requests() == [] and fleet.tasks() == []

    fleet.client("dynamodb").delete_item(
        TableName=f"{fleet.prefix}-state", Key=pacing.KEY
    )  # the hold is over
    assert fleet.deliver(payload)["result"] == "launched"


SETTINGS_ENV = {
    "NAME_PREFIX": "fleet",
    "GITHUB_OWNER": "o",
    "GITHUB_REPO": "r",
    "SUBNET_IDS": "s",
    "SECURITY_GROUP_IDS": "g",
    "JIT_BUCKET": "fleet-jit",
}


def test_the_pace_is_a_setting_above_zero() -> None:
    assert Settings.from_env(SETTINGS_ENV).github_jit_configs_per_minute == 150
    env = {**SETTINGS_ENV, "GITHUB_JIT_CONFIGS_PER_MINUTE": "2.5"}
    assert Settings.from_env(env).github_jit_configs_per_minute == 2.5
    for bad in ("0", "-3", "nan", "inf", "many"):
        with pytest.raises(SettingsError, match="GITHUB_JIT_CONFIGS_PER_MINUTE"):
            Settings.from_env({**SETTINGS_ENV, "GITHUB_JIT_CONFIGS_PER_MINUTE": bad})
