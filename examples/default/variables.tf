variable "aws_region" {
  description = "Region to deploy the fleet in."
  type        = string
  default     = "us-east-1"
}
