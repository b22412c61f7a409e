"""The cleanup benchmark runs (small), cleans everything it seeded, and leaves the caller's
environment as it found it (local_mode/bench.py calls it in-process)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from local_mode.bench_cleanup import cleanup_benchmark


@pytest.fixture
def shared_moto(moto_server) -> Iterator[str]:
    yield moto_server.url
    requests.post(  # the benchmark holds ECS tasks on the server it is given
        f"{moto_server.url}/moto-api/state-manager/unset-transition",
        json={"model_name": "ecs::task"},
        timeout=10,
    ).raise_for_status()


def test_the_benchmark_cleans_what_it_seeded(shared_moto: str) -> None:
    before = dict(os.environ)
    result = cleanup_benchmark(
        shared_moto, orphaned_tasks=3, stale_registrations=2, stuck_records=2
    )
    assert result["seeded_by_kind"] == {
        "orphaned_tasks": 3,
        "stale_registrations": 2,
        "stuck_records": 2,
        "leftover_configs": 2,
    }
    assert (result["seeded"], result["left_after_run_1"], result["left_after_run_2"]) == (9, 0, 0)
    assert result["runs"][0]["counts"] == {
        "tasks_stopped_orphan": 3,
        "records_reconciled": 2,
        "records_failed": 2,
        "registrations_deleted": 2,
        "jit_configs_deleted": 2,
    }
    assert result["runs"][1]["counts"] == {}
    assert dict(os.environ) == before
