################################################################################
# Webhook
################################################################################

output "webhook_url" {
  description = "Payload URL of the GitHub webhook (content type application/json, event workflow_job)."
  value       = module.control_plane.webhook_url
}

output "event_bus_name" {
  description = "EventBridge bus of the GitHub webhook events."
  value       = module.control_plane.event_bus_name
}

################################################################################
# Control plane
################################################################################

output "lambda_function_name" {
  description = "Name of the control-plane Lambda."
  value       = module.control_plane.lambda_function_name
}

output "lambda_log_group_name" {
  description = "Log group of the control-plane Lambda."
  value       = module.control_plane.lambda_log_group_name
}

output "state_table_name" {
  description = "DynamoDB table of runner and job state (the CLI's RUNNER_TABLE)."
  value       = module.control_plane.state_table_name
}

output "class_sizes_parameter_name" {
  description = "SSM parameter with the class sizes JSON (the CLI's CLASS_SIZES_PARAM)."
  value       = module.control_plane.class_sizes_parameter_name
}

output "default_class" {
  description = "Class of jobs without a class:<name> label."
  value       = module.control_plane.default_class
}

output "ssm_prefix" {
  description = "SSM path of everything of this fleet."
  value       = module.control_plane.ssm_prefix
}

output "secret_parameter_names" {
  description = "Names (never values) of the SSM SecureStrings holding the secrets."
  value       = module.control_plane.secret_parameter_names
}

output "dlq_url" {
  description = "Dead-letter queue of the EventBridge targets and the Lambda's async invocations."
  value       = module.control_plane.dlq_url
}

################################################################################
# Fleet
################################################################################

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.ecs_fleet.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = module.ecs_fleet.cluster_arn
}

output "task_definition_arns" {
  description = "Class name => ARN of its runner task definition."
  value       = module.ecs_fleet.task_definition_arns
}

output "ecr_repository_url" {
  description = "ECR repository of runner images: push the runner image here as runner_image_tag."
  value       = module.ecs_fleet.ecr_repository_url
}

output "runner_image" {
  description = "Image the x86_64 Fargate classes run; arm64 and docker classes run its variants, the tag suffixed `-arm64`, `-docker` or `-docker-arm64`."
  value       = module.ecs_fleet.runner_image
}

output "runner_log_group_name" {
  description = "Log group of the runner containers."
  value       = module.ecs_fleet.runner_log_group_name
}

output "image_build_project_name" {
  description = "CodeBuild project of image builds (null when image builds are off)."
  value       = one(module.image_build[*].project_name)
}

output "docker_capacity_providers" {
  description = "Architecture => ECS capacity provider (`<prefix>-docker-<arch>`) of the docker classes of that architecture (empty without docker classes)."
  value       = module.ecs_fleet.docker_capacity_providers
}

output "docker_autoscaling_group_arns" {
  description = "Architecture => Auto Scaling group of the Docker instances (empty without docker classes)."
  value       = module.ecs_fleet.docker_autoscaling_group_arns
}

################################################################################
# IAM roles
################################################################################

output "lambda_role_arn" {
  description = "Role of the control-plane Lambda."
  value       = module.control_plane.lambda_role_arn
}

output "api_role_arn" {
  description = "Role API Gateway uses to put webhook events on the bus."
  value       = module.control_plane.api_role_arn
}

output "task_role_arn" {
  description = "Task role of the runner containers."
  value       = module.ecs_fleet.task_role_arn
}

output "task_execution_role_arn" {
  description = "Task execution role of the runner tasks."
  value       = module.ecs_fleet.task_execution_role_arn
}

output "docker_instance_role_arn" {
  description = "Role of the Docker instances: the ECS agent's actions on this cluster only (null without docker classes)."
  value       = module.ecs_fleet.docker_instance_role_arn
}

output "image_build_role_arn" {
  description = "Role of the image build project (null when image builds are off)."
  value       = one(module.image_build[*].role_arn)
}

output "jit_bucket_name" {
  description = "S3 bucket of the one-shot JIT runner configs (readable only by the task execution role)."
  value       = module.control_plane.jit_bucket_name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of the fleet (null when dashboard_enabled is false)."
  value       = module.control_plane.dashboard_name
}

output "alarm_arns" {
  description = "Alarm key (dlq-not-empty, lambda-errors, queue-wait-p90, jobs-stranded) => ARN; empty when alarms_enabled is false."
  value       = module.control_plane.alarm_arns
}
