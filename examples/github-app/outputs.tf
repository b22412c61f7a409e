output "webhook_url" {
  description = "Payload URL for the repository webhook (application/json, workflow_job)."
  value       = module.runner_fleet.webhook_url
}

output "secret_parameter_names" {
  description = "SSM parameters holding the webhook secret and the App key (names only)."
  value       = module.runner_fleet.secret_parameter_names
}
