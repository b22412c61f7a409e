#!/usr/bin/env bash
# AWS Runner Fleet: runner container entrypoint.
#
# ECS delivers the one-shot JIT runner config: the RunTask override names an S3 object as the
# container's environment file, ECS's agent reads it with the task execution role (which no
# process in the container ever sees) and starts this script with ACTIONS_RUNNER_INPUT_JITCONFIG
# set. This script only makes sure the job steps start clean:
#
# 1. no AWS credentials reach the runner and its job steps: the container credentials
#    variables (and any static keys) are removed, unless the module attached policies for jobs
#    (runner_job_policy_arns sets RUNNER_JOB_AWS_CREDENTIALS=true in the task definition);
# 2. exec ./run.sh. The runner reads ACTIONS_RUNNER_INPUT_JITCONFIG, masks it and unsets it; it
#    is never on a command line (job steps could read that from /proc/*/cmdline), never printed.
#
# What this cannot hide: processes of the same user can read /proc/1/environ (tini), which holds
# the task's original environment, including its own already-spent JIT config and the
# credentials URI. That is why the task role holds nothing of the fleet's (docs/security.md).
#
# Exit codes: 2 configuration error (no ./run.sh), 3 no JIT config in the environment.
# On success this process becomes ./run.sh, and its exit code is the runner's.
set +x
set -uo pipefail
umask 077

log() { # level message: one JSON line on stderr; never pass a secret here
  printf '{"level":"%s","component":"runner-entrypoint","msg":"%s"}\n' "$1" "$2" >&2
}

[ -n "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" ] || {
  log error "ACTIONS_RUNNER_INPUT_JITCONFIG is not set: the task must be started by the control plane, with its JIT config as an environment file"
  exit 3
}
[ -x ./run.sh ] || {
  log error "./run.sh not found or not executable in the working directory"
  exit 2
}

if [ "${RUNNER_JOB_AWS_CREDENTIALS:-false}" != "true" ]; then
  unset AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
    AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \
    AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
    AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
  log info "starting the runner (no AWS credentials for job steps)"
else
  log info "starting the runner (job steps get the task role's credentials: runner_job_policy_arns)"
fi
unset RUNNER_JOB_AWS_CREDENTIALS
exec ./run.sh "$@"
