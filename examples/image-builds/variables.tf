variable "aws_region" {
  description = "Region to deploy the fleet in."
  type        = string
  default     = "eu-west-1"
}

variable "github_org" {
  description = "Organization whose jobs the fleet serves."
  type        = string
}

variable "github_pat" {
  description = "Token with the organization's self-hosted runners (write) permission."
  type        = string
  sensitive   = true
}

variable "webhook_secret" {
  description = "Secret of the organization webhook."
  type        = string
  sensitive   = true
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT gateway) for the runner tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the runner tasks (egress only)."
  type        = list(string)
}
