# Observability: a CloudWatch dashboard `<prefix>` and four alarms (five with docker classes)
# over the control plane's EMF metrics (namespace var.metrics_namespace, dimensions Fleet = name_prefix and
# Fleet + Class; lambda/control_plane/metrics.py) and AWS's own metrics of the dead-letter
# queue, the Lambda and the cluster.

locals {
  classes = sort(keys(var.runner_class_sizes))
  ns      = var.metrics_namespace

  alarm_actions = var.alarm_sns_topic_arn != null ? [var.alarm_sns_topic_arn] : []

  # A dashboard metric is [namespace, name, dimension name, value, ..., { options }].
  percentiles = ["p50", "p90"]
  # (concat(...), not flatten(): flatten would flatten the lines too)
  queue_wait_lines = concat([
    for class in local.classes : [
      for stat in local.percentiles :
      [local.ns, "QueueWaitSeconds", "Fleet", var.name_prefix, "Class", class, { stat = stat, label = "${class} ${stat}" }]
    ]
  ]...)
  start_time_lines = [
    for stat in local.percentiles :
    [local.ns, "StartSeconds", "Fleet", var.name_prefix, { stat = stat, label = stat }]
  ]
  job_count_lines = [
    for metric, label in { RunnersLaunched = "launched", JobsRejected = "rejected", LaunchFailures = "launch failures" } :
    [local.ns, metric, "Fleet", var.name_prefix, { stat = "Sum", label = label }]
  ]
  # Container Insights has no task count per task definition family, but every runner task
  # reports one `Task` event a minute, whose CpuReserved carries ClusterName and
  # TaskDefinitionFamily: their SampleCount over a minute is the number of tasks running.
  # A class runs under `<prefix>-<class>`, and with image builds also `<prefix>-<class>-img`.
  running_task_lines = concat([
    for class in local.classes : [
      for suffix, label in merge({ "" = class }, local.image_builds ? { "-img" = "${class}, image: labels" } : {}) :
      ["ECS/ContainerInsights", "CpuReserved", "ClusterName", var.cluster_name, "TaskDefinitionFamily", "${var.name_prefix}-${class}${suffix}", { stat = "SampleCount", label = label }]
    ]
  ]...)
  cost_lines = concat(
    [for class in local.classes : [local.ns, "JobCostUSD", "Fleet", var.name_prefix, "Class", class, { label = class }]],
    [[local.ns, "JobCostUSD", "Fleet", var.name_prefix, { label = "all classes" }]],
  )

  # Two widgets a row, in this order.
  widgets = concat([
    { title = "Queue wait by class, p50 and p90 (seconds)", metrics = local.queue_wait_lines, stat = "p90", period = 300 },
    { title = "Start time (RunTask to RUNNING), p50 and p90 (seconds)", metrics = local.start_time_lines, stat = "p90", period = 300 },
    { title = "Jobs: runners launched, jobs rejected, launch failures", metrics = local.job_count_lines, stat = "Sum", period = 300 },
    {
      title   = "Relaunches"
      metrics = [[local.ns, "Relaunches", "Fleet", var.name_prefix, { label = "relaunches" }]]
      stat    = "Sum"
      period  = 300
    },
    {
      title   = "Dead-letter queue depth (messages)"
      metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name, { label = "visible" }]]
      stat    = "Maximum"
      period  = 300
    },
    {
      title = "Control-plane Lambda errors and throttles"
      metrics = [
        for metric in ["Errors", "Throttles"] :
        ["AWS/Lambda", metric, "FunctionName", local.function_name, { label = lower(metric) }]
      ]
      stat   = "Sum"
      period = 300
    },
    { title = "Running tasks by class (Container Insights: needs container_insights enabled or enhanced)", metrics = local.running_task_lines, stat = "SampleCount", period = 60 },
    { title = "Cost per day by class (USD, estimated; Fargate classes only)", metrics = local.cost_lines, stat = "Sum", period = 86400 },
    ], [
    # With docker classes: their tasks waiting for an instance (a list of zero or one widget)
    for widget in [{
      title   = "Docker tasks waiting for an instance longer than ${var.docker_capacity_wait_minutes} minutes"
      metrics = [[local.ns, "TasksWaitingForCapacity", "Fleet", var.name_prefix, { label = "waiting" }]]
      stat    = "Maximum"
      period  = var.cleanup_interval_minutes * 60
    }] : widget if length(local.docker_classes) > 0
  ])

  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.widgets : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          region  = local.region
          view    = "timeSeries"
          stacked = false
          metrics = widget.metrics
          stat    = widget.stat
          period  = widget.period
        }
      }
    ]
  })
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.dashboard_enabled ? 1 : 0

  dashboard_name = var.name_prefix
  dashboard_body = local.dashboard_body
}

################################################################################
# Alarms
################################################################################

locals {
  alarms = {
    dlq-not-empty = {
      description = "Events of ${var.name_prefix} were dead-lettered (queue ${aws_sqs_queue.dlq.name}); the cleanup replays them."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.dlq.name }
      statistic   = "Maximum"
      percentile  = null
      period      = 300
      evaluations = 1
      datapoints  = 1
      threshold   = 0
    }
    lambda-errors = {
      description = "The control-plane Lambda of ${var.name_prefix} failed invocations: see its log group ${local.lambda_log_group}."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = { FunctionName = local.function_name }
      statistic   = "Sum"
      percentile  = null
      period      = 300
      evaluations = 1
      datapoints  = 1
      threshold   = 0
    }
    queue-wait-p90 = {
      description = "The p90 of ${var.name_prefix}'s job queue wait (GitHub created_at to started_at) stayed above ${var.alarm_queue_wait_seconds} s for 10 minutes."
      namespace   = local.ns
      metric      = "QueueWaitSeconds"
      dimensions  = { Fleet = var.name_prefix }
      statistic   = null
      percentile  = "p90"
      period      = 300
      evaluations = 2
      datapoints  = 2
      threshold   = var.alarm_queue_wait_seconds
    }
    jobs-stranded = {
      description = "Jobs GitHub shows queued for ${var.name_prefix} for over ${var.alarm_stranded_job_seconds} s with no runner (counted by the cleanup)."
      namespace   = local.ns
      metric      = "JobsStranded"
      dimensions  = { Fleet = var.name_prefix }
      statistic   = "Maximum"
      percentile  = null
      # The cleanup emits JobsStranded once a run: a window per run; a run may land in either
      # of two windows, so one breaching window of two alarms.
      period      = var.cleanup_interval_minutes * 60
      evaluations = 2
      datapoints  = 1
      threshold   = 0
    }
  }
  # With docker classes only (a map of zero or one alarm).
  docker_alarms = {
    for name, alarm in {
      capacity-wait = {
        description = "Docker tasks of ${var.name_prefix} waited for an EC2 instance over ${var.docker_capacity_wait_minutes} minutes (counted by the cleanup): check the Auto Scaling groups' activity, docker_max_instances and the instance types' capacity."
        namespace   = local.ns
        metric      = "TasksWaitingForCapacity"
        dimensions  = { Fleet = var.name_prefix }
        statistic   = "Maximum"
        percentile  = null
        # once a cleanup run, like JobsStranded
        period      = var.cleanup_interval_minutes * 60
        evaluations = 2
        datapoints  = 1
        threshold   = 0
      }
    } : name => alarm if length(local.docker_classes) > 0
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.alarms_enabled ? merge(local.alarms, local.docker_alarms) : {}

  alarm_name        = "${var.name_prefix}-${each.key}"
  alarm_description = each.value.description

  namespace          = each.value.namespace
  metric_name        = each.value.metric
  dimensions         = each.value.dimensions
  statistic          = each.value.statistic
  extended_statistic = each.value.percentile
  period             = each.value.period

  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = each.value.evaluations
  datapoints_to_alarm = each.value.datapoints
  # No data is no trouble: no jobs waited, no event was dead-lettered, no run failed.
  treat_missing_data = "notBreaching"
  # A percentile over fewer than 100 samples is "low sample count", which CloudWatch would
  # otherwise not evaluate: a small fleet would never alarm.
  evaluate_low_sample_count_percentiles = each.value.percentile != null ? "evaluate" : null

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = var.tags
}
