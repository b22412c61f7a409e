"""CloudWatch metrics as Embedded Metric Format (EMF) lines on stdout.

CloudWatch Logs turns each line into metrics: no PutMetricData call, no IAM permission and no
latency on the launch path. One line per measurement, published under two dimension sets,
`[Fleet]` (the fleet's name prefix) and, when the measurement belongs to a runner class,
`[Fleet, Class]`: fleet-wide percentiles stay exact, and no dimension has more values than
the fleet has classes.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Callers emit a measurement once per fact, after the state table's conditional write that
recorded it: a redelivered event, which finds the fact recorded, emits nothing again.
"""

from __future__ import annotations

import time
from typing import Any

from control_plane import log

COUNT = "Count"
SECONDS = "Seconds"
NONE = "None"
FLEET = "Fleet"
CLASS = "Class"
DEFAULT_NAMESPACE = "AWSRunnerFleet"
# The metrics this fleet publishes, with their units (docs/observability.md).
UNITS = {
    "JobsQueued": COUNT,
    "RunnersLaunched": COUNT,
    "JobsRejected": COUNT,
    "LaunchFailures": COUNT,
    "Relaunches": COUNT,
    "SpareRunnersStopped": COUNT,
    "DeadLettersReplayed": COUNT,
    "JobsStranded": COUNT,
    "TasksWaitingForCapacity": COUNT,
    "QueueWaitSeconds": SECONDS,
    "StartSeconds": SECONDS,
    "JobSeconds": SECONDS,
    "JobCostUSD": NONE,
    "GitHubRateLimitRemaining": COUNT,
}


def document(
    namespace: str,
    fleet: str,
    name: str,
    value: float,
    class_name: str | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """The EMF document of one measurement (pure)."""
    dimensions = [[FLEET], [FLEET, CLASS]] if class_name else [[FLEET]]
    entry: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": UNITS[name]}],
                }
            ],
        },
        FLEET: fleet,
        name: value,
    }
    if class_name:
        entry[CLASS] = class_name
    return entry


def emit(settings: Any, name: str, value: float, class_name: str | None = None) -> None:
    """Writes one measurement for the fleet of `settings`: a log line like the others (level,
    msg, the fields bound to the event: job id, runner name) that is also an EMF document. It
    is written whatever the log level, and never fails the work it measures."""
    try:
        entry = document(settings.metrics_namespace, settings.name_prefix, name, value, class_name)
        log.always(f"metric {name}", **entry)
    except Exception as exc:
        log.warning("metric not written", metric=name, error=str(exc))
