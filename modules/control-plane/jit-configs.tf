# One-shot JIT runner configs (docs/CONTRACTS.md "JIT config delivery"). The Lambda writes each
# runner's config to its own object `jit/<runner name>/<random>.env`; RunTask names it in an
# `environmentFiles` override, and ECS's agent reads it with the task execution role, which job
# steps never see. The Lambda deletes it once the task runs; the cleanup and the lifecycle
# rule below catch what is left. No one else may read or write these objects.

locals {
  jit_prefix  = "jit/"
  jit_kms_key = coalesce(var.kms_key_arn, one(aws_kms_key.jit[*].arn))
  # kms:ViaService is the service's endpoint host, in the partition's DNS suffix (aws-cn too).
  s3_via_service  = "s3.${local.region}.${data.aws_partition.current.dns_suffix}"
  ssm_via_service = "ssm.${local.region}.${data.aws_partition.current.dns_suffix}"
}

resource "aws_kms_key" "jit" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "JIT runner configs of ${var.name_prefix}"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  # Delegates to IAM: only the roles whose policies name this key (the control plane's, to
  # encrypt; the task execution role, to decrypt through S3) can use it.
  policy = data.aws_iam_policy_document.jit_key.json

  tags = var.tags
}

data "aws_iam_policy_document" "jit_key" {
  # checkov:skip=CKV_AWS_109: the account root statement is the default key policy; it delegates to IAM
  # checkov:skip=CKV_AWS_111: the account root statement is the default key policy; it delegates to IAM
  # checkov:skip=CKV_AWS_356: "*" in a key policy means this key
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "NeverTheJobRole"
    effect    = "Deny"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [var.job_role_arn]
    }
  }
}

resource "aws_s3_bucket" "jit" {
  # checkov:skip=CKV_AWS_18: one-shot objects that live seconds; access logs would need another bucket
  # checkov:skip=CKV_AWS_21: versions would keep deleted one-shot secrets alive
  # checkov:skip=CKV_AWS_144: one-shot secrets must not be replicated
  # checkov:skip=CKV2_AWS_62: nothing consumes events of this bucket
  bucket_prefix = "${var.name_prefix}-jit-"
  force_destroy = true # only expiring one-shot configs live here

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "jit" {
  bucket                  = aws_s3_bucket.jit.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "jit" {
  bucket = aws_s3_bucket.jit.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "jit" {
  bucket = aws_s3_bucket.jit.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.jit_kms_key
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "jit" {
  bucket = aws_s3_bucket.jit.id

  rule {
    id     = "expire-unread-jit-configs"
    status = "Enabled"

    filter {} # the bucket holds nothing but JIT configs

    # A day is S3's shortest expiry; GitHub also removes a JIT runner that never connected
    # after a day. The cleanup deletes leftovers within minutes.
    expiration {
      days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "jit_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.jit.arn, "${aws_s3_bucket.jit.arn}/*"]

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

  statement {
    # Whatever runner_job_policy_arns grant, job code gets nothing here (not even a listing or
    # this policy).
    sid       = "NeverTheJobRole"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.jit.arn, "${aws_s3_bucket.jit.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [var.job_role_arn]
    }
  }

  statement {
    sid       = "OnlyEcsReadsConfigs"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes"]
    resources = ["${aws_s3_bucket.jit.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [var.task_execution_role_arn]
    }
  }

  statement {
    sid    = "OnlyTheControlPlaneWritesAndDeletes"
    effect = "Deny"
    # Not s3:DeleteObjectVersion: `terraform destroy` empties the bucket with it (force_destroy).
    # Listing stays with IAM: HeadBucket needs s3:ListBucket, so denying it would lock
    # administrators (and Terraform) out; a key alone reads nothing.
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.jit.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.lambda.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "jit" {
  bucket = aws_s3_bucket.jit.id
  policy = data.aws_iam_policy_document.jit_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.jit]
}

# ECS's agent fetches environmentFiles with the task execution role (Fargate platform 1.4.0+).
data "aws_iam_policy_document" "execution_jit" {
  statement {
    sid       = "ReadJitConfigs"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.jit.arn}/${local.jit_prefix}*"]
  }

  statement {
    sid       = "LocateJitBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.jit.arn]
  }

  statement {
    sid       = "DecryptJitConfigs"
    actions   = ["kms:Decrypt"]
    resources = [local.jit_kms_key]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_via_service]
    }
  }
}

resource "aws_iam_role_policy" "execution_jit" {
  name   = "read-jit-configs"
  role   = var.task_execution_role_name
  policy = data.aws_iam_policy_document.execution_jit.json
}
