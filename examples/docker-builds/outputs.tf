output "webhook_url" {
  description = "Payload URL for the repository webhook (application/json, workflow_job)."
  value       = module.runner_fleet.webhook_url
}

output "ecr_repository_url" {
  description = "Repository of runner images: push `<tag>`, `<tag>-arm64` and `<tag>-docker`."
  value       = module.runner_fleet.ecr_repository_url
}

output "docker_capacity_providers" {
  description = "ECS capacity provider of the Docker class, per architecture."
  value       = module.runner_fleet.docker_capacity_providers
}

output "docker_autoscaling_group_arns" {
  description = "Auto Scaling group of the Docker instances, per architecture."
  value       = module.runner_fleet.docker_autoscaling_group_arns
}
