"""How results are shown: tables (ages, human units) for people, JSON (ISO 8601) for scripts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click
from control_plane.state import iso
from tabulate import tabulate

from ecsrunner.config import Config, ConfigError

EMPTY = "-"
_SPAN = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def emit(data: Any, render: Callable[[], str]) -> None:
    """Prints `data` as JSON, or `render()` as text, as --output says."""
    if Config.current().output == "json":
        click.echo(json.dumps(jsonable(data), indent=2))
    else:
        click.echo(render())


def jsonable(value: Any) -> Any:
    """DynamoDB numbers become int/float, datetimes ISO 8601 (UTC)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso(value.timestamp())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], right: Sequence[int] = ()) -> str:
    """A plain table; the columns numbered in `right` (counts) are aligned right."""
    return tabulate(
        [[EMPTY if cell is None or cell == "" else cell for cell in row] for row in rows],
        headers=list(headers),
        tablefmt="simple",
        disable_numparse=True,
        colalign=["right" if i in right else "left" for i in range(len(headers))],
    )


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`key  value` lines (one record's fields)."""
    return tabulate(
        [[key, EMPTY if value is None or value == "" else value] for key, value in pairs],
        tablefmt="plain",
        disable_numparse=True,
    )


# ---------------------------------------------------------------------- time


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time (as the state table stores them), or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def span(seconds: float | None) -> str:
    """A compact age: 42s, 17m, 5h, 3d."""
    if seconds is None:
        return EMPTY
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 120 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def age(text: str | None, now: float | None = None) -> str:
    moment = parse_time(text)
    return span(None if moment is None else (now or time.time()) - moment)


def when(text: str | None, now: float | None = None) -> str | None:
    """An ISO 8601 time with how long ago (or how far ahead) it is: `<time> (5m ago)`."""
    moment = parse_time(text)
    if moment is None:
        return text
    delta = (now or time.time()) - moment
    return f"{text} ({span(delta)} ago)" if delta >= 0 else f"{text} (in {span(-delta)})"


def iso_of_epoch(value: Any) -> str | None:
    """Epoch seconds (a DynamoDB number) as ISO 8601 UTC."""
    return None if value is None else iso(float(value))


def duration(seconds: float | None) -> str:
    """A job's duration: 45s, 3m 07s, 1h 02m."""
    if seconds is None:
        return EMPTY
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def since_time(text: str | None, now: float | None = None) -> str | None:
    """`--since`: a span back from now (30m, 12h, 7d, 2w) or an ISO 8601 date or time."""
    if not text:
        return None
    match = _SPAN.match(text.strip())
    if match:
        back = int(match.group(1)) * _SECONDS[match.group(2)]
        return iso((now or time.time()) - back)
    moment = parse_time(text.strip())
    if moment is None:
        raise ConfigError(
            f"--since {text!r}: give a span (30m, 12h, 7d, 2w) or an ISO 8601 date/time"
        )
    return iso(moment)


def spread(values: dict[str, float | None]) -> str:
    """Durations' p50 / p90 / max: `4s / 9s / 12s` (`-` when there are none)."""
    if values["max"] is None:
        return EMPTY
    return " / ".join(duration(values[name]) for name in ("p50", "p90", "max"))


def usd(amount: float | None) -> str:
    """An estimated cost in US dollars, to a hundredth of a cent: $0.0123."""
    return EMPTY if amount is None else f"${amount:.4f}"


# ---------------------------------------------------------------------- sizes


def vcpu(cpu_units: int) -> str:
    """ECS cpu units as vCPU: 256 → 0.25 vCPU, 1024 → 1 vCPU."""
    return f"{cpu_units / 1024:g} vCPU"


def memory(mib: int) -> str:
    """MiB as people read it: 512 MiB, 1 GiB, 1.5 GiB."""
    return f"{mib} MiB" if mib < 1024 else f"{mib / 1024:g} GiB"
