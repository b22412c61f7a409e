variable "aws_region" {
  description = "Region to deploy the fleet in."
  type        = string
  default     = "us-west-2"
}

variable "github_repo" {
  description = "Repository (`owner/repo`) whose jobs the fleet serves."
  type        = string
}

variable "github_pat" {
  description = "Token with the repository's Administration (write) permission."
  type        = string
  sensitive   = true
}

variable "webhook_secret" {
  description = "Secret of the repository webhook."
  type        = string
  sensitive   = true
}

variable "private_subnet_ids" {
  description = "Private subnets with a NAT route: Docker tasks on EC2 get no public IP."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the runner tasks and the Docker instances (egress only)."
  type        = list(string)
}
