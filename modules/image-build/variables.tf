variable "name_prefix" {
  description = "Prefix of the names of this module's role, bucket and log group (docs/CONTRACTS.md)."
  type        = string
  default     = "runner-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-24 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "project_name" {
  description = "Name of the CodeBuild project that builds runner images (`image:<base>` labels)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,149}$", var.project_name))
    error_message = "project_name must be 2-150 letters, digits, '-' or '_', starting with a letter or digit."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the builds push to (the only repository the build role may push to)."
  type        = string
}

variable "ecr_repository_url" {
  description = "URL of that ECR repository (the builds' ECR_REPOSITORY_URL)."
  type        = string
}

variable "build_context_dir" {
  description = "Local folder with Dockerfile, entrypoint.sh, buildspec.yml and .dockerignore (the repository's runner/ folder), uploaded as the project's source."
  type        = string
}

variable "compute_type" {
  description = "CodeBuild compute type of the image builds."
  type        = string
  default     = "BUILD_GENERAL1_SMALL"

  validation {
    condition     = can(regex("^BUILD_GENERAL1_(SMALL|MEDIUM|LARGE|XLARGE|2XLARGE)$", var.compute_type))
    error_message = "compute_type must be one of BUILD_GENERAL1_SMALL, _MEDIUM, _LARGE, _XLARGE, _2XLARGE."
  }
}

variable "build_image" {
  description = "CodeBuild build environment image (it needs Docker and the AWS CLI)."
  type        = string
  default     = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
}

variable "arm64_build_image" {
  description = "CodeBuild image of the arm64 builds (runner images of arm64 classes), run in an ARM_CONTAINER environment through StartBuild overrides (build_environments)."
  type        = string
  default     = "aws/codebuild/amazonlinux-aarch64-standard:3.0"
}

variable "arm64_compute_type" {
  description = "CodeBuild compute type of the arm64 builds (ARM_CONTAINER)."
  type        = string
  default     = "BUILD_GENERAL1_LARGE"

  validation {
    condition     = can(regex("^BUILD_GENERAL1_(SMALL|MEDIUM|LARGE|XLARGE|2XLARGE)$", var.arm64_compute_type))
    error_message = "arm64_compute_type must be one of BUILD_GENERAL1_SMALL, _MEDIUM, _LARGE, _XLARGE, _2XLARGE."
  }
}

variable "build_timeout_minutes" {
  description = "Time limit of one image build, in minutes."
  type        = number
  default     = 30

  validation {
    condition     = var.build_timeout_minutes >= 5 && var.build_timeout_minutes <= 480
    error_message = "build_timeout_minutes must be between 5 and 480."
  }
}

variable "log_retention_days" {
  description = "Retention of the build log group, in days (a CloudWatch Logs retention value)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

variable "iam_role_path" {
  description = "Path of the IAM role this module creates."
  type        = string
  default     = "/"
}

variable "iam_permissions_boundary" {
  description = "ARN of a permissions boundary policy set on the IAM role this module creates (null: none)."
  type        = string
  default     = null
}
