# The runner fleet: an ECS cluster on Fargate, one task definition per runner class, the two
# task roles, the runner log group and the ECR repository of runner images. Tasks are started
# by the control plane (RunTask), one per job; nothing here runs on its own.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # The task role's name and ARN are known at plan, whether the role is created or not: the
  # control plane denies this identity everything on the JIT configs (defence in depth).
  task_role_name = "${var.name_prefix}-task-${local.region}"
  task_role_arn  = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:role${var.iam_role_path}${local.task_role_name}"

  runner_log_group = "/aws/ecs/${var.name_prefix}"
  runner_image     = "${aws_ecr_repository.runner.repository_url}:${var.runner_image_tag}"
}

################################################################################
# Cluster
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  # ECS Exec sessions are logged to their own group, never mixed with the runners' output.
  dynamic "configuration" {
    for_each = var.enable_execute_command ? [1] : []

    content {
      execute_command_configuration {
        logging = "OVERRIDE"

        log_configuration {
          cloud_watch_log_group_name = aws_cloudwatch_log_group.exec[0].name
        }
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "exec" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; a customer key needs a key policy for the logs service
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days, default 30 days)
  count = var.enable_execute_command ? 1 : 0

  name              = "${local.runner_log_group}/exec"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  # The control plane passes its own strategy on every RunTask (capacity_strategy); this
  # default only applies to tasks started by hand.
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "runner" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; a customer key needs a key policy for the logs service
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days, default 30 days)
  name              = local.runner_log_group
  retention_in_days = var.log_retention_days

  tags = var.tags
}

################################################################################
# ECR repository of runner images
################################################################################

resource "aws_ecr_repository" "runner" {
  # checkov:skip=CKV_AWS_136: AES-256 server-side encryption; a customer KMS key adds cost and a key policy for no gain here
  name                 = "${var.name_prefix}-runner"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "runner" {
  repository = aws_ecr_repository.runner.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after a day"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 1
        }
        action = { type = "expire" }
      },
      {
        # An image a rule matches is never expired by a later rule: this one shields the image
        # the class task definitions run (prefix match; tags are immutable, so it is one image).
        rulePriority = 2
        description  = "Keep the runner image of the task definitions (${var.runner_image_tag})"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = [var.runner_image_tag]
          countType     = "imageCountMoreThan"
          countNumber   = 10000
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 3
        description  = "Keep the ${var.ecr_max_image_count} most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_max_image_count
        }
        action = { type = "expire" }
      },
    ]
  })
}

################################################################################
# Task roles
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Execution role: what ECS itself needs to start a runner (pull the image, ship logs).
resource "aws_iam_role" "execution" {
  name                 = "${var.name_prefix}-task-execution-${local.region}"
  description          = "ECS pulls runner images, reads JIT configs and writes runner logs for ${var.name_prefix}"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuth"
    # ecr:GetAuthorizationToken has no resource-level permissions: it only returns a registry login.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullRunnerImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.runner.arn]
  }

  statement {
    sid       = "RunnerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runner.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: the identity job steps can reach (the container credentials endpoint). It holds
# nothing of the fleet's: no JIT config, secret, parameter, state or ECS power. It exists only
# for ECS Exec's session channels and for the user's runner_job_policy_arns; without either,
# tasks run with no role at all.
locals {
  task_role_needed = var.enable_execute_command || length(var.runner_job_policy_arns) > 0
  # Job steps see the task role's credential variables only when the user attached policies
  # for them (runner/entrypoint.sh removes them otherwise).
  job_aws_credentials = length(var.runner_job_policy_arns) > 0
}

resource "aws_iam_role" "task" {
  count = local.task_role_needed ? 1 : 0

  name                 = local.task_role_name
  description          = "Runner containers of ${var.name_prefix}: ECS Exec channels and runner_job_policy_arns only"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "task" {
  # checkov:skip=CKV_AWS_111: ssmmessages channel actions have no resource-level permissions (ECS Exec)
  # checkov:skip=CKV_AWS_356: ssmmessages channel actions have no resource-level permissions (ECS Exec)
  count = var.enable_execute_command ? 1 : 0

  statement {
    sid = "EcsExec"
    # ECS Exec's session channels; ssmmessages has no resource-level permissions.
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid = "EcsExecSessionLogs"
    # The SSM agent in the task writes the session log with the task role. Job code could
    # append to this group too: its entries are the session's own account, not an audit trail
    # (CloudTrail records ecs:ExecuteCommand).
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.exec[0].arn}:*"]
  }

  statement {
    sid = "EcsExecFindsItsLogGroup"
    # logs:DescribeLogGroups has no resource-level permissions.
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "task" {
  count = var.enable_execute_command ? 1 : 0

  name   = "ecs-exec"
  role   = aws_iam_role.task[0].id
  policy = data.aws_iam_policy_document.task[0].json
}

resource "aws_iam_role_policy_attachment" "job" {
  # count, not for_each: the ARNs may be known only after apply (a policy created alongside).
  count = length(var.runner_job_policy_arns)

  role       = aws_iam_role.task[0].name
  policy_arn = var.runner_job_policy_arns[count.index]
}

################################################################################
# One task definition per runner class (docs/CONTRACTS.md "Runner task definitions")
################################################################################

resource "aws_ecs_task_definition" "runner" {
  # checkov:skip=CKV_AWS_336: jobs write to their workspace and tool caches on the root filesystem
  for_each = var.runner_class_sizes

  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = one(aws_iam_role.task[*].arn)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name      = "runner"
      image     = local.runner_image
      essential = true
      # The task's memory again at container level: Fargate accepts it, moto's RunTask needs it.
      memory = each.value.memory
      # No secret here: the JIT config arrives as a RunTask environmentFiles override (an S3
      # object the execution role reads), never in the task definition.
      environment = concat(
        [{ name = "AWS_REGION", value = local.region }],
        local.job_aws_credentials ? [{ name = "RUNNER_JOB_AWS_CREDENTIALS", value = "true" }] : [],
      )
      # The Fargate maximum: the two-minute Spot warning, time for the runner to cancel a job.
      stopTimeout = 120
      # tini as PID 1 forwards SIGTERM to the runner and reaps processes jobs leave behind.
      linuxParameters = { initProcessEnabled = true }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.runner.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "runner"
        }
      }
    }
  ])

  tags = merge(var.tags, { "runner-class" = each.key })
}
