output "project_name" {
  description = "Name of the CodeBuild project."
  value       = aws_codebuild_project.this.name
}

output "project_arn" {
  description = "ARN of the CodeBuild project."
  value       = aws_codebuild_project.this.arn
}

output "role_arn" {
  description = "ARN of the build role."
  value       = aws_iam_role.build.arn
}

output "build_context_bucket" {
  description = "Bucket holding the build context."
  value       = aws_s3_bucket.context.id
}

output "build_context_location" {
  description = "The project's S3 source location (`<bucket>/runner/`)."
  value       = aws_codebuild_project.this.source[0].location
}

output "log_group_name" {
  description = "CloudWatch log group of the builds."
  value       = aws_cloudwatch_log_group.build.name
}

output "runner_fingerprint" {
  description = "Fingerprint of the runner image's build context (sha256 over runner/Dockerfile and runner/entrypoint.sh): the control plane derives every image tag from it."
  value       = local.runner_fingerprint
  # Available once the context it describes is uploaded: a Lambda updated with a new
  # fingerprint never starts a build of the old context.
  depends_on = [aws_s3_object.context]
}

output "build_environments" {
  description = "Architecture => CodeBuild environment { type, image, compute_type } its builds run in, besides the project's own x86_64 one: the control plane's StartBuild overrides (IMAGE_BUILD_ENVIRONMENTS)."
  value = {
    arm64 = { type = "ARM_CONTAINER", image = var.arm64_build_image, compute_type = var.arm64_compute_type }
  }
}
