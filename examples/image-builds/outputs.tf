output "webhook_url" {
  description = "Payload URL for the organization webhook (application/json, workflow_job)."
  value       = module.runner_fleet.webhook_url
}

output "image_build_project_name" {
  description = "CodeBuild project that builds runner images."
  value       = module.runner_fleet.image_build_project_name
}

output "ecr_repository_url" {
  description = "Repository of runner images (built ones and the default one)."
  value       = module.runner_fleet.ecr_repository_url
}
