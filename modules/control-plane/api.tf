# The webhook endpoint: POST /webhook on a REST API, integrated directly with EventBridge
# PutEvents (no Lambda in the request path, so GitHub gets its 2xx in milliseconds).

locals {
  api_stage_name = "v1"
  request_template = templatefile("${path.module}/templates/webhook-request.vtl", {
    event_bus_name = aws_cloudwatch_event_bus.github.name
    event_source   = local.event_source
  })
  response_template = file("${path.module}/templates/webhook-response.vtl")
}

resource "aws_api_gateway_rest_api" "webhook" {
  # checkov:skip=CKV_AWS_237: a replaced API has a new webhook URL either way; GitHub's webhook must be updated then
  name        = "${var.name_prefix}-webhook"
  description = "GitHub webhooks of ${var.name_prefix} → EventBridge bus ${local.event_bus_name}"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags
}

resource "aws_api_gateway_resource" "webhook" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  parent_id   = aws_api_gateway_rest_api.webhook.root_resource_id
  path_part   = "webhook"
}

# Deliveries without GitHub's event and signature headers get a 400 from API Gateway itself.
resource "aws_api_gateway_request_validator" "headers" {
  rest_api_id                 = aws_api_gateway_rest_api.webhook.id
  name                        = "github-headers"
  validate_request_parameters = true
  validate_request_body       = false
}

resource "aws_api_gateway_method" "webhook_post" {
  # checkov:skip=CKV_AWS_59: GitHub cannot sign AWS requests; each delivery's HMAC (X-Hub-Signature-256) is verified by the Lambda
  # checkov:skip=CKV2_AWS_53: the request validator checks GitHub's headers; the body is verified by its HMAC in the Lambda
  rest_api_id          = aws_api_gateway_rest_api.webhook.id
  resource_id          = aws_api_gateway_resource.webhook.id
  http_method          = "POST"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.headers.id

  request_parameters = {
    "method.request.header.X-GitHub-Event"      = true
    "method.request.header.X-Hub-Signature-256" = true
    "method.request.header.X-GitHub-Delivery"   = false
  }
}

data "aws_iam_policy_document" "api_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }

    # No aws:SourceAccount here: API Gateway does not send it when it assumes an integration's
    # credentials role, and every delivery would then fail with a 500.
  }
}

resource "aws_iam_role" "api" {
  name                 = "${var.name_prefix}-api-events-${local.region}"
  description          = "API Gateway of ${var.name_prefix} puts webhook events on bus ${local.event_bus_name}"
  assume_role_policy   = data.aws_iam_policy_document.api_assume.json
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary

  tags = var.tags
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "PutWebhookEvents"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.github.arn]
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "put-webhook-events"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_api_gateway_integration" "webhook_post" {
  rest_api_id             = aws_api_gateway_rest_api.webhook.id
  resource_id             = aws_api_gateway_resource.webhook.id
  http_method             = aws_api_gateway_method.webhook_post.http_method
  type                    = "AWS"
  integration_http_method = "POST"
  uri                     = "arn:${local.partition}:apigateway:${local.region}:events:action/PutEvents"
  credentials             = aws_iam_role.api.arn
  # GitHub sends application/json (set it in the webhook); anything else gets a 415.
  passthrough_behavior = "NEVER"

  request_parameters = {
    "integration.request.header.X-Amz-Target" = "'AWSEvents.PutEvents'"
    "integration.request.header.Content-Type" = "'application/x-amz-json-1.1'"
  }

  request_templates = {
    "application/json" = local.request_template
  }
}

resource "aws_api_gateway_method_response" "ok" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  resource_id = aws_api_gateway_resource.webhook.id
  http_method = aws_api_gateway_method.webhook_post.http_method
  status_code = "200"

  response_models = {
    "application/json" = "Empty"
  }
}

resource "aws_api_gateway_method_response" "bad_gateway" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  resource_id = aws_api_gateway_resource.webhook.id
  http_method = aws_api_gateway_method.webhook_post.http_method
  status_code = "502"

  response_models = {
    "application/json" = "Error"
  }
}

resource "aws_api_gateway_integration_response" "ok" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  resource_id = aws_api_gateway_resource.webhook.id
  http_method = aws_api_gateway_method.webhook_post.http_method
  status_code = aws_api_gateway_method_response.ok.status_code

  response_templates = {
    "application/json" = local.response_template
  }

  depends_on = [aws_api_gateway_integration.webhook_post]
}

resource "aws_api_gateway_integration_response" "bad_gateway" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  resource_id = aws_api_gateway_resource.webhook.id
  http_method = aws_api_gateway_method.webhook_post.http_method
  status_code = aws_api_gateway_method_response.bad_gateway.status_code
  # For AWS integrations the pattern matches the service's HTTP status.
  selection_pattern = "[45]\\d{2}"

  response_templates = {
    "application/json" = jsonencode({ message = "the event bus did not accept the delivery" })
  }

  depends_on = [aws_api_gateway_integration.webhook_post]
}

resource "aws_api_gateway_deployment" "webhook" {
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  description = "Webhook API of ${var.name_prefix}"

  # A new deployment whenever the route, its checks, the integration or the mappings change
  # (configured values only: attributes AWS fills in on read would redeploy on every plan).
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.webhook.id,
      aws_api_gateway_method.webhook_post.id,
      aws_api_gateway_method.webhook_post.request_parameters,
      aws_api_gateway_request_validator.headers.id,
      aws_api_gateway_integration.webhook_post.id,
      aws_api_gateway_integration.webhook_post.uri,
      aws_api_gateway_integration.webhook_post.credentials,
      aws_api_gateway_integration.webhook_post.request_parameters,
      local.request_template,
      local.response_template,
      aws_api_gateway_integration_response.bad_gateway.selection_pattern,
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; a customer key needs a key policy for the logs service
  # checkov:skip=CKV_AWS_338: retention is the user's choice (log_retention_days, default 30 days)
  count = var.api_access_logs_enabled ? 1 : 0

  name              = "/aws/apigateway/${var.name_prefix}-webhook"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_api_gateway_stage" "webhook" {
  # checkov:skip=CKV_AWS_76: access logging is optional (api_access_logs_enabled): it needs the account-wide API Gateway CloudWatch role
  # checkov:skip=CKV_AWS_73: X-Ray adds nothing to a direct EventBridge integration; the Lambda is traced
  # checkov:skip=CKV_AWS_120: every delivery is unique: nothing to cache
  # checkov:skip=CKV2_AWS_29: a WAF costs a web ACL per fleet; throttling and the HMAC check bound abuse
  # checkov:skip=CKV2_AWS_51: GitHub calls the endpoint, not API Gateway calling a backend with a client certificate
  # checkov:skip=CKV2_AWS_4: execution logging needs the account-wide API Gateway CloudWatch role; access logs are optional
  rest_api_id   = aws_api_gateway_rest_api.webhook.id
  deployment_id = aws_api_gateway_deployment.webhook.id
  stage_name    = local.api_stage_name
  description   = "GitHub webhook endpoint"

  dynamic "access_log_settings" {
    for_each = var.api_access_logs_enabled ? [1] : []

    content {
      destination_arn = aws_cloudwatch_log_group.api_access[0].arn
      format = jsonencode({
        requestId    = "$context.requestId"
        ip           = "$context.identity.sourceIp"
        requestTime  = "$context.requestTime"
        httpMethod   = "$context.httpMethod"
        resourcePath = "$context.resourcePath"
        status       = "$context.status"
        error        = "$context.integration.error"
      })
    }
  }

  tags = var.tags
}

# Throttling bounds what an unauthenticated flood can cost (every request reaches EventBridge
# and the Lambda, which drops it at the HMAC check).
resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225: every delivery is unique: nothing to cache
  rest_api_id = aws_api_gateway_rest_api.webhook.id
  stage_name  = aws_api_gateway_stage.webhook.stage_name
  method_path = "*/*"

  settings {
    throttling_rate_limit  = var.api_throttling_rate_limit
    throttling_burst_limit = var.api_throttling_burst_limit
    metrics_enabled        = true
  }
}
