# Every AWS API call goes to the local emulator (moto server on loopback): no AWS account,
# no credentials, no metadata service. moto accepts any key pair; "testing" is its convention.
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
    acm                    = var.aws_endpoint_url
    apigateway             = var.aws_endpoint_url
    apigatewayv2           = var.aws_endpoint_url
    applicationautoscaling = var.aws_endpoint_url
    autoscaling            = var.aws_endpoint_url
    cloudformation         = var.aws_endpoint_url
    cloudwatch             = var.aws_endpoint_url
    codebuild              = var.aws_endpoint_url
    dynamodb               = var.aws_endpoint_url
    ec2                    = var.aws_endpoint_url
    ecr                    = var.aws_endpoint_url
    ecs                    = var.aws_endpoint_url
    efs                    = var.aws_endpoint_url
    elb                    = var.aws_endpoint_url
    elbv2                  = var.aws_endpoint_url
    events                 = var.aws_endpoint_url
    iam                    = var.aws_endpoint_url
    kms                    = var.aws_endpoint_url
    lambda                 = var.aws_endpoint_url
    logs                   = var.aws_endpoint_url
    route53                = var.aws_endpoint_url
    s3                     = var.aws_endpoint_url
    scheduler              = var.aws_endpoint_url
    secretsmanager         = var.aws_endpoint_url
    sns                    = var.aws_endpoint_url
    sqs                    = var.aws_endpoint_url
    ssm                    = var.aws_endpoint_url
    sts                    = var.aws_endpoint_url
    xray                   = var.aws_endpoint_url
  }
}
