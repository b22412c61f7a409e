"""The scheduled cleanup (docs/reliability-cleanup.md): `run` orders the steps; `context` holds
one run's budget and reads; `policy` decides (pure); the other modules each do one kind of
work: `tasks` (ECS), `relaunch`, `dlq`, `github` (lost jobs, stale registrations), `jit`
(leftover configs), `images` (task definitions of images gone from ECR)."""
