# Classes for real workloads: an arm64 Fargate class (about 20% cheaper than x86), a Fargate
# class with 100 GiB of disk, and a Docker class on EC2 for jobs that build images or start
# `services:` containers. Docker tasks run in awsvpc mode on EC2 and get no public IP, so the
# fleet takes private subnets with a NAT route (assign_public_ip stays false).

provider "aws" {
  region = var.aws_region
}

module "runner_fleet" {
  source = "../.."

  name_prefix = "docker-ci"

  github_repo    = var.github_repo
  github_pat     = var.github_pat
  webhook_secret = var.webhook_secret

  subnet_ids       = var.private_subnet_ids
  security_groups  = var.security_group_ids
  assign_public_ip = false

  runner_class_sizes = {
    small = { cpu = 1024, memory = 2048 }
    # `runs-on: [self-hosted, class:arm]`: a Graviton task, on Fargate Spot first
    arm = { cpu = 2048, memory = 4096, architecture = "arm64", capacity_strategy = "spotPreferred" }
    # `class:bigdisk`: 100 GiB of task storage instead of Fargate's 20 GiB
    bigdisk = { cpu = 2048, memory = 8192, ephemeral_storage_gib = 100 }
    # `class:docker`: a privileged runner with its own Docker daemon, one task per instance
    docker = { cpu = 2048, memory = 7168, docker = true }
  }
  default_class = "small"

  docker_instance_types  = { x86_64 = ["m7i.xlarge", "m6i.xlarge"] }
  docker_min_instances   = 0 # a cold Docker job waits minutes for an instance; 1 keeps one warm
  docker_max_instances   = 5
  docker_volume_size_gib = 100

  tags = {
    Project = "docker-ci"
  }
}
