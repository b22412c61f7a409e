"""The READMEs document the module as it is: scripts/tf_docs.py's tables are up to date (like
terraform-docs' check mode), and the root README's usage block is the seed example that
test_examples_apply.py applies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

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
