# The control plane: GitHub webhook → API Gateway (REST) → EventBridge → Lambda, plus the
# Lambda's state (DynamoDB), configuration and secrets (SSM), and the rules that feed it ECS
# task state changes, CodeBuild build state changes and a cleanup schedule.
# See docs/CONTRACTS.md for every name and shape used here.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  function_name  = "${var.name_prefix}-control-plane"
  event_bus_name = coalesce(var.event_bus_name, "${var.name_prefix}-events")
  event_source   = "aws-runner-fleet.github"
  ssm_prefix     = "/${var.name_prefix}"
  ssm_arn_prefix = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.ssm_prefix}"

  # Authentication and scope: exactly one of each (checked by the Lambda's preconditions).
  # Whether a secret is set is no secret: nonsensitive() keeps names and outputs that depend
  # on it usable (try: Terraform before 1.8 refuses nonsensitive() on a non-sensitive value).
  pat_given     = try(nonsensitive(var.github_pat != null), var.github_pat != null)
  app_key_given = try(nonsensitive(var.github_app_private_key != null), var.github_app_private_key != null)
  pat_auth      = local.pat_given
  app_auth      = var.github_app_id != null || local.app_key_given || var.github_app_installation_id != null
  app_complete  = var.github_app_id != null && local.app_key_given && var.github_app_installation_id != null
  org_scope     = var.github_org != null
  github_owner  = local.org_scope ? var.github_org : split("/", coalesce(var.github_repo, "/"))[0]
  github_repo   = local.org_scope ? "" : try(split("/", var.github_repo)[1], "")

  # the webhook secret being rotated out, accepted for a grace period (parameters.py)
  previous_secret_given = try(nonsensitive(var.webhook_secret_previous != null), var.webhook_secret_previous != null)

  # The smallest class (cpu, then memory) unless default_class names one.
  # "cccccc-mmmmmmm-<name>" sorts by size; the name starts at character 15.
  classes_by_size = sort([for name, size in var.runner_class_sizes : format("%06d-%07d-%s", size.cpu, size.memory, name)])
  default_class   = var.default_class != null ? var.default_class : try(substr(local.classes_by_size[0], 15, -1), "")

  # The class-sizes document (docs/CONTRACTS.md): capacity_provider and distinct_instance
  # on docker classes only (try: a class without them has an object of another type).
  docker_class_fields = {
    for name, size in var.runner_class_sizes : name => {
      capacity_provider = lookup(var.docker_capacity_providers, size.architecture, null)
      distinct_instance = var.docker_distinct_instance
    } if size.docker
  }
  class_documents = {
    for name, size in var.runner_class_sizes : name => merge(
      {
        cpu                   = size.cpu
        memory                = size.memory
        architecture          = size.architecture
        ephemeral_storage_gib = size.ephemeral_storage_gib
        docker                = size.docker
        capacity_strategy     = size.capacity_strategy
      },
      try(local.docker_class_fields[name], {}),
    )
  }
  docker_classes = [for name, size in var.runner_class_sizes : name if size.docker]

  parameter_names = {
    class_sizes    = "${local.ssm_prefix}/config/class-sizes"
    webhook_secret = "${local.ssm_prefix}/secrets/webhook-secret"
    github_pat     = "${local.ssm_prefix}/secrets/github-pat"
    github_app_key = "${local.ssm_prefix}/secrets/github-app-private-key"

    webhook_secret_previous = "${local.ssm_prefix}/secrets/webhook-secret-previous"
  }

  image_builds      = var.image_build_project_name != null
  codebuild_arn     = local.image_builds ? "arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${var.image_build_project_name}" : null
  lambda_log_group  = "/aws/lambda/${local.function_name}"
  task_family_arns  = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${var.name_prefix}-*"
  cluster_task_arns = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${var.cluster_name}/*"
}

################################################################################
# State table (docs/CONTRACTS.md "State table")
################################################################################

resource "aws_dynamodb_table" "state" {
  # checkov:skip=CKV_AWS_119: encrypted with the AWS owned/managed DynamoDB key; the table holds runner state, no secret
  name         = "${var.name_prefix}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "kind"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "S"
  }

  global_secondary_index {
    name            = "by-kind-created"
    hash_key        = "kind"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

################################################################################
# Configuration and secrets (SSM)
################################################################################

resource "aws_ssm_parameter" "class_sizes" {
  # checkov:skip=CKV2_AWS_34: configuration, not a secret: the CLI and the Lambda read it in clear
  name        = local.parameter_names.class_sizes
  description = "Runner classes of ${var.name_prefix} (docs/CONTRACTS.md)"
  type        = "String"
  value = jsonencode({
    default_class = local.default_class
    classes       = local.class_documents
  })

  tags = var.tags

  lifecycle {
    precondition {
      condition     = contains(keys(var.runner_class_sizes), local.default_class)
      error_message = "default_class must be one of the keys of runner_class_sizes."
    }
    precondition {
      condition     = alltrue([for fields in values(local.docker_class_fields) : fields.capacity_provider != null])
      error_message = "Docker classes without a capacity provider of their architecture in docker_capacity_providers: ${join(", ", [for name, fields in local.docker_class_fields : name if fields.capacity_provider == null])}."
    }
  }
}

resource "aws_ssm_parameter" "webhook_secret" {
  name        = local.parameter_names.webhook_secret
  description = "GitHub webhook secret of ${var.name_prefix}"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.webhook_secret

  tags = var.tags
}

resource "aws_ssm_parameter" "webhook_secret_previous" {
  count = local.previous_secret_given ? 1 : 0

  name        = local.parameter_names.webhook_secret_previous
  description = "Previous GitHub webhook secret of ${var.name_prefix} (accepted during a rotation)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.webhook_secret_previous

  tags = var.tags
}

resource "aws_ssm_parameter" "github_pat" {
  count = local.pat_auth ? 1 : 0

  name        = local.parameter_names.github_pat
  description = "GitHub token of ${var.name_prefix} (runner registration)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.github_pat

  tags = var.tags
}

resource "aws_ssm_parameter" "github_app_key" {
  # app_complete, not app_auth: a partial App config then fails with the Lambda's precondition
  # alone, not with provider errors about a parameter without a value first.
  count = local.app_complete ? 1 : 0

  name        = local.parameter_names.github_app_key
  description = "GitHub App private key of ${var.name_prefix}"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.github_app_private_key

  tags = var.tags
}

################################################################################
# Dead-letter queue of the EventBridge targets and of the Lambda's async invocations
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name_prefix}-events-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time to look and replay

  tags = var.tags
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "EventBridgeRulesOfThisFleet"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in local.rules : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

################################################################################
# Lambda
################################################################################

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name                 = "${local.function_name}-${local.region}" # role names are account-wide
  description          = "Control-plane Lambda of ${var.name_prefix}"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  statement {
    sid = "StateTable"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.state.arn, "${aws_dynamodb_table.state.arn}/index/*"]
  }

  statement {
    sid = "ReadOwnParameters"
    # The class sizes and the secrets; the control plane writes no parameter.
    actions   = ["ssm:GetParameter"]
    resources = ["${local.ssm_arn_prefix}/config/*", "${local.ssm_arn_prefix}/secrets/*"]
  }

  statement {
    sid = "WriteJitConfigs"
    # One object per runner; Put under its random key, deleted once the task runs.
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.jit.arn}/${local.jit_prefix}*"]
  }

  statement {
    sid = "ListJitConfigs"
    # A resumed launch looks for its own object, and the cleanup for leftovers, by prefix.
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.jit.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.jit_prefix}*"]
    }
  }

  statement {
    sid = "EncryptJitConfigs"
    # SSE-KMS PutObject asks KMS for a data key through S3.
    actions   = ["kms:GenerateDataKey"]
    resources = [local.jit_kms_key]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_via_service]
    }
  }

  statement {
    sid = "Tracing"
    # Active X-Ray tracing; these actions have no resource-level permissions.
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }

  statement {
    sid = "RunRunnerTasks"
    # Only this fleet's task definition families, only in this fleet's cluster.
    actions   = ["ecs:RunTask"]
    resources = [local.task_family_arns]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid       = "ManageRunnerTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.cluster_task_arns]
  }

  statement {
    sid = "TagRunnerTasksAtLaunch"
    # RunTask with tags needs ecs:TagResource on the new task.
    actions   = ["ecs:TagResource"]
    resources = [local.cluster_task_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  statement {
    sid = "ListRunnerTasks"
    # ecs:ListTasks authorizes on container instances (Fargate tasks have none): "*" narrowed
    # to this cluster by the condition.
    actions   = ["ecs:ListTasks"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.cluster_arn]
    }
  }

  statement {
    sid = "RunnerTaskDefinitions"
    # RegisterTaskDefinition and DescribeTaskDefinition have no resource-level permissions.
    # Registered definitions can only be run through RunRunnerTasks (this fleet's families)
    # and only with the two roles of PassTaskRoles.
    actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid = "TagImageTaskDefinitions"
    # The `-img` revisions are registered with tags (fleet, class, image tag): tag-on-create.
    actions   = ["ecs:TagResource"]
    resources = [local.task_family_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  statement {
    sid = "DeregisterImageTaskDefinitions"
    # The cleanup deregisters the `-img` revisions of images gone from ECR (cleanup/images.py),
    # only this fleet's. ECS's authorization reference lists no resource type for this action
    # (like RegisterTaskDefinition), so a narrower resource would deny every call.
    actions   = ["ecs:DeregisterTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid = "ListImageTaskDefinitions"
    # Listing has no resource-level permissions; the cleanup asks for this fleet's families only.
    actions   = ["ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions"]
    resources = ["*"]
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = compact([var.task_role_arn, var.task_execution_role_arn])

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "RunnerImages"
    actions   = ["ecr:DescribeImages"]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid = "DeadLetterQueue"
    # Lambda sends failed async invocations here (SendMessage); the cleanup replays them.
    actions = [
      "sqs:DeleteMessage",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  dynamic "statement" {
    for_each = local.image_builds ? [1] : []

    content {
      sid = "ImageBuilds"
      # StopBuild: the cleanup stops a build stuck past its timeout before failing its jobs.
      actions   = ["codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"]
      resources = [local.codebuild_arn]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []

    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.ssm_via_service]
      }
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "control-plane"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_cloudwatch_log_group" "lambda" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; a customer key needs a key policy for the logs service
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days, default 30 days)
  name              = local.lambda_log_group
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_lambda_function" "control_plane" {
  # checkov:skip=CKV_AWS_115: reserved concurrency is optional (lambda_reserved_concurrency): reserving by default fails in accounts with a low concurrency quota
  # checkov:skip=CKV_AWS_117: the Lambda calls public GitHub and AWS APIs; a VPC would need a NAT gateway for no gain
  # checkov:skip=CKV_AWS_173: the environment holds parameter names only, never a secret (docs/CONTRACTS.md)
  # checkov:skip=CKV_AWS_272: the code is built from this repository at apply time; there is no signing profile to check it against
  function_name = local.function_name
  description   = "GitHub workflow_job webhooks to ephemeral ECS Fargate runners (${var.name_prefix})"
  role          = aws_iam_role.lambda.arn
  runtime       = "python3.12"
  handler       = "control_plane.handler.lambda_handler"
  architectures = ["x86_64"]
  timeout       = var.lambda_timeout
  memory_size   = var.lambda_memory_size

  filename         = var.lambda_zip_path
  source_code_hash = var.lambda_source_code_hash

  reserved_concurrent_executions = coalesce(var.lambda_reserved_concurrency, -1)

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  environment {
    variables = merge(
      {
        NAME_PREFIX            = var.name_prefix
        STATE_TABLE            = aws_dynamodb_table.state.name
        CLASS_SIZES_PARAM      = aws_ssm_parameter.class_sizes.name
        SSM_PREFIX             = local.ssm_prefix
        WEBHOOK_SECRET_PARAM   = aws_ssm_parameter.webhook_secret.name
        GITHUB_AUTH            = local.app_auth ? "app" : "pat"
        GITHUB_API_URL         = trimsuffix(var.github_api_url, "/")
        GITHUB_SCOPE           = local.org_scope ? "org" : "repo"
        GITHUB_OWNER           = local.github_owner
        GITHUB_REPO            = local.github_repo
        RUNNER_GROUP_ID        = tostring(var.runner_group_id)
        RUNNER_EXTRA_LABELS    = join(",", var.runner_extra_labels)
        CLUSTER_NAME           = var.cluster_name
        SUBNET_IDS             = join(",", var.subnet_ids)
        SECURITY_GROUP_IDS     = join(",", var.security_groups)
        ASSIGN_PUBLIC_IP       = tostring(var.assign_public_ip)
        CAPACITY_STRATEGY      = var.capacity_strategy
        RUNNER_TIMEOUT_MINUTES = tostring(var.runner_timeout_minutes)
        RUNNER_IDLE_MINUTES    = tostring(var.runner_idle_minutes)
        MAX_RELAUNCHES         = tostring(var.max_relaunches)
        ECR_REPOSITORY_URL     = var.ecr_repository_url
        RUNNER_IMAGE           = var.runner_image
        IMAGE_BUILD_PROJECT    = local.image_builds ? var.image_build_project_name : ""
        DEFAULT_BASE_IMAGE     = var.default_base_image
        ALLOWED_BASE_IMAGES    = join(",", var.allowed_base_images)
        IMAGE_MAX_AGE_DAYS     = tostring(var.image_max_age_days)
        DLQ_URL                = aws_sqs_queue.dlq.url
        ECS_TASK_ROLE_ARN      = var.task_role_arn != null ? var.task_role_arn : ""
        ENABLE_EXECUTE_COMMAND = tostring(var.enable_execute_command)
        JIT_BUCKET             = aws_s3_bucket.jit.id
        ECS_EXECUTION_ROLE_ARN = var.task_execution_role_arn
        RUNNER_LOG_GROUP       = var.runner_log_group_name
        LOG_LEVEL              = var.log_level
        # fleet-wide pace of generate-jitconfig (lambda/control_plane/pacing.py)
        GITHUB_JIT_CONFIGS_PER_MINUTE = tostring(var.github_jit_configs_per_minute)

        # image tags derive from it (docs/CONTRACTS.md "Runner image tags")
        RUNNER_IMAGE_FINGERPRINT = local.image_builds ? var.runner_image_fingerprint : ""

        # EMF metrics: their namespace, the price table of each job's cost, and the age past
        # which the cleanup counts a queued job as stranded (monitoring.tf alarms on it)
        METRICS_NAMESPACE    = var.metrics_namespace
        FARGATE_PRICES       = jsonencode(var.fargate_prices)
        STRANDED_JOB_SECONDS = tostring(var.alarm_stranded_job_seconds)

        # Docker classes: the age past which a task waiting for an instance is reported
        DOCKER_CAPACITY_WAIT_MINUTES = tostring(var.docker_capacity_wait_minutes)
        # CodeBuild environments of image builds per architecture (StartBuild overrides)
        IMAGE_BUILD_ENVIRONMENTS = jsonencode(var.image_build_environments)
      },
      local.pat_auth ? { GITHUB_PAT_PARAM = local.parameter_names.github_pat } : {},
      local.previous_secret_given ? {
        WEBHOOK_SECRET_PREVIOUS_PARAM         = aws_ssm_parameter.webhook_secret_previous[0].name
        WEBHOOK_SECRET_PREVIOUS_GRACE_SECONDS = tostring(var.webhook_secret_previous_grace_hours * 3600)
      } : {},
      local.app_auth ? {
        GITHUB_APP_ID              = var.github_app_id != null ? var.github_app_id : ""
        GITHUB_APP_INSTALLATION_ID = var.github_app_installation_id != null ? var.github_app_installation_id : ""
        GITHUB_APP_KEY_PARAM       = local.parameter_names.github_app_key
      } : {},
    )
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.lambda]

  # Cross-variable rules: variable validations may only refer to other variables from
  # Terraform 1.9 on, and this module supports 1.5. Preconditions fail `terraform plan` too.
  lifecycle {
    precondition {
      condition     = local.pat_auth || local.app_auth
      error_message = "No GitHub credentials: set github_pat, or github_app_id, github_app_private_key and github_app_installation_id."
    }
    precondition {
      condition     = !(local.pat_auth && local.app_auth)
      error_message = "Set either github_pat or the github_app_* variables, not both."
    }
    precondition {
      condition     = !local.app_auth || local.app_complete
      error_message = "GitHub App auth needs all three of github_app_id, github_app_private_key and github_app_installation_id."
    }
    precondition {
      condition     = (var.github_repo != null) != (var.github_org != null)
      error_message = "Set exactly one of github_repo (`owner/repo`, repository scope) and github_org (organization scope)."
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "control_plane" {
  function_name                = aws_lambda_function.control_plane.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

################################################################################
# EventBridge: the webhook bus and the rules that feed the Lambda
################################################################################

resource "aws_cloudwatch_event_bus" "github" {
  name = local.event_bus_name

  tags = var.tags
}

locals {
  rule_specs = merge(
    {
      workflow-job = {
        description = "GitHub workflow_job webhooks (API Gateway → this bus)"
        bus         = aws_cloudwatch_event_bus.github.name
        pattern = jsonencode({
          source        = [local.event_source]
          "detail-type" = ["workflow_job"]
        })
        schedule = null
      }
      ecs-task-state = {
        description = "Runner task state changes in cluster ${var.cluster_name}"
        bus         = "default"
        pattern = jsonencode({
          source        = ["aws.ecs"]
          "detail-type" = ["ECS Task State Change"]
          detail        = { clusterArn = [var.cluster_arn] }
        })
        schedule = null
      }
      cleanup = {
        description = "Cleanup of ${var.name_prefix}: stuck runners, leftover JIT configs, dead letters"
        bus         = "default"
        pattern     = null
        schedule    = "rate(${var.cleanup_interval_minutes} ${var.cleanup_interval_minutes == 1 ? "minute" : "minutes"})"
      }
    },
    local.image_builds ? {
      codebuild-state = {
        description = "Image build state changes of project ${var.image_build_project_name}"
        bus         = "default"
        pattern = jsonencode({
          source        = ["aws.codebuild"]
          "detail-type" = ["CodeBuild Build State Change"]
          detail        = { "project-name" = [var.image_build_project_name] }
        })
        schedule = null
      }
    } : {},
  )
  rules = aws_cloudwatch_event_rule.this
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.rule_specs

  name                = "${var.name_prefix}-${each.key}"
  description         = each.value.description
  event_bus_name      = each.value.bus
  event_pattern       = each.value.pattern
  schedule_expression = each.value.schedule

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.rule_specs

  rule           = aws_cloudwatch_event_rule.this[each.key].name
  event_bus_name = each.value.bus
  target_id      = "control-plane"
  arn            = aws_lambda_function.control_plane.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 8
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_lambda_permission" "events" {
  for_each = local.rule_specs

  statement_id  = "events-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.control_plane.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}
