"""Every relative link of the Markdown docs resolves: the file exists, and an `#anchor` names
one of its headings (as GitHub spells heading anchors)."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def markdown_files() -> list[Path]:
    """The repository's Markdown, without hidden folders (.venv, .local, caches)."""
    return sorted(
        path
        for path in REPO_ROOT.rglob("*.md")
        if not any(part.startswith(".") for part in path.relative_to(REPO_ROOT).parts[:-1])
        and "node_modules" not in path.parts
    )


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lowercase, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor}")
    return broken


def test_every_relative_link_resolves() -> None:
    found = {
        str(path.relative_to(REPO_ROOT)): broken
        for path in markdown_files()
        if (broken := broken_links(path))
    }
    assert not found, found


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text(
        "# Other page\n\n## Pacing JIT registrations under GitHub's limit\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#pacing-jit-registrations-under-githubs-limit) [self](#top) "
        "[gone](missing.md) [bad anchor](other.md#nowhere)\n\n# Top\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere",
    ]
