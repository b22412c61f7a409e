"""Control-plane Lambda: GitHub workflow_job webhooks to ephemeral ECS Fargate runners."""
