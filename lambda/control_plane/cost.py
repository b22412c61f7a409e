"""What a runner task cost, from its ECS STOPPED event and the module's price table (pure).

Fargate bills from the start of the image pull to the task's stop, per second, with a
one-minute minimum, for the task's vCPU and memory, and for ephemeral storage above the
20 GiB every task gets. Fargate Spot is billed at a discount whose size moves with the market:
the `spot_discount` of the price table is an estimate. A task that never started pulling is
not billed. https://aws.amazon.com/fargate/pricing/

A task on an EC2 capacity provider (a Docker class) gets its billed seconds but no cost:
EC2 bills the instance, whatever runs on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from control_plane.classes import ARCHITECTURES, FARGATE_PROVIDERS
from control_plane.times import epoch

INCLUDED_STORAGE_GIB = 20
MINIMUM_BILLED_SECONDS = 60
SPOT_PROVIDERS = ("FARGATE_SPOT",)


class PricesError(ValueError):
    """The price table is not what the module writes (a deployment problem)."""


@dataclass(frozen=True)
class Prices:
    """USD per hour; defaults: us-east-1, Linux, on-demand (the module input `fargate_prices`)."""

    x86_64_vcpu_hour: float = 0.04048
    x86_64_gb_hour: float = 0.004445
    arm64_vcpu_hour: float = 0.03238
    arm64_gb_hour: float = 0.00356
    ephemeral_storage_gb_hour: float = 0.000111
    spot_discount: float = 0.7  # the fraction Spot takes off on-demand (an estimate)

    @classmethod
    def from_json(cls, text: str) -> Prices:
        """The table from FARGATE_PRICES ("" keeps the defaults); raises PricesError."""
        if not text.strip():
            return cls()
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise PricesError(f"FARGATE_PRICES is not JSON: {exc}") from exc
        known = {f.name for f in fields(cls)}
        if not isinstance(document, dict) or set(document) - known:
            keys = ", ".join(sorted(known))
            raise PricesError(f"FARGATE_PRICES must be an object with keys {keys}")
        values = {k: v for k, v in document.items() if v is not None}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PricesError(f"FARGATE_PRICES {name} must be a number >= 0")
        if values.get("spot_discount", 0) >= 1:
            raise PricesError("FARGATE_PRICES spot_discount must be below 1")
        return cls(**{k: float(v) for k, v in values.items()})


@dataclass(frozen=True)
class Bill:
    """One task's billed use and its estimated cost."""

    billed_seconds: int
    vcpu: float
    memory_gb: float
    storage_gib: int
    architecture: str
    capacity_provider: str
    cost_usd: float | None  # None: not a Fargate task (EC2 bills its instance)

    def fields(self) -> dict[str, Any]:
        """As the job's record keeps them. The capacity provider is the launch's to record (a
        late event of an earlier task must not change it)."""
        return {
            "billed_seconds": self.billed_seconds,
            "cost_usd": self.cost_usd,
            "vcpu": self.vcpu,
            "memory_gb": self.memory_gb,
            "architecture": self.architecture,
        }


def billed_seconds(detail: Mapping[str, Any]) -> int:
    """Fargate's billed time of a stopped task: pull start to stop, rounded up, minimum 60 s;
    0 for a task that never began to pull its image."""
    start = epoch(detail.get("pullStartedAt"))
    end = epoch(detail.get("stoppedAt") or detail.get("executionStoppedAt"))
    if start is None or end is None:
        return 0
    return max(MINIMUM_BILLED_SECONDS, math.ceil(max(0.0, end - start)))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def bill(detail: Mapping[str, Any], record: Mapping[str, Any], prices: Prices) -> Bill:
    """The stopped task's bill. Size from the event (the task's own cpu/memory), else the
    record's class; architecture and disk from the record's class; no cost off Fargate."""
    cpu = _number(detail.get("cpu")) or _number(record.get("cpu")) or 0.0
    memory = _number(detail.get("memory")) or _number(record.get("memory")) or 0.0
    disk = (detail.get("ephemeralStorage") or {}).get("sizeInGiB")
    storage_gib = int(_number(disk) or _number(record.get("ephemeral_storage_gib")) or 20)
    architecture = str(record.get("architecture") or "x86_64")
    if architecture not in ARCHITECTURES:
        architecture = "x86_64"
    provider = str(
        detail.get("capacityProviderName")
        or record.get("capacity_provider")
        or ("" if record.get("docker") else "FARGATE")  # records from before providers
    )
    seconds = billed_seconds(detail)
    vcpu, memory_gb = cpu / 1024, memory / 1024
    compute = vcpu * getattr(prices, f"{architecture}_vcpu_hour") + memory_gb * getattr(
        prices, f"{architecture}_gb_hour"
    )
    if provider in SPOT_PROVIDERS:  # Spot discounts vCPU and memory, not storage
        compute *= 1 - prices.spot_discount
    storage = max(0, storage_gib - INCLUDED_STORAGE_GIB) * prices.ephemeral_storage_gb_hour
    hourly = compute + storage
    return Bill(
        billed_seconds=seconds,
        vcpu=vcpu,
        memory_gb=memory_gb,
        storage_gib=storage_gib,
        architecture=architecture,
        capacity_provider=provider,
        cost_usd=hourly * seconds / 3600 if provider in FARGATE_PROVIDERS else None,
    )
