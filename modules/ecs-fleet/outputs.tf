output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "task_definition_arns" {
  description = "Class name => ARN (with revision) of its runner task definition."
  value       = { for class, definition in aws_ecs_task_definition.runner : class => definition.arn }
}

output "task_definition_families" {
  description = "Class name => task definition family (`<prefix>-<class>`)."
  value       = { for class, definition in aws_ecs_task_definition.runner : class => definition.family }
}

output "runner_image" {
  description = "Image (repository URL and tag) the x86_64 Fargate classes run; arm64 and docker classes run its variants, the tag suffixed `-arm64`, `-docker` or `-docker-arm64`."
  value       = local.runner_image
}

output "ecr_repository_name" {
  description = "Name of the ECR repository of runner images."
  value       = aws_ecr_repository.runner.name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository of runner images."
  value       = aws_ecr_repository.runner.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the ECR repository of runner images."
  value       = aws_ecr_repository.runner.arn
}

output "task_role_arn" {
  description = "ARN of the runner containers' task role (null when neither ECS Exec nor runner_job_policy_arns needs one)."
  value       = one(aws_iam_role.task[*].arn)
}

output "task_execution_role_arn" {
  description = "ARN of the task execution role (image pull, logs)."
  value       = aws_iam_role.execution.arn
}

output "runner_log_group_name" {
  description = "CloudWatch log group of the runner containers."
  value       = aws_cloudwatch_log_group.runner.name
}

output "runner_log_group_arn" {
  description = "ARN of the runner log group."
  value       = aws_cloudwatch_log_group.runner.arn
}

output "task_execution_role_name" {
  description = "Name of the task execution role (the control plane lets it read JIT configs)."
  value       = aws_iam_role.execution.name
}

output "job_role_arn" {
  description = "ARN the runner task role has, or would have: the identity job code can reach. Known at plan; the control plane denies it the JIT configs."
  value       = local.task_role_arn
}

output "docker_capacity_providers" {
  description = "Architecture => name of its ECS capacity provider (`<prefix>-docker-<arch>`), for each architecture a docker class uses."
  value       = { for arch, provider in aws_ecs_capacity_provider.docker : arch => provider.name }
}

output "docker_autoscaling_group_arns" {
  description = "Architecture => ARN of the Auto Scaling group of its Docker instances."
  value       = { for arch, group in aws_autoscaling_group.docker : arch => group.arn }
}

output "docker_instance_role_arn" {
  description = "ARN of the Docker instances' role (the ECS agent's actions on this cluster only); null without docker classes."
  value       = one(aws_iam_role.docker_instance[*].arn)
}
