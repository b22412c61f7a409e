# Image builds for `image:<base>` labels: a job with `runs-on: [self-hosted, image:node:20]`
# gets a runner image built from runner/Dockerfile on node:20 by the CodeBuild project, once,
# then reused. Spot capacity first, a larger default class, an organization-wide fleet.

provider "aws" {
  region = var.aws_region
}

module "runner_fleet" {
  source = "../.."

  name_prefix = "ci-runners"

  github_org     = var.github_org
  github_pat     = var.github_pat
  webhook_secret = var.webhook_secret

  subnet_ids      = var.subnet_ids
  security_groups = var.security_group_ids

  image_build_project = "ci-runners-images"
  default_base_image  = "public.ecr.aws/docker/library/ubuntu:24.04"

  runner_class_sizes = {
    small  = { cpu = 1024, memory = 2048 }
    medium = { cpu = 2048, memory = 8192 }
    large  = { cpu = 4096, memory = 16384 }
    xlarge = { cpu = 8192, memory = 32768 }
  }
  default_class     = "medium"
  capacity_strategy = "spotPreferred"

  tags = {
    Project = "ci-runners"
  }
}
