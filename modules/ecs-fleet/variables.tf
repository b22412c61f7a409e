variable "name_prefix" {
  description = "Prefix of every resource name: the cluster is `<prefix>`, task definition families `<prefix>-<class>`, the ECR repository `<prefix>-runner` (docs/CONTRACTS.md)."
  type        = string
  default     = "runner-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "runner_class_sizes" {
  description = "Runner classes: class name => { cpu (ECS units), memory (MiB) }, one task definition each. Sizes must be valid Fargate combinations."
  type = map(object({
    cpu    = number
    memory = number
  }))

  validation {
    condition     = length(var.runner_class_sizes) > 0 && alltrue([for name in keys(var.runner_class_sizes) : can(regex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", name))])
    error_message = "runner_class_sizes needs at least one class; class names (used in `class:<name>` labels and task definition families) must be 1-32 lowercase letters, digits or inner hyphens."
  }

  # Fargate's valid task sizes (cpu units => memory MiB), as in the Fargate documentation.
  validation {
    condition = alltrue([for size in values(var.runner_class_sizes) : contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = [1024, 2048, 3072, 4096]
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(size.cpu), []), size.memory)])
    error_message = "Each runner class must be a valid Fargate size: cpu 256 => memory 512, 1024 or 2048; 512 => 1024-4096 (1024 steps); 1024 => 2048-8192; 2048 => 4096-16384; 4096 => 8192-30720 (1024 steps); 8192 => 16384-61440 (4096 steps); 16384 => 32768-122880 (8192 steps)."
  }
}

variable "runner_image_tag" {
  description = "Tag, in this module's ECR repository, of the runner image the class task definitions run (an image built from runner/Dockerfile)."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.runner_image_tag))
    error_message = "runner_image_tag must be a Docker tag: 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'."
  }
}

variable "container_insights" {
  description = "CloudWatch Container Insights on the cluster: enabled, enhanced or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be one of enabled, enhanced, disabled."
  }
}

variable "log_retention_days" {
  description = "Retention of the runner log group, in days (a CloudWatch Logs retention value)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repository even when it still holds images."
  type        = bool
  default     = false
}

variable "ecr_max_image_count" {
  description = "The ECR lifecycle policy keeps this many most recent images besides the runner_image_tag image, which it never expires (untagged images expire after a day)."
  type        = number
  default     = 100

  validation {
    condition     = var.ecr_max_image_count >= 1 && floor(var.ecr_max_image_count) == var.ecr_max_image_count
    error_message = "ecr_max_image_count must be a whole number >= 1."
  }
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into runner tasks (`ecsrunner runners exec`): the task role then holds the ssmmessages channel actions and writes the session log to its own group, nothing else of the fleet's."
  type        = bool
  default     = true
}

variable "runner_job_policy_arns" {
  description = "IAM policy ARNs attached to the runner task role for job steps that need AWS access without GitHub OIDC. Empty (the default): job steps get no AWS credentials at all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.runner_job_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", arn))])
    error_message = "runner_job_policy_arns must hold IAM policy ARNs (arn:<partition>:iam::<account or aws>:policy/<name>)."
  }
}

variable "iam_role_path" {
  description = "Path of the IAM roles this module creates."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{0,510}/)?$", var.iam_role_path))
    error_message = "iam_role_path must start and end with '/' (e.g. \"/\" or \"/ci/\"), at most 512 characters."
  }
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary policy set on every IAM role this module creates (null: none)."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", var.iam_permissions_boundary))
    error_message = "iam_permissions_boundary must be an IAM policy ARN."
  }
}
