"""The latency benchmark (local_mode/bench_latency.py) computes what it reports."""

from __future__ import annotations

import os

from local_mode import bench_latency


def test_latency_is_runtask_minus_webhook_for_launched_jobs_only() -> None:
    received = {1: 100.0, 2: 100.5, 3: 101.0}
    issued = {1: 100.25, 2: 101.5, 9: 50.0}  # job 3 never launched; job 9 was not sent
    assert sorted(bench_latency.latencies(received, issued)) == [0.25, 1.0]
    figures = bench_latency.summary(received, issued)
    assert figures == {
        "jobs": 3,
        "launched": 2,
        "p50_seconds": 0.25,
        "p99_seconds": 1.0,
        "max_seconds": 1.0,
    }


def test_a_small_run_times_every_job_through_the_webhook_endpoint() -> None:
    before = dict(os.environ)
    result = bench_latency.latency(jobs=4, seed=3)
    assert dict(os.environ) == before
    for run in ("without_faults", "with_faults"):
        figures = result[run]
        assert (figures["jobs"], figures["launched"]) == (4, 4), figures
        assert 0 < figures["p50_seconds"] <= figures["p99_seconds"] <= figures["max_seconds"]
    assert result["target_p99_seconds"] == 1.0
    assert set(result["with_faults"]["faults_injected"]) == {
        "runtask_throttled",
        "spot_capacity",
        "github_502",
    }
