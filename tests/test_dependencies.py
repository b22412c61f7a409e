"""The hashed lock (requirements/dev.lock) that `make setup` installs covers pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_with_hashes() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {canonical(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in wanted}
    lines = (REPO_ROOT / "requirements" / "dev.lock").read_text().splitlines()
    pinned = {}
    for number, line in enumerate(lines):
        found = PIN.match(line)
        if found:
            pinned[canonical(found[1])] = found[2]
            assert lines[number + 1].strip().startswith("--hash=sha256:"), line
    assert names <= set(pinned), sorted(names - set(pinned))
    assert "checkov" in pinned and "moto" in pinned
