variable "aws_region" {
  description = "Region to deploy the fleet in (also checked against the provider's)."
  type        = string
  default     = "us-east-1"
}

variable "github_repo" {
  description = "Repository (owner/repo) whose jobs the fleet serves."
  type        = string
}

variable "github_app_id" {
  description = "The GitHub App's ID."
  type        = string
}

variable "github_app_installation_id" {
  description = "The App's installation ID on the repository's owner."
  type        = string
}

variable "github_app_private_key" {
  description = "The App's PEM private key."
  type        = string
  sensitive   = true
}

variable "webhook_secret" {
  description = "Secret of the repository webhook."
  type        = string
  sensitive   = true
}

variable "kms_key_arn" {
  description = "KMS key for the secrets in SSM (null: the AWS managed aws/ssm key)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT gateway) for the runner tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the runner tasks (egress only)."
  type        = list(string)
}
