#!/usr/bin/env python3
"""Writes the Terraform reference of each module's README, as terraform-docs would.

The part of README.md between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` is
generated from the module's HCL: requirements (versions.tf), providers, submodules,
resources, inputs (variables.tf) and outputs (outputs.tf). Everything else in the README is
left as written. A module with a reference page (the root: docs/module-reference.md) gets
those tables there, between the same markers, and a summary in its README: each input with
its default, and the outputs' names. The HCL is read with bc-python-hcl2 (checkov's HCL
parser); types are copied from the source as written, since the parser does not keep their
spelling.

    python scripts/tf_docs.py            # rewrite the READMEs of the module and its submodules
    python scripts/tf_docs.py --check    # exit 1 when a README is not up to date
    python scripts/tf_docs.py DIR ...    # only these module folders
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


@dataclass(frozen=True)
class Layout:
    level: int = 2  # heading level of the generated sections
    requirements: bool = True  # False: the README states them by hand
    reference: str | None = None  # a page for the full tables; the README gets a summary


# The root README nests its sections under "## Terraform module" and states the requirements
# by hand: python3 is one, and HCL cannot say so. It is the project's entry point, so its
# full tables live in docs/.
MODULES = {
    ".": Layout(level=3, requirements=False, reference="docs/module-reference.md"),
    "modules/ecs-fleet": Layout(),
    "modules/control-plane": Layout(),
    "modules/image-build": Layout(),
}
REGISTRY = "https://registry.terraform.io/providers"
BUILTIN_DOCS = {
    "terraform_data": "https://developer.hashicorp.com/terraform/language/resources/terraform-data"
}


class DocsError(Exception):
    """A README cannot be generated; the message says which and why."""


@dataclass
class Variable:
    name: str
    description: str
    type: str
    default: Any
    required: bool
    sensitive: bool


@dataclass
class Module:
    directory: Path
    blocks: list[tuple[Path, dict[str, Any]]]  # each .tf file and what hcl2 made of it

    @classmethod
    def load(cls, directory: Path) -> Module:
        blocks = []
        for path in sorted(directory.glob("*.tf")):
            with path.open() as handle:
                blocks.append((path, hcl2.load(handle)))
        if not blocks:
            raise DocsError(f"{directory}: no .tf file")
        return cls(directory, blocks)

    def named(self, kind: str) -> list[tuple[Path, str, dict[str, Any]]]:
        """(file, name, body) of every `kind "name" {}` block (variable, output, module)."""
        found = []
        for path, parsed in self.blocks:
            for block in parsed.get(kind, []):
                found += [(path, name, body) for name, body in block.items()]
        return found

    def typed(self, kind: str) -> list[tuple[str, str]]:
        """(type, name) of every `kind "type" "name" {}` block (resource, data), sorted."""
        found = []
        for _, parsed in self.blocks:
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    found += [(type_, name) for name in named]
        return sorted(found)

    def variables(self) -> list[Variable]:
        found = []
        for path, name, body in self.named("variable"):
            found.append(
                Variable(
                    name=name,
                    description=unescape(single(body.get("description", ""))),
                    type=source_type(path, body),
                    default=single(body["default"]) if "default" in body else None,
                    required="default" not in body,
                    sensitive=single(body.get("sensitive", False)) is True,
                )
            )
        return found

    def outputs(self) -> list[tuple[str, str]]:
        return [
            (name, unescape(single(body.get("description", ""))))
            for _, name, body in self.named("output")
        ]

    def requirements(self) -> tuple[str | None, dict[str, dict[str, str]]]:
        version, providers = None, {}
        for _, parsed in self.blocks:
            for block in parsed.get("terraform", []):
                version = single(block.get("required_version", version))
                for required in block.get("required_providers", []):
                    providers.update({name: single(spec) for name, spec in required.items()})
        return version, providers


def single(value: Any) -> Any:
    """hcl2 wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def unescape(text: str) -> str:
    """hcl2 keeps a quoted string's escapes as written."""
    return re.sub(r"\\([\"\\])", r"\1", text).replace("\\n", "\n")


def source_type(path: Path, body: dict[str, Any]) -> str:
    """The variable's `type = ...` exactly as written (several lines for an object type)."""
    lines = path.read_text().splitlines()[body["__start_line__"] - 1 : body["__end_line__"]]
    for index, line in enumerate(lines):
        match = re.match(r"^  type\s*=\s*(.*)$", line)
        if not match:
            continue
        expression = [match.group(1)]
        rest = iter(lines[index + 1 :])
        while bracket_depth("\n".join(expression)) > 0:
            expression.append(next(rest).removeprefix("  "))
        return "\n".join(expression)
    return "any"


def bracket_depth(text: str) -> int:
    return sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")


################################################################################
# Markdown
################################################################################


def cell(text: str) -> str:
    """Text for a table cell: one line, `|` escaped, `<...>` kept visible outside code spans."""
    parts = text.replace("|", "\\|").split("`")
    for index in range(0, len(parts), 2):
        parts[index] = parts[index].replace("<", "&lt;")
    return "`".join(parts).replace("\n", "<br>")


def code(text: str) -> str:
    """A value in a table cell: inline code, or a <pre> block when it has several lines."""
    if "\n" not in text:
        return f"`{text}`"
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "<pre>" + escaped.replace("|", "&#124;").replace("\n", "<br>") + "</pre>"


def hcl_value(value: Any, indent: int | None = 2) -> str:
    """A default value as Terraform shows it (JSON for collections, as terraform-docs does)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (dict, list)) and value:
        return json.dumps(value, indent=indent)
    return json.dumps(value)


def resource_link(kind: str, type_: str) -> str:
    if type_ in BUILTIN_DOCS:
        return BUILTIN_DOCS[type_]
    provider, _, name = type_.partition("_")
    folder = "resources" if kind == "resource" else "data-sources"
    return f"{REGISTRY}/hashicorp/{provider}/latest/docs/{folder}/{name}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def section(level: int, title: str, body: list[str], empty: str) -> list[str]:
    return ["#" * level + " " + title, "", *(body or [empty]), ""]


def render(module: Module, layout: Layout) -> str:
    out: list[str] = []
    level = layout.level
    version, providers = module.requirements()
    if layout.requirements and version is not None:
        rows = [["terraform", f"`{version}`"]]
        rows += [[f"{name}", f"`{spec.get('version', 'any')}`"] for name, spec in providers.items()]
        out += section(level, "Requirements", table(["Name", "Version"], rows), "")

    calls = module.named("module")
    if calls:
        rows = []
        for _, name, body in calls:
            source = single(body["source"])
            child = (module.directory / source).resolve()
            creates = sorted({type_ for type_, _ in Module.load(child).typed("resource")})
            rows.append([f"`{name}`", f"`{source}`", ", ".join(f"`{type_}`" for type_ in creates)])
        out += section(level, "Modules", table(["Name", "Source", "Creates"], rows), "")

    rows = [
        [f"[{type_}.{name}]({resource_link(kind, type_)})", kind if kind == "resource" else "data"]
        for kind in ["resource", "data"]
        for type_, name in module.typed(kind)
    ]
    out += section(level, "Resources", table(["Name", "Type"], rows), "No resources.")

    rows = []
    for variable in module.variables():
        description = variable.description + (" (sensitive)" if variable.sensitive else "")
        rows.append(
            [
                f"`{variable.name}`",
                cell(description),
                code(variable.type),
                "n/a" if variable.required else code(hcl_value(variable.default)),
                "yes" if variable.required else "no",
            ]
        )
    header = ["Name", "Description", "Type", "Default", "Required"]
    out += section(level, "Inputs", table(header, rows), "No inputs.")

    rows = [[f"`{name}`", cell(description)] for name, description in module.outputs()]
    out += section(level, "Outputs", table(["Name", "Description"], rows), "No outputs.")
    return "\n".join(out).rstrip("\n")


def render_summary(module: Module, layout: Layout) -> str:
    """Each input with its default (one line), and the outputs' names."""
    rows = [
        [
            f"`{variable.name}`",
            "**required**" if variable.required else code(hcl_value(variable.default, None)),
        ]
        for variable in module.variables()
    ]
    out = section(layout.level, "Inputs", table(["Name", "Default"], rows), "No inputs.")
    names = ", ".join(f"`{name}`" for name, _ in module.outputs())
    out += section(layout.level, "Outputs", [names] if names else [], "No outputs.")
    return "\n".join(out).rstrip("\n")


def documents(directory: Path, layout: Layout) -> list[tuple[Path, str]]:
    """Each file that documents the module, with its generated part."""
    module = Module.load(directory)
    if layout.reference is None:
        return [(directory / "README.md", render(module, layout))]
    full = Layout(level=2, requirements=layout.requirements)
    return [
        (directory / "README.md", render_summary(module, layout)),
        (directory / layout.reference, render(module, full)),
    ]


def updated_readme(readme: Path, generated: str) -> str:
    text = readme.read_text() if readme.is_file() else ""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise DocsError(f"{readme}: needs one {BEGIN} line, then one {END} line")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{generated}\n{END}{tail}"


def relative_name(directory: Path) -> str | None:
    try:
        return directory.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a README is stale")
    parser.add_argument("directories", nargs="*", type=Path, help="module folders")
    args = parser.parse_args(argv)

    directories = args.directories or [REPO_ROOT / name for name in MODULES]
    stale = []
    try:
        for directory in directories:
            layout = MODULES.get(relative_name(directory) or "", Layout())
            for readme, generated in documents(directory, layout):
                text = updated_readme(readme, generated)
                if text == readme.read_text():
                    continue
                stale.append(readme)
                if not args.check:
                    readme.write_text(text)
                    print(f"updated {readme}")
    except DocsError as error:
        print(f"tf_docs: {error}", file=sys.stderr)
        return 2
    if args.check and stale:
        names = " ".join(str(path) for path in stale)
        print(f"out of date: {names}\nrun: python scripts/tf_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
