# AWS Runner Fleet: ephemeral GitHub Actions runners as ECS Fargate tasks.
# This root module wires the fleet (modules/ecs-fleet), the optional image builds
# (modules/image-build) and the control plane (modules/control-plane), and builds the
# control plane's Lambda package. It configures no provider: the region is the caller's.

data "aws_region" "current" {
  lifecycle {
    postcondition {
      condition     = var.aws_region == null || self.id == var.aws_region
      error_message = "aws_region is set but differs from the AWS provider's region: configure the provider for that region (a module cannot choose its own), or leave aws_region unset."
    }
    # A rule across two variables: a precondition (variable validations see only their own
    # variable before Terraform 1.9), which fails `terraform plan` alike.
    precondition {
      condition     = !var.assign_public_ip || length(local.docker_classes) == 0
      error_message = "Docker classes (${join(", ", local.docker_classes)}) need assign_public_ip = false: their awsvpc tasks run on EC2 instances, where a task never gets a public IP. Give subnet_ids private subnets with a NAT route."
    }
  }
}

locals {
  docker_classes = sort([for name, size in var.runner_class_sizes : name if size.docker])
}

################################################################################
# Lambda package: built by scripts/build_lambda.py during apply, when the sources change or
# the zip is missing (a fresh checkout, a CI runner, Terraform Cloud)
################################################################################

locals {
  lambda_source_dir = "${path.module}/lambda/control_plane"
  lambda_build_inputs = concat(
    # The same files the build script packs: everything but bytecode caches.
    [
      for file in sort(fileset(local.lambda_source_dir, "**")) : "control_plane/${file}=${filesha256("${local.lambda_source_dir}/${file}")}"
      if !strcontains(file, "__pycache__") && !endswith(file, ".pyc")
    ],
    [
      "requirements.txt=${filesha256("${path.module}/lambda/requirements.txt")}",
      "build_lambda.py=${filesha256("${path.module}/scripts/build_lambda.py")}",
    ],
  )
  # Derived from the sources, not from the zip: stable plans, and plan works before any build.
  lambda_sources_digest = sha256(join("\n", local.lambda_build_inputs))

  build_lambda      = var.lambda_zip_path == null
  lambda_built_path = "${path.module}/.build/lambda-${substr(local.lambda_sources_digest, 0, 16)}.zip"
  lambda_zip_path   = local.build_lambda ? terraform_data.lambda_package[0].output : var.lambda_zip_path
  lambda_code_hash  = local.build_lambda ? base64sha256(join("\n", local.lambda_build_inputs)) : filebase64sha256(var.lambda_zip_path)
}

resource "terraform_data" "lambda_package" {
  count = local.build_lambda ? 1 : 0

  # A missing zip makes the trigger unknown until apply (timestamp() is), which replaces this
  # resource and so rebuilds the zip; at apply it resolves to the digest itself, so the next
  # plan is clean again.
  triggers_replace = fileexists(local.lambda_built_path) ? local.lambda_sources_digest : "${local.lambda_sources_digest}${substr(timestamp(), 0, 0)}"
  input            = local.lambda_built_path

  # Needs python3 with pip: the dependencies are downloaded as wheels for the Lambda
  # platform (manylinux, CPython 3.12) whatever this machine is, their hashes checked against
  # lambda/requirements.txt. Without python3 or network, pass a prebuilt lambda_zip_path.
  provisioner "local-exec" {
    command = "python3 \"$BUILD_SCRIPT\" --output \"$ZIP_PATH\""
    environment = {
      BUILD_SCRIPT = "${path.module}/scripts/build_lambda.py"
      ZIP_PATH     = local.lambda_built_path
    }
  }
}

################################################################################
# Fleet, image builds, control plane
################################################################################

module "ecs_fleet" {
  source = "./modules/ecs-fleet"

  name_prefix        = var.name_prefix
  runner_class_sizes = var.runner_class_sizes
  runner_image_tag   = coalesce(var.runner_image_tag, "default")
  container_insights = var.container_insights
  log_retention_days = var.log_retention_days
  ecr_force_delete   = var.ecr_force_delete

  enable_execute_command   = var.enable_execute_command
  runner_job_policy_arns   = var.runner_job_policy_arns
  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary

  docker_instance_types  = var.docker_instance_types
  docker_spot            = var.docker_spot
  docker_min_instances   = var.docker_min_instances
  docker_max_instances   = var.docker_max_instances
  docker_volume_size_gib = var.docker_volume_size_gib
  docker_ami_id          = var.docker_ami_id
  subnet_ids             = var.subnet_ids
  security_groups        = var.security_groups

  tags = var.tags
}

module "image_build" {
  source = "./modules/image-build"
  count  = var.image_build_project == null ? 0 : 1

  name_prefix        = var.name_prefix
  project_name       = var.image_build_project
  ecr_repository_arn = module.ecs_fleet.ecr_repository_arn
  ecr_repository_url = module.ecs_fleet.ecr_repository_url
  build_context_dir  = "${path.module}/runner"
  log_retention_days = var.log_retention_days

  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

locals {
  # The image jobs without an image: label run: pinned (runner_image_tag, or image builds off),
  # or "" when image builds are on and no tag is set: then the default image is built on
  # default_base_image like any image: label (docs/image-builds.md).
  pinned_runner_image = var.runner_image_tag == null && var.image_build_project != null ? "" : module.ecs_fleet.runner_image
}

module "control_plane" {
  source = "./modules/control-plane"

  name_prefix = var.name_prefix

  github_pat                 = var.github_pat
  github_app_id              = var.github_app_id
  github_app_private_key     = var.github_app_private_key
  github_app_installation_id = var.github_app_installation_id
  github_repo                = var.github_repo
  github_org                 = var.github_org
  github_api_url             = var.github_api_url
  webhook_secret             = var.webhook_secret
  kms_key_arn                = var.kms_key_arn
  runner_group_id            = var.runner_group_id
  runner_extra_labels        = var.runner_extra_labels
  # the fleet-wide pace of JIT runner registrations (GitHub's secondary rate limit)
  github_jit_configs_per_minute = var.github_jit_configs_per_minute

  webhook_secret_previous             = var.webhook_secret_previous
  webhook_secret_previous_grace_hours = var.webhook_secret_previous_grace_hours

  runner_class_sizes      = var.runner_class_sizes
  default_class           = var.default_class
  cluster_name            = module.ecs_fleet.cluster_name
  cluster_arn             = module.ecs_fleet.cluster_arn
  task_role_arn           = module.ecs_fleet.task_role_arn
  task_execution_role_arn = module.ecs_fleet.task_execution_role_arn

  task_execution_role_name = module.ecs_fleet.task_execution_role_name
  job_role_arn             = module.ecs_fleet.job_role_arn
  enable_execute_command   = var.enable_execute_command
  iam_role_path            = var.iam_role_path
  iam_permissions_boundary = var.iam_permissions_boundary
  ecr_repository_url       = module.ecs_fleet.ecr_repository_url
  ecr_repository_arn       = module.ecs_fleet.ecr_repository_arn
  runner_image             = local.pinned_runner_image
  runner_log_group_name    = module.ecs_fleet.runner_log_group_name
  subnet_ids               = var.subnet_ids
  security_groups          = var.security_groups
  assign_public_ip         = var.assign_public_ip
  capacity_strategy        = var.capacity_strategy
  runner_timeout_minutes   = var.runner_timeout_minutes
  runner_idle_minutes      = var.runner_idle_minutes
  max_relaunches           = var.max_relaunches
  default_base_image       = var.default_base_image
  allowed_base_images      = var.allowed_base_images
  image_max_age_days       = var.image_max_age_days
  # The variable, not the project's output: whether builds are on must be known at plan.
  image_build_project_name = var.image_build_project
  runner_image_fingerprint = one(module.image_build[*].runner_fingerprint)
  image_build_environments = try(module.image_build[0].build_environments, {})

  docker_capacity_providers    = module.ecs_fleet.docker_capacity_providers
  docker_distinct_instance     = var.docker_distinct_instance
  docker_capacity_wait_minutes = var.docker_capacity_wait_minutes

  event_bus_name              = var.event_bus_name
  cleanup_interval_minutes    = var.cleanup_interval_minutes
  lambda_zip_path             = local.lambda_zip_path
  lambda_source_code_hash     = local.lambda_code_hash
  lambda_timeout              = var.lambda_timeout
  lambda_memory_size          = var.lambda_memory_size
  lambda_reserved_concurrency = var.lambda_reserved_concurrency
  log_level                   = var.log_level
  log_retention_days          = var.log_retention_days
  api_access_logs_enabled     = var.api_access_logs_enabled
  api_throttling_rate_limit   = var.api_throttling_rate_limit
  api_throttling_burst_limit  = var.api_throttling_burst_limit

  metrics_namespace          = var.metrics_namespace
  fargate_prices             = var.fargate_prices
  dashboard_enabled          = var.dashboard_enabled
  alarms_enabled             = var.alarms_enabled
  alarm_sns_topic_arn        = var.alarm_sns_topic_arn
  alarm_queue_wait_seconds   = var.alarm_queue_wait_seconds
  alarm_stranded_job_seconds = var.alarm_stranded_job_seconds

  tags = var.tags
}
