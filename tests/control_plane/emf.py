"""Reading the Lambda's EMF lines back, and checking them against the EMF specification."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "emf" / "schema.json").read_text(encoding="utf-8")
)
MAX_VALUES = 100  # an array value holds at most 100 numbers


@dataclass(frozen=True)
class Measurement:
    namespace: str
    name: str
    unit: str
    value: float
    dimensions: dict[str, str]  # every dimension the line names, with its value
    dimension_sets: tuple[tuple[str, ...], ...]


def validate(document: dict[str, Any]) -> None:
    """Raises AssertionError unless `document` is a valid EMF document: the schema, then the
    rules a schema cannot state (every referenced dimension is a string member of the root,
    every metric a number or an array of at most 100 numbers)."""
    try:
        jsonschema.validate(document, SCHEMA)
    except jsonschema.ValidationError as exc:
        raise AssertionError(f"not EMF: {exc.message}") from exc
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension in {d for dimension_set in directive["Dimensions"] for d in dimension_set}:
            assert isinstance(document.get(dimension), str), f"dimension {dimension} missing"
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= MAX_VALUES, metric
            assert all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            ), f"metric {metric['Name']} = {value!r}"


def measurements(out: str) -> list[Measurement]:
    """The metrics of every EMF line of `out` (the Lambda's stdout), each line validated."""
    found = []
    for line in out.splitlines():
        document = json.loads(line)
        if "_aws" not in document:
            continue
        validate(document)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            sets = tuple(tuple(s) for s in directive["Dimensions"])
            names = {d for dimension_set in sets for d in dimension_set}
            for metric in directive["Metrics"]:
                found.append(
                    Measurement(
                        namespace=directive["Namespace"],
                        name=metric["Name"],
                        unit=metric.get("Unit", "None"),
                        value=document[metric["Name"]],
                        dimensions={d: document[d] for d in names},
                        dimension_sets=sets,
                    )
                )
    return found


def named(out: str, name: str) -> list[Measurement]:
    return [m for m in measurements(out) if m.name == name]
