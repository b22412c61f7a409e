# The AWS provider pointed at the test session's moto server (no account, no credentials).
provider "aws" {
  region     = var.aws_region
  access_key = "testing"
  secret_key = "testing"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    apigateway  = var.aws_endpoint_url
    autoscaling = var.aws_endpoint_url
    cloudwatch  = var.aws_endpoint_url
    codebuild   = var.aws_endpoint_url
    dynamodb    = var.aws_endpoint_url
    ec2         = var.aws_endpoint_url
    ecr         = var.aws_endpoint_url
    ecs         = var.aws_endpoint_url
    events      = var.aws_endpoint_url
    iam         = var.aws_endpoint_url
    kms         = var.aws_endpoint_url
    lambda      = var.aws_endpoint_url
    logs        = var.aws_endpoint_url
    s3          = var.aws_endpoint_url
    sns         = var.aws_endpoint_url
    sqs         = var.aws_endpoint_url
    ssm         = var.aws_endpoint_url
    sts         = var.aws_endpoint_url
  }
}

variable "aws_endpoint_url" {
  description = "URL of the moto server (set by tests/terraform/conftest.py as TF_VAR_aws_endpoint_url)."
  type        = string
}

variable "aws_region" {
  description = "Region the emulator pretends to be."
  type        = string
  default     = "us-east-1"
}
