"""The READMEs document the module as it is: scripts/tf_docs.py's tables are up to date (like
terraform-docs' check mode), and the root README's usage block is the seed example that
test_examples_apply.py applies."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform.tfharness import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "tf_docs.py"


def tf_docs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_readmes_are_up_to_date() -> None:
    result = tf_docs("--check")
    assert result.returncode == 0, result.stderr  # run: python scripts/tf_docs.py


def test_check_mode_finds_an_undocumented_variable_and_a_run_documents_it(tmp_path: Path) -> None:
    module = tmp_path / "image-build"
    shutil.copytree(REPO_ROOT / "modules" / "image-build", module)
    with (module / "variables.tf").open("a") as variables:
        variables.write(
            '\nvariable "build_labels" {\n'
            '  description = "Labels of a build: `<name>` => value | note."\n'
            "  type = object({\n    name  = string\n    value = number\n  })\n"
            '  default = { name = "a", value = 1 }\n}\n'
        )
    before = (module / "README.md").read_text()

    stale = tf_docs("--check", str(module))
    assert stale.returncode == 1
    assert "out of date" in stale.stderr and str(module / "README.md") in stale.stderr
    assert (module / "README.md").read_text() == before  # check mode writes nothing

    assert tf_docs(str(module)).returncode == 0
    readme = (module / "README.md").read_text()
    assert readme.startswith(before.split("<!-- BEGIN_TF_DOCS -->")[0])  # hand-written part kept
    (row,) = [line for line in readme.splitlines() if line.startswith("| `build_labels` |")]
    assert row == (
        "| `build_labels` | Labels of a build: `<name>` => value \\| note. | "
        "<pre>object({<br>  name  = string<br>  value = number<br>})</pre> | "
        '<pre>{<br>  "name": "a",<br>  "value": 1<br>}</pre> | no |'
    )
    assert tf_docs("--check", str(module)).returncode == 0


def test_a_readme_without_markers_is_an_error(tmp_path: Path) -> None:
    module = tmp_path / "module"
    shutil.copytree(REPO_ROOT / "modules" / "image-build", module)
    (module / "README.md").write_text("# image-build\n")
    result = tf_docs(str(module))
    assert result.returncode == 2
    assert "needs one <!-- BEGIN_TF_DOCS --> line" in result.stderr
    assert (module / "README.md").read_text() == "# image-build\n"


def test_root_readme_states_the_requirements_of_versions_tf() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    versions = (REPO_ROOT / "versions.tf").read_text()
    (terraform,) = re.findall(r'required_version = "([^"]+)"', versions)
    (aws,) = re.findall(r'^\s+version\s+= "([^"]+)"', versions, re.M)
    requirements = readme.split("### Requirements")[1].split("<!-- BEGIN_TF_DOCS -->")[0]
    assert f"Terraform `{terraform}`" in requirements
    assert f"`hashicorp/aws` provider `{aws}`" in requirements
    assert "python3" in requirements and "lambda_zip_path" in requirements


def test_root_readme_usage_is_the_seed_example_as_applied() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```hcl\n(.*?)```", readme, re.S)
    (seed,) = [block for block in blocks if block.startswith('module "ecs-fleet" {')]
    assert seed in (REPO_ROOT / "examples" / "default" / "main.tf").read_text()
    assert 'image_build_project = "image_builder"' in seed


def test_root_readme_summarises_the_inputs_and_outputs_the_reference_page_details() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    reference = (REPO_ROOT / "docs" / "module-reference.md").read_text()
    assert "(docs/module-reference.md)" in readme
    variables = re.findall(r'^variable "([^"]+)"', (REPO_ROOT / "variables.tf").read_text(), re.M)
    outputs = re.findall(r'^output "([^"]+)"', (REPO_ROOT / "outputs.tf").read_text(), re.M)
    summary = readme.split("<!-- BEGIN_TF_DOCS -->")[1].split("<!-- END_TF_DOCS -->")[0]
    assert re.search(r"^\| `webhook_secret` \| \*\*required\*\* \|$", summary, re.M)
    assert re.search(r"^\| `lambda_timeout` \| `120` \|$", summary, re.M)
    assert "| Description |" not in summary  # descriptions live on the reference page
    inputs, outputs_table = reference.split("## Inputs")[1].split("## Outputs")
    for name in variables:
        assert re.search(rf"^\| `{name}` \| [^|]+ \|$", summary, re.M), name
        (row,) = [line for line in inputs.splitlines() if line.startswith(f"| `{name}` |")]
        assert len(row.split(" | ")) == 5, row  # name, description, type, default, required
    for name in outputs:
        assert f"`{name}`" in summary.split("### Outputs")[1]
        assert f"\n| `{name}` | " in outputs_table, name


def test_check_mode_finds_a_stale_reference_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "image-build"
    shutil.copytree(REPO_ROOT / "modules" / "image-build", module)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "reference.md").write_text(
        "# Reference\n\n<!-- BEGIN_TF_DOCS -->\n<!-- END_TF_DOCS -->\n"
    )
    spec = importlib.util.spec_from_file_location("tf_docs", SCRIPT)
    tf_docs_module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tf_docs", tf_docs_module)  # its dataclasses look it up
    spec.loader.exec_module(tf_docs_module)
    layout = tf_docs_module.Layout(level=3, reference="../docs/reference.md")
    (_, summary), (page, full) = tf_docs_module.documents(module, layout)
    assert page == module / "../docs/reference.md"
    assert "### Inputs\n\n| Name | Default |" in summary and "| Description |" not in summary
    assert "## Inputs\n\n| Name | Description | Type | Default | Required |" in full
    assert tf_docs_module.updated_readme(page, full) != page.read_text()  # stale: check fails
