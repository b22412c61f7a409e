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

  # A class runs the image variant of its architecture and Docker use: the tag suffix mirrors
  # the control plane's images/refs.py variant_suffix (docs/CONTRACTS.md "Runner image tags").
  variant_suffix = {
    for name, size in var.runner_class_sizes : name => "${size.docker ? "-docker" : ""}${size.architecture == "arm64" ? "-arm64" : ""}"
  }
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
  capacity_providers = concat(["FARGATE", "FARGATE_SPOT"], [for provider in aws_ecs_capacity_provider.docker : provider.name])

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
        # An image a rule matches is never expired by a later rule: this one shields the images
        # the class task definitions run (prefix match: the tag and its variants, `-arm64`,
        # `-docker`, `-docker-arm64`; tags are immutable).
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

  family = "${var.name_prefix}-${each.key}"
  # Fargate never runs privileged containers: docker classes run on this module's EC2 capacity.
  requires_compatibilities = [each.value.docker ? "EC2" : "FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = one(aws_iam_role.task[*].arn)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = upper(each.value.architecture)
  }

  dynamic "ephemeral_storage" {
    for_each = each.value.ephemeral_storage_gib == null ? [] : [each.value.ephemeral_storage_gib]

    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  # The Docker daemon's state (images, layers, containers) in a volume of this task alone,
  # removed when the task stops: the next job on the instance starts with none of it.
  dynamic "volume" {
    for_each = each.value.docker ? [1] : []

    content {
      name = "docker"

      docker_volume_configuration {
        scope  = "task"
        driver = "local"
      }
    }
  }

  container_definitions = jsonencode([
    merge(
      {
        name      = "runner"
        image     = "${local.runner_image}${local.variant_suffix[each.key]}"
        essential = true
        # The task's memory again at container level: Fargate accepts it, moto's RunTask needs it.
        memory = each.value.memory
        # No secret here: the JIT config arrives as a RunTask environmentFiles override (an S3
        # object the execution role reads), never in the task definition.
        environment = concat(
          [{ name = "AWS_REGION", value = local.region }],
          local.job_aws_credentials ? [{ name = "RUNNER_JOB_AWS_CREDENTIALS", value = "true" }] : [],
          # the entrypoint starts dockerd, and the runner once its socket answers
          each.value.docker ? [{ name = "RUNNER_DOCKER", value = "true" }] : [],
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
      },
      # Docker classes only: a list of zero or one object (a conditional's two objects would
      # need one type). Docker-in-Docker: dockerd needs a privileged container.
      [for docker in [each.value.docker] : {
        privileged  = true
        mountPoints = [{ sourceVolume = "docker", containerPath = "/var/lib/docker", readOnly = false }]
      } if docker]...
    )
  ])

  tags = merge(var.tags, { "runner-class" = each.key })

  lifecycle {
    precondition {
      condition     = lookup(local.docker_class_fits, each.key, true) # true: a Fargate class
      error_message = "Docker class ${each.key} (cpu ${each.value.cpu}, memory ${each.value.memory} MiB) does not fit the smallest of docker_instance_types.${each.value.architecture} (${join(", ", lookup(local.docker_types, each.value.architecture, []))}): at most ${try(local.docker_smallest[each.value.architecture].cpu, 0)} cpu units and ${try(local.docker_smallest[each.value.architecture].memory, 0)} MiB. A class may take all of an instance's vCPUs (1024 units each) but at most 90% of its memory: ECS registers less memory than the instance has (the kernel, Docker and the ECS agent keep the rest)."
    }
  }
}

################################################################################
# EC2 capacity of the docker classes: per architecture a docker class uses, a launch template,
# an Auto Scaling group and an ECS capacity provider `<prefix>-docker-<arch>` (managed scaling)
################################################################################

locals {
  docker_architectures = toset([for size in values(var.runner_class_sizes) : size.architecture if size.docker])
  docker_types = {
    for arch in local.docker_architectures : arch => lookup(var.docker_instance_types, arch, [])
  }

  # The smallest instance type of each architecture, for the fit check of its classes (the
  # check in the task definitions' precondition): what ECS can place on every type the group
  # may launch. CPU: every vCPU (ECS registers 1024 units each). Memory: 90%, because ECS
  # registers less than the instance has (the kernel, Docker and the agent keep the rest).
  docker_smallest = {
    for arch, types in local.docker_types : arch => {
      cpu    = min([for type in types : data.aws_ec2_instance_type.docker[type].default_vcpus * 1024]...)
      memory = min([for type in types : floor(data.aws_ec2_instance_type.docker[type].memory_size * 0.9)]...)
    } if length(types) > 0
  }
  # (true without instance types of the architecture: the group's precondition says so)
  docker_class_fits = {
    for name, size in var.runner_class_sizes : name => try(
      size.cpu <= local.docker_smallest[size.architecture].cpu && size.memory <= local.docker_smallest[size.architecture].memory,
      true,
    ) if size.docker
  }

  # The recommended ECS-optimized Amazon Linux 2023 AMI, unless docker_ami_id names one.
  docker_ami_parameters = {
    x86_64 = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    arm64  = "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
  }
  docker_ami_given = coalesce(var.docker_ami_id, {})
  docker_ami = {
    for arch in local.docker_architectures : arch => lookup(local.docker_ami_given, arch, null) != null ? local.docker_ami_given[arch] : data.aws_ssm_parameter.docker_ami[arch].insecure_value
  }

  docker_name = { for arch in local.docker_architectures : arch => "${var.name_prefix}-docker-${arch}" }
  cluster_arn = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${local.account_id}:cluster/${var.name_prefix}"
}

data "aws_ec2_instance_type" "docker" {
  for_each = toset(flatten(values(local.docker_types)))

  instance_type = each.key

  lifecycle {
    postcondition {
      condition     = anytrue([for arch, types in local.docker_types : contains(self.supported_architectures, arch) if contains(types, each.key)])
      error_message = "docker_instance_types lists ${each.key} under an architecture it does not support (it supports ${join(", ", self.supported_architectures)})."
    }
  }
}

data "aws_ssm_parameter" "docker_ami" {
  for_each = toset([for arch in local.docker_architectures : arch if lookup(local.docker_ami_given, arch, null) == null])

  name = local.docker_ami_parameters[each.key]
}

# Instance role: only what the ECS agent does for this cluster. No ECR or logs: the task
# execution role pulls runner images and writes their logs. Tasks cannot reach it
# (ECS_AWSVPC_BLOCK_IMDS), so no job gets these powers.
data "aws_iam_policy_document" "docker_instance_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "docker_instance" {
  count = length(local.docker_architectures) > 0 ? 1 : 0

  name                 = "${var.name_prefix}-docker-instance-${local.region}"
  description          = "ECS agent of the Docker class instances of ${var.name_prefix}: registers them and reports their tasks in cluster ${var.name_prefix}"
  assume_role_policy   = data.aws_iam_policy_document.docker_instance_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "docker_instance" {
  # checkov:skip=CKV_AWS_111: ecs:DiscoverPollEndpoint has no resource-level permissions
  # checkov:skip=CKV_AWS_356: ecs:DiscoverPollEndpoint has no resource-level permissions
  statement {
    sid = "AgentRegistersAndReports"
    # Resource type cluster (the Service Authorization Reference).
    actions = [
      "ecs:DeregisterContainerInstance",
      "ecs:RegisterContainerInstance",
      "ecs:SubmitAttachmentStateChanges",
      "ecs:SubmitContainerStateChange",
      "ecs:SubmitTaskStateChange",
    ]
    resources = [local.cluster_arn]
  }

  statement {
    sid = "AgentPolls"
    # Resource type container-instance, of this cluster only. Not UpdateContainerInstancesState
    # (the agent's Spot draining, which standalone tasks ignore): a job that reaches the
    # instance role could set its drained instance ACTIVE again and catch the next job.
    actions   = ["ecs:Poll", "ecs:StartTelemetrySession"]
    resources = ["arn:${data.aws_partition.current.partition}:ecs:${local.region}:${local.account_id}:container-instance/${var.name_prefix}/*"]
  }

  statement {
    sid = "AgentFindsItsEndpoint"
    # ecs:DiscoverPollEndpoint has no resource-level permissions.
    actions   = ["ecs:DiscoverPollEndpoint"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "docker_instance" {
  count = length(local.docker_architectures) > 0 ? 1 : 0

  name   = "ecs-agent"
  role   = aws_iam_role.docker_instance[0].id
  policy = data.aws_iam_policy_document.docker_instance.json
}

resource "aws_iam_instance_profile" "docker_instance" {
  count = length(local.docker_architectures) > 0 ? 1 : 0

  name = aws_iam_role.docker_instance[0].name
  path = var.iam_role_path
  role = aws_iam_role.docker_instance[0].name

  tags = var.tags
}

resource "aws_launch_template" "docker" {
  for_each = local.docker_architectures

  name                   = local.docker_name[each.key]
  description            = "ECS container instances (${each.key}) of the docker classes of ${var.name_prefix}"
  image_id               = local.docker_ami[each.key]
  vpc_security_group_ids = var.security_groups
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.docker_instance[0].arn
  }

  # IMDSv2 only, one hop: a container on a bridge network cannot reach it either.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda" # the root volume of Amazon Linux 2023

    ebs {
      volume_size           = var.docker_volume_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # The ECS agent's settings: its cluster; awsvpc tasks get a blackhole route to the instance
  # metadata (a privileged job can delete it: the instance role holds only the agent's
  # actions, docs/security.md); remove a stopped task's containers after a minute (the
  # default is 3 hours); reuse a pulled image (tags are immutable in the fleet's repository).
  user_data = base64encode(<<-EOT
    #!/bin/bash
    cat >> /etc/ecs/ecs.config <<'CONFIG'
    ECS_CLUSTER=${aws_ecs_cluster.this.name}
    ECS_AWSVPC_BLOCK_IMDS=true
    ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1m
    ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
    CONFIG
  EOT
  )

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = local.docker_name[each.key] })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = local.docker_name[each.key] })
  }

  tags = var.tags
}

resource "aws_autoscaling_group" "docker" {
  for_each = local.docker_architectures

  name                = local.docker_name[each.key]
  min_size            = var.docker_min_instances
  max_size            = var.docker_max_instances
  vpc_zone_identifier = var.subnet_ids
  # ECS managed termination protection: the capacity provider protects an instance while it
  # runs a task and removes the protection once it is idle; scale-in drains it first.
  protect_from_scale_in = true
  # Destroy terminates the instances without waiting for each (protected) one to drain.
  force_delete = true

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = var.docker_spot ? 0 : 100
      on_demand_allocation_strategy            = "prioritized"
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.docker[each.key].id
        version            = aws_launch_template.docker[each.key].latest_version
      }

      dynamic "override" {
        for_each = local.docker_types[each.key]

        content {
          instance_type = override.value
        }
      }
    }
  }

  # ECS managed scaling needs this tag on the group.
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  dynamic "tag" {
    for_each = var.tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # ECS managed scaling sets the desired capacity.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = length(local.docker_types[each.key]) > 0
      error_message = "A docker class runs on ${each.key}, but docker_instance_types has no ${each.key} instance types."
    }
    precondition {
      condition     = length(var.subnet_ids) > 0 && length(var.security_groups) > 0
      error_message = "The Docker instances need subnet_ids and security_groups."
    }
    precondition {
      condition     = var.docker_min_instances <= var.docker_max_instances
      error_message = "docker_min_instances must not exceed docker_max_instances."
    }
  }
}

resource "aws_ecs_capacity_provider" "docker" {
  for_each = local.docker_architectures

  name = local.docker_name[each.key]

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.docker[each.key].arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status          = "ENABLED"
      target_capacity = 100
      # As many instances at once as the tasks waiting need.
      maximum_scaling_step_size = var.docker_max_instances
      minimum_scaling_step_size = 1
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !can(regex("^(aws|ecs|fargate)", var.name_prefix))
      error_message = "ECS refuses capacity provider names starting with aws, ecs or fargate: with docker classes, name_prefix (${var.name_prefix}) must not start so."
    }
  }
}
