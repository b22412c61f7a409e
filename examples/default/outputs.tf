output "webhook_url" {
  description = "Payload URL for the GitHub webhook (content type application/json, event workflow_job)."
  value       = module.ecs-fleet.webhook_url
}

output "ecr_repository_url" {
  description = "Push the runner image (runner/Dockerfile) here, tagged `default`."
  value       = module.ecs-fleet.ecr_repository_url
}

output "state_table_name" {
  description = "DynamoDB table of runner state (the CLI's RUNNER_TABLE)."
  value       = module.ecs-fleet.state_table_name
}

output "class_sizes_parameter_name" {
  description = "SSM parameter of the class sizes (the CLI's CLASS_SIZES_PARAM)."
  value       = module.ecs-fleet.class_sizes_parameter_name
}
