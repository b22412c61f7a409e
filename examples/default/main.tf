# The seed example: the "Define Terraform module" block of the README, exactly as written,
# with what it refers to (module.vpc.public_subnets, aws_security_group.ecs_tasks_sg).
# Replace the token, repository and webhook secret before applying.

provider "aws" {
  region = var.aws_region
}

module "vpc" {
  source = "./vpc"

  name = "ecs-fleet"
  cidr = "10.0.0.0/16"
}

resource "aws_security_group" "ecs_tasks_sg" {
  # checkov:skip=CKV2_AWS_5: attached at run time: the control plane passes it to ecs:RunTask (awsvpcConfiguration)
  name        = "ecs-fleet-runner-tasks"
  description = "Runner tasks: HTTPS and HTTP out (GitHub, ECR, SSM, package mirrors), nothing in"
  vpc_id      = module.vpc.vpc_id

  egress {
    description = "HTTPS: GitHub, ECR, SSM, CloudWatch Logs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "HTTP: package mirrors used by jobs"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "ecs-fleet" {
  source = "./../.." # path to this module

  github_pat  = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
  github_repo = "your-github-org/your-repo"

  subnet_ids      = module.vpc.public_subnets
  security_groups = [aws_security_group.ecs_tasks_sg.id]
  webhook_secret  = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

  image_build_project = "image_builder"

  runner_class_sizes = {
    small = {
      cpu    = 512
      memory = 1024
    }
    medium = {
      cpu    = 1024
      memory = 2048
    }
    large = {
      cpu    = 2048
      memory = 4096
    }
  }
}
