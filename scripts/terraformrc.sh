#!/usr/bin/env bash
# Writes a Terraform CLI config that installs hashicorp/aws from the machine's filesystem
# mirror (no registry access here). TF_PLUGIN_MIRROR overrides the mirror path.
set -euo pipefail
out=${1:?usage: terraformrc.sh OUTPUT}
mirror=${TF_PLUGIN_MIRROR:-/opt/tf-plugins}
if ! command -v terraform >/dev/null; then
  echo "terraform is not on PATH: install Terraform >= 1.5 first" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
if [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
  # No mirror: Terraform installs providers from the registry, as it does by default.
  echo "no hashicorp/aws provider under $mirror (TF_PLUGIN_MIRROR): using the Terraform registry" >&2
  echo "# written by scripts/terraformrc.sh: no filesystem mirror at $mirror; registry installs" >"$out"
  exit 0
fi
cat >"$out" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
RC
