# Optional image builds for `image:<base>` labels: a CodeBuild project that builds
# runner/Dockerfile on a base image (--build-arg BASE_IMAGE) and pushes it to the fleet's ECR
# repository. Its source is the runner/ folder, uploaded to a bucket this module owns.
# The control plane starts one build per image tag with BASE_IMAGE and IMAGE_TAG overrides
# (and RUNNER_VARIANT; an arm64 image also with the environment of build_environments).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  context_prefix = "runner"
  # The whole build context: .dockerignore sends only entrypoint.sh besides the Dockerfile.
  context_files = toset(["Dockerfile", "entrypoint.sh", "buildspec.yml", ".dockerignore"])
  log_group     = "/aws/codebuild/${var.project_name}"

  # The runner image fingerprint: sha256 of what `sha256sum Dockerfile entrypoint.sh` prints.
  # Every image tag is derived from it (docs/CONTRACTS.md "Runner image tags"), so a changed
  # Dockerfile, entrypoint or runner version (pinned in the Dockerfile) builds new images; the
  # buildspec checks the uploaded context against it.
  fingerprint_files = ["Dockerfile", "entrypoint.sh"]
  runner_fingerprint = sha256(join("", [
    for file in local.fingerprint_files : "${filesha256("${var.build_context_dir}/${file}")}  ${file}\n"
  ]))
}

################################################################################
# Build context bucket
################################################################################

resource "aws_s3_bucket" "context" {
  # checkov:skip=CKV_AWS_18: holds four files Terraform uploads; access logging would need another bucket
  # checkov:skip=CKV_AWS_144: the build context is reproducible from the repository; no replica needed
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES-256); a customer key adds a key policy for no gain here
  # checkov:skip=CKV2_AWS_62: nothing consumes events of this bucket
  bucket_prefix = "${var.name_prefix}-build-"
  # Everything in it comes from the repository: destroy may empty it.
  force_destroy = true

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "context" {
  bucket                  = aws_s3_bucket.context.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "context" {
  bucket = aws_s3_bucket.context.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "context" {
  bucket = aws_s3_bucket.context.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "context" {
  bucket = aws_s3_bucket.context.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "context" {
  bucket = aws_s3_bucket.context.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.context]
}

data "aws_iam_policy_document" "context_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.context.arn, "${aws_s3_bucket.context.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "context" {
  bucket = aws_s3_bucket.context.id
  policy = data.aws_iam_policy_document.context_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.context]
}

resource "aws_s3_object" "context" {
  for_each = local.context_files

  bucket = aws_s3_bucket.context.id
  key    = "${local.context_prefix}/${each.key}"
  source = "${var.build_context_dir}/${each.key}"
  # SSE-S3 keeps ETag = MD5, so a changed file is uploaded again.
  etag = filemd5("${var.build_context_dir}/${each.key}")

  tags = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.context]
}

################################################################################
# Build role
################################################################################

data "aws_iam_policy_document" "codebuild_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${var.project_name}"]
    }
  }
}

resource "aws_iam_role" "build" {
  name                 = "${var.name_prefix}-image-build-${local.region}"
  description          = "CodeBuild project ${var.project_name}: builds runner images and pushes them to ${var.ecr_repository_url}"
  assume_role_policy   = data.aws_iam_policy_document.codebuild_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "build" {
  statement {
    sid       = "BuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.build.arn}:*"]
  }

  statement {
    sid       = "ReadBuildContext"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.context.arn}/${local.context_prefix}/*"]
  }

  statement {
    sid       = "ListBuildContext"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketAcl"]
    resources = [aws_s3_bucket.context.arn]
  }

  statement {
    sid = "EcrAuth"
    # ecr:GetAuthorizationToken has no resource-level permissions: it only returns a registry login.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushRunnerImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.ecr_repository_arn]
  }
}

resource "aws_iam_role_policy" "build" {
  name   = "build-and-push"
  role   = aws_iam_role.build.id
  policy = data.aws_iam_policy_document.build.json
}

################################################################################
# CodeBuild project
################################################################################

resource "aws_cloudwatch_log_group" "build" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; a customer key needs a key policy for the logs service
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days, default 30 days)
  name              = local.log_group
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_codebuild_project" "this" {
  # checkov:skip=CKV_AWS_316: privileged mode is needed for docker build; the project builds only runner/Dockerfile, on the bases allowed_base_images allows (checked by the control plane)
  # checkov:skip=CKV_AWS_147: artifacts are encrypted with the AWS managed S3 key; builds produce no artifact
  name          = var.project_name
  description   = "Builds runner images (runner/Dockerfile on BASE_IMAGE) for ${var.name_prefix}"
  service_role  = aws_iam_role.build.arn
  build_timeout = var.build_timeout_minutes

  source {
    type = "S3"
    # A folder source: CodeBuild downloads every object under the prefix.
    location  = "${aws_s3_bucket.context.id}/${local.context_prefix}/"
    buildspec = "buildspec.yml"
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  # x86_64 builds run here; arm64 builds override type, image and compute type at StartBuild
  # (build_environments). Privileged mode and the Docker layer cache hold for both.
  environment {
    type            = "LINUX_CONTAINER"
    compute_type    = var.compute_type
    image           = var.build_image
    privileged_mode = true

    environment_variable {
      name  = "ECR_REPOSITORY_URL"
      value = var.ecr_repository_url
    }
  }

  cache {
    type  = "LOCAL"
    modes = ["LOCAL_DOCKER_LAYER_CACHE"]
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.build.name
    }
  }

  tags = var.tags

  depends_on = [aws_s3_object.context, aws_iam_role_policy.build]
}
