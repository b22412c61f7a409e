variable "aws_endpoint_url" {
  description = "URL of the local AWS emulator (moto server) every AWS endpoint points at, e.g. http://127.0.0.1:5000."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be an http(s) URL."
  }
}

variable "aws_region" {
  description = "Region the emulator pretends to be."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (see docs/CONTRACTS.md)."
  type        = string
  default     = "runner-fleet"
}

variable "github_api_url" {
  description = "URL of the local GitHub REST API stand-in (local_mode/github_api.py)."
  type        = string
}

variable "github_repo" {
  description = "Repository (owner/repo) the local fleet serves; the demo's webhooks name it."
  type        = string
  default     = "Codertocat/Hello-World"
}

variable "webhook_secret" {
  description = "Webhook secret, generated per stack by `python -m local_mode up`."
  type        = string
  sensitive   = true
}

variable "github_pat" {
  description = "Token the control plane sends to the GitHub stand-in (a dummy: the stand-in accepts it)."
  type        = string
  sensitive   = true
  default     = "ghp_localmodedummytoken000000000000000000"
}

variable "runner_class_sizes" {
  description = "Runner classes of the local fleet (cpu in ECS units, memory in MiB; the root module's runner_class_sizes validates them). `docker` classes run on the EC2 capacity provider."
  type = map(object({
    cpu                   = number
    memory                = number
    architecture          = optional(string, "x86_64")
    ephemeral_storage_gib = optional(number)
    docker                = optional(bool, false)
    capacity_strategy     = optional(string)
  }))
  default = {
    small  = { cpu = 512, memory = 1024 }
    medium = { cpu = 1024, memory = 2048 }
    large  = { cpu = 2048, memory = 4096 }
    docker = { cpu = 2048, memory = 4096, docker = true }
  }
}

variable "lambda_zip_path" {
  description = "Path of the control-plane Lambda zip built by scripts/build_lambda.py."
  type        = string
}
