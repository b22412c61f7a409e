variable "name_prefix" {
  description = "Prefix of every resource name (docs/CONTRACTS.md)."
  type        = string
  default     = "runner-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
  }
}

################################################################################
# GitHub
################################################################################

variable "github_pat" {
  description = "GitHub token for registering runners (PAT auth). Stored as an SSM SecureString. Set this or the three github_app_* variables."
  type        = string
  default     = null
  sensitive   = true
}

variable "github_app_id" {
  description = "GitHub App ID (App auth, with github_app_private_key and github_app_installation_id)."
  type        = string
  default     = null
}

variable "github_app_private_key" {
  description = "PEM private key of the GitHub App (App auth). Stored as an SSM SecureString."
  type        = string
  default     = null
  sensitive   = true
}

variable "github_app_installation_id" {
  description = "Installation ID of the GitHub App on the repository's owner or the organization (App auth)."
  type        = string
  default     = null
}

variable "github_repo" {
  description = "Repository (`owner/repo`) whose jobs this fleet serves (repository scope). Set this or github_org."
  type        = string
  default     = null
}

variable "github_org" {
  description = "Organization whose jobs this fleet serves (organization scope). Set this or github_repo."
  type        = string
  default     = null
}

variable "github_api_url" {
  description = "GitHub REST API URL: https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise Server."
  type        = string
  default     = "https://api.github.com"
}

variable "github_jit_configs_per_minute" {
  description = "Fleet-wide pace of JIT runner registrations (generate-jitconfig calls a minute, across all concurrent Lambda invocations). GitHub allows a GitHub App about 180 a minute; the default leaves room for the fleet's other calls."
  type        = number
  default     = 150

  validation {
    condition     = var.github_jit_configs_per_minute > 0
    error_message = "github_jit_configs_per_minute must be a number above 0."
  }
}

variable "webhook_secret" {
  description = "Secret of the GitHub webhook (HMAC of each delivery). Stored as an SSM SecureString."
  type        = string
  sensitive   = true
}

variable "webhook_secret_previous" {
  description = "The webhook secret being rotated out, accepted for webhook_secret_previous_grace_hours after its SSM parameter is written (null: none). Stored as an SSM SecureString."
  type        = string
  default     = null
  sensitive   = true
}

variable "webhook_secret_previous_grace_hours" {
  description = "Hours for which webhook_secret_previous is accepted, from when its parameter was last written."
  type        = number
  default     = 24
  nullable    = false
}

variable "kms_key_arn" {
  description = "Customer KMS key for the SSM SecureStrings holding the secrets and for the JIT config bucket (null: the AWS managed aws/ssm key for the secrets, and a key this module creates for the bucket). The control plane gets kms:Decrypt and kms:GenerateDataKey on it, the task execution role kms:Decrypt through S3."
  type        = string
  default     = null
}

variable "runner_group_id" {
  description = "Runner group the JIT runners join."
  type        = number
  default     = 1
}

variable "runner_extra_labels" {
  description = "Labels, besides self-hosted, class:<name> and image:<ref>, that this fleet serves and gives its runners."
  type        = list(string)
  default     = []
}

################################################################################
# Fleet (from the ecs-fleet module)
################################################################################

variable "runner_class_sizes" {
  description = "Runner classes: name => { cpu, memory, architecture, ephemeral_storage_gib, docker, capacity_strategy }, written to the class-sizes SSM parameter (validated by the root and ecs-fleet modules)."
  type = map(object({
    cpu                   = number
    memory                = number
    architecture          = optional(string, "x86_64")
    ephemeral_storage_gib = optional(number)
    docker                = optional(bool, false)
    capacity_strategy     = optional(string)
  }))
}

variable "docker_capacity_providers" {
  description = "Architecture => ECS capacity provider of the docker classes of that architecture (the ecs-fleet module's docker_capacity_providers)."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "docker_distinct_instance" {
  description = "Docker tasks start with the distinctInstance placement constraint: one per instance."
  type        = bool
  default     = true
}

variable "docker_capacity_wait_minutes" {
  description = "The cleanup reports a Docker task waiting for capacity (PROVISIONING) longer than this."
  type        = number
  default     = 15

  validation {
    condition     = var.docker_capacity_wait_minutes >= 1 && var.docker_capacity_wait_minutes <= 1440 && floor(var.docker_capacity_wait_minutes) == var.docker_capacity_wait_minutes
    error_message = "docker_capacity_wait_minutes must be a whole number from 1 to 1440."
  }
}

variable "default_class" {
  description = "Class of jobs without a class:<name> label (null: the smallest class)."
  type        = string
  default     = null
}

variable "cluster_name" {
  description = "Name of the ECS cluster runners start in."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster (RunTask is only allowed there)."
  type        = string
}

variable "task_role_arn" {
  description = "Task role of the runner containers (PassRole target); null when the tasks run without one."
  type        = string
  default     = null
}

variable "task_execution_role_arn" {
  description = "Task execution role of the runner tasks (PassRole target; the only reader of JIT configs)."
  type        = string
}

variable "job_role_arn" {
  description = "ARN of the runner task role (whether or not it exists): denied every action on the JIT config bucket and key."
  type        = string
}

variable "task_execution_role_name" {
  description = "Name of the task execution role: this module attaches its read access to the JIT configs."
  type        = string
}

variable "enable_execute_command" {
  description = "Start runner tasks with ECS Exec enabled."
  type        = bool
  default     = true
}

variable "iam_role_path" {
  description = "Path of the IAM roles this module creates."
  type        = string
  default     = "/"
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary policy set on every IAM role this module creates (null: none)."
  type        = string
  default     = null
}

variable "ecr_repository_url" {
  description = "URL of the ECR repository of runner images."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of that repository (the control plane checks which image tags exist)."
  type        = string
}

variable "runner_image" {
  description = "Image the class task definitions run, pinned for jobs without an `image:` label; empty: with image builds on, the default image is built on default_base_image."
  type        = string
}

variable "runner_log_group_name" {
  description = "CloudWatch log group of the runner containers."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the runner tasks."
  type        = list(string)
}

variable "security_groups" {
  description = "Security groups of the runner tasks."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give runner tasks a public IP (needed in public subnets without a NAT gateway)."
  type        = bool
  default     = false
}

variable "capacity_strategy" {
  description = "Where runners run: FARGATE, FARGATE_SPOT, or spotPreferred (Spot, falling back to FARGATE when Spot has no capacity)."
  type        = string
  default     = "FARGATE"

  validation {
    condition     = contains(["FARGATE", "FARGATE_SPOT", "spotPreferred"], var.capacity_strategy)
    error_message = "capacity_strategy must be FARGATE, FARGATE_SPOT or spotPreferred."
  }
}

variable "runner_timeout_minutes" {
  description = "The cleanup stops a runner task that has run this long."
  type        = number
  default     = 360
}

variable "runner_idle_minutes" {
  description = "The cleanup stops a runner that has not taken a job after this many minutes."
  type        = number
  default     = 15
}

variable "max_relaunches" {
  description = "How often a job is relaunched after its runner stopped before taking a job (a job whose runner took another job is relaunched whenever that happens; 0 turns both off)."
  type        = number
  default     = 2
}

variable "default_base_image" {
  description = "Base image of the default runner image."
  type        = string
  default     = "public.ecr.aws/docker/library/ubuntu:22.04"
}

variable "allowed_base_images" {
  description = "Glob patterns of the normalised base image references runner images may be built on (the control plane rejects jobs asking for any other base)."
  type        = list(string)
  default     = ["public.ecr.aws/docker/library/*", "docker.io/library/*"]
  nullable    = false
}

variable "image_max_age_days" {
  description = "Age in days after which a runner image on a mutable base tag is built again (0: never)."
  type        = number
  default     = 7
  nullable    = false
}

variable "image_build_project_name" {
  description = "CodeBuild project of image builds (null: image builds are off)."
  type        = string
  default     = null
}

variable "runner_image_fingerprint" {
  description = "Fingerprint of the runner build context (the image-build module's `runner_fingerprint`): image tags derive from it. Empty when image builds are off."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.runner_image_fingerprint == "" || can(regex("^[0-9a-f]{64}$", var.runner_image_fingerprint))
    error_message = "runner_image_fingerprint must be empty or 64 lowercase hex digits (a sha256)."
  }
}

variable "image_build_environments" {
  description = "Architecture => CodeBuild environment { type, image, compute_type } of its image builds, besides the project's own (the image-build module's build_environments); empty when image builds are off."
  type = map(object({
    type         = string
    image        = string
    compute_type = string
  }))
  default  = {}
  nullable = false
}

################################################################################
# Control plane
################################################################################

variable "event_bus_name" {
  description = "Name of the EventBridge bus for GitHub webhook events (null: `<prefix>-events`)."
  type        = string
  default     = null
}

variable "cleanup_interval_minutes" {
  description = "How often the cleanup (reaper) runs."
  type        = number
  default     = 5

  validation {
    condition     = var.cleanup_interval_minutes >= 1 && var.cleanup_interval_minutes <= 60 && floor(var.cleanup_interval_minutes) == var.cleanup_interval_minutes
    error_message = "cleanup_interval_minutes must be a whole number from 1 to 60."
  }
}

variable "lambda_zip_path" {
  description = "Path of the control-plane Lambda zip (scripts/build_lambda.py)."
  type        = string
}

variable "lambda_source_code_hash" {
  description = "Hash that changes when the Lambda's code changes (base64 SHA-256); a change updates the function code."
  type        = string
}

variable "lambda_timeout" {
  description = "Timeout of the control-plane Lambda, in seconds."
  type        = number
  default     = 120

  validation {
    condition     = var.lambda_timeout >= 10 && var.lambda_timeout <= 900
    error_message = "lambda_timeout must be between 10 and 900 seconds."
  }
}

variable "lambda_memory_size" {
  description = "Memory of the control-plane Lambda, in MiB."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240
    error_message = "lambda_memory_size must be between 128 and 10240 MiB."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the control-plane Lambda (null: unreserved)."
  type        = number
  default     = null

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1, false)
    error_message = "lambda_reserved_concurrency must be null or >= 1 (0 would stop the control plane)."
  }
}

variable "log_level" {
  description = "Log level of the control-plane Lambda."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of the Lambda's (and the API's access) log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "api_access_logs_enabled" {
  description = "Write API Gateway access logs. Needs the account's API Gateway CloudWatch role (aws_api_gateway_account) to be set up."
  type        = bool
  default     = false
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the webhook endpoint accepts."
  type        = number
  default     = 50
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the webhook endpoint accepts."
  type        = number
  default     = 100
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# Observability and cost (monitoring.tf)
################################################################################

variable "metrics_namespace" {
  description = "CloudWatch namespace of the control plane's metrics (EMF lines on the Lambda's stdout), the dashboard and the alarms."
  type        = string
  default     = "AWSRunnerFleet"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9A-Za-z._/#: -]{1,255}$", var.metrics_namespace)) && trimspace(var.metrics_namespace) != "" && !startswith(var.metrics_namespace, ":") && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits, spaces or . _ - / # :, not only spaces, not starting with ':' or with 'AWS/' (reserved for AWS services)."
  }
}

variable "fargate_prices" {
  description = "Fargate prices the control plane estimates each job's cost with, in USD: per vCPU-hour and GB-hour for x86_64 and arm64, per GB-hour of ephemeral storage beyond the free 20 GB, and spot_discount, the fraction Fargate Spot takes off on-demand. The defaults are us-east-1 Linux on-demand prices from the AWS Fargate pricing page; spot_discount is an estimate (Spot prices move). Set them for your region or contract."
  type = object({
    x86_64_vcpu_hour          = optional(number, 0.04048)
    x86_64_gb_hour            = optional(number, 0.004445)
    arm64_vcpu_hour           = optional(number, 0.03238)
    arm64_gb_hour             = optional(number, 0.00356)
    ephemeral_storage_gb_hour = optional(number, 0.000111)
    spot_discount             = optional(number, 0.7)
  })
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for name, price in var.fargate_prices : price >= 0 if name != "spot_discount"]) && var.fargate_prices.spot_discount >= 0 && var.fargate_prices.spot_discount < 1
    error_message = "fargate_prices: every price must be >= 0, and spot_discount a fraction from 0 up to (not including) 1."
  }
}

variable "dashboard_enabled" {
  description = "Create the CloudWatch dashboard `<name_prefix>` (queue wait, start time, launches, failures, dead letters, Lambda errors, running tasks, cost)."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarms_enabled" {
  description = "Create the CloudWatch alarms: dead-letter queue not empty, Lambda errors, queue wait p90 too long, jobs stranded."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify when they go into and out of alarm (null: the alarms notify no one)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be null or a standard SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)."
  }
}

variable "alarm_queue_wait_seconds" {
  description = "The queue wait alarm fires when the p90 of jobs' queue wait (GitHub created_at to started_at) stays above this many seconds for 10 minutes."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.alarm_queue_wait_seconds > 0
    error_message = "alarm_queue_wait_seconds must be a number of seconds above 0."
  }
}

variable "alarm_stranded_job_seconds" {
  description = "A job GitHub shows queued, with labels this fleet serves, for longer than this many seconds is stranded: the cleanup counts such jobs (JobsStranded), and the stranded-jobs alarm fires on any."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.alarm_stranded_job_seconds >= 60 && floor(var.alarm_stranded_job_seconds) == var.alarm_stranded_job_seconds
    error_message = "alarm_stranded_job_seconds must be a whole number of seconds, at least 60."
  }
}
