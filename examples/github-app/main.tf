# GitHub App authentication (no personal token): the control plane signs a JWT with the App's
# key, exchanges it for an installation token and registers runners with it. The key is
# stored as an SSM SecureString encrypted with your KMS key.

provider "aws" {
  region = var.aws_region
}

module "runner_fleet" {
  source = "../.."

  aws_region = var.aws_region

  github_repo                = var.github_repo
  github_app_id              = var.github_app_id
  github_app_installation_id = var.github_app_installation_id
  github_app_private_key     = var.github_app_private_key
  webhook_secret             = var.webhook_secret
  kms_key_arn                = var.kms_key_arn

  subnet_ids      = var.subnet_ids
  security_groups = var.security_group_ids

  runner_extra_labels = ["linux", "x64"]
  log_retention_days  = 90
}
