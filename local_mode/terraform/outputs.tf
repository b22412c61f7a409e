output "subnet_id" {
  description = "Subnet of the runner tasks."
  value       = aws_subnet.runners.id
}

output "security_group_id" {
  description = "Security group of the runner tasks."
  value       = aws_security_group.runners.id
}

output "fleet" {
  description = "The fleet module's names local mode needs (the module's outputs hold no secret)."
  value = {
    state_table_name           = module.fleet.state_table_name
    class_sizes_parameter_name = module.fleet.class_sizes_parameter_name
    cluster_name               = module.fleet.cluster_name
    lambda_function_name       = module.fleet.lambda_function_name
    event_bus_name             = module.fleet.event_bus_name
    webhook_url                = module.fleet.webhook_url
    jit_bucket_name            = module.fleet.jit_bucket_name
    lambda_role_arn            = module.fleet.lambda_role_arn
    image_build_project_name   = module.fleet.image_build_project_name
    ecr_repository_url         = module.fleet.ecr_repository_url
  }
}
