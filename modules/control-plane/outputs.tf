output "webhook_url" {
  description = "URL to configure as the GitHub webhook's Payload URL (content type application/json)."
  value       = "${aws_api_gateway_stage.webhook.invoke_url}/${aws_api_gateway_resource.webhook.path_part}"
}

output "rest_api_id" {
  description = "ID of the webhook REST API."
  value       = aws_api_gateway_rest_api.webhook.id
}

output "event_bus_name" {
  description = "Name of the EventBridge bus of GitHub webhook events."
  value       = aws_cloudwatch_event_bus.github.name
}

output "event_bus_arn" {
  description = "ARN of that bus."
  value       = aws_cloudwatch_event_bus.github.arn
}

output "event_rule_arns" {
  description = "Rule key (workflow-job, ecs-task-state, codebuild-state, cleanup) => ARN."
  value       = { for key, rule in aws_cloudwatch_event_rule.this : key => rule.arn }
}

output "lambda_function_name" {
  description = "Name of the control-plane Lambda."
  value       = aws_lambda_function.control_plane.function_name
}

output "lambda_function_arn" {
  description = "ARN of the control-plane Lambda."
  value       = aws_lambda_function.control_plane.arn
}

output "lambda_role_arn" {
  description = "ARN of the control-plane Lambda's role."
  value       = aws_iam_role.lambda.arn
}

output "lambda_log_group_name" {
  description = "CloudWatch log group of the control-plane Lambda."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "api_role_arn" {
  description = "ARN of the role API Gateway uses to put webhook events on the bus."
  value       = aws_iam_role.api.arn
}

output "state_table_name" {
  description = "Name of the DynamoDB state table."
  value       = aws_dynamodb_table.state.name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB state table."
  value       = aws_dynamodb_table.state.arn
}

output "class_sizes_parameter_name" {
  description = "SSM parameter holding the class sizes JSON."
  value       = aws_ssm_parameter.class_sizes.name
}

output "default_class" {
  description = "Class of jobs without a class label."
  value       = local.default_class
}

output "ssm_prefix" {
  description = "SSM path of everything of this fleet (no trailing slash)."
  value       = local.ssm_prefix
}

output "secret_parameter_names" {
  description = "Names (never values) of the SSM SecureStrings holding the secrets."
  value = merge(
    { webhook_secret = aws_ssm_parameter.webhook_secret.name },
    local.pat_auth ? { github_pat = local.parameter_names.github_pat } : {},
    local.previous_secret_given ? { webhook_secret_previous = local.parameter_names.webhook_secret_previous } : {},
    local.app_auth ? { github_app_private_key = local.parameter_names.github_app_key } : {},
  )
}

output "dlq_url" {
  description = "URL of the dead-letter queue of the EventBridge targets and Lambda invocations."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of that queue."
  value       = aws_sqs_queue.dlq.arn
}

output "jit_bucket_name" {
  description = "S3 bucket of the one-shot JIT runner configs (readable only by the task execution role)."
  value       = aws_s3_bucket.jit.id
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (null when dashboard_enabled is false)."
  value       = one(aws_cloudwatch_dashboard.this[*].dashboard_name)
}

output "alarm_arns" {
  description = "Alarm key (dlq-not-empty, lambda-errors, queue-wait-p90, jobs-stranded) => ARN; empty when alarms_enabled is false."
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.arn }
}
