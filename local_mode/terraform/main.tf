# Local mode: the fleet's root module applied to the local AWS emulator.
# The network is what a user would bring (their VPC, subnets, a security group for tasks);
# the emulator needs it because ECS RunTask with awsvpc wants real subnet and group ids.

resource "aws_vpc" "local" {
  cidr_block = "10.42.0.0/16"
  # Fargate tasks' ENIs get private DNS names (and moto's RunTask needs them).
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = "${var.name_prefix}-local"
  }
}

resource "aws_subnet" "runners" {
  vpc_id            = aws_vpc.local.id
  cidr_block        = "10.42.1.0/24"
  availability_zone = "${var.aws_region}a"

  tags = {
    Name = "${var.name_prefix}-local-runners"
  }
}

resource "aws_security_group" "runners" {
  name        = "${var.name_prefix}-local-runners"
  description = "Runner tasks: egress only (GitHub, ECR, SSM)"
  vpc_id      = aws_vpc.local.id

  egress {
    description = "All egress"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name = "${var.name_prefix}-local-runners"
  }
}

module "fleet" {
  source = "../.."

  aws_region  = var.aws_region
  name_prefix = var.name_prefix

  github_pat     = var.github_pat
  github_repo    = var.github_repo
  github_api_url = var.github_api_url
  webhook_secret = var.webhook_secret

  subnet_ids      = [aws_subnet.runners.id]
  security_groups = [aws_security_group.runners.id]

  runner_class_sizes = var.runner_class_sizes
  lambda_zip_path    = var.lambda_zip_path

  # The docker class's Auto Scaling group keeps one instance, which local_mode/stack.py
  # registers with the cluster as its ECS agent would: a docker job starts at once.
  docker_min_instances = 1

  # Image builds on: image:<base> labels build runner/Dockerfile on <base> with CodeBuild, which
  # local_mode/codebuild.py plays. Jobs without an image: label keep the class task
  # definitions' pinned image, so they never wait for a build.
  image_build_project = "${var.name_prefix}-images"
  runner_image_tag    = "default"
}
