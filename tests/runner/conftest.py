"""Fixtures of the runner container's tests (helpers live in runner_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runner.runner_harness import EntrypointHarness


@pytest.fixture
def harness(tmp_path: Path) -> EntrypointHarness:
    """A working directory with a fake run.sh, and argv-logging shims for curl, jq, openssl."""
    return EntrypointHarness(tmp_path)
