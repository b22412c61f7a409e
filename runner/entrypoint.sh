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
# The `docker` image (Docker classes, RUNNER_DOCKER=true in the task definition) starts as root:
# 3. dockerd is started with an empty environment (it never sees the JIT config or credentials),
#    owning a socket of group `docker`; the runner starts only once that socket exists;
# 4. the runner then runs as `runner` (uid 1001, a member of `docker`), via setpriv.
# Without RUNNER_DOCKER=true none of this happens.
#
# Exit codes: 2 configuration error (no ./run.sh), 3 no JIT config in the environment,
# 4 RUNNER_DOCKER=true but not root or no dockerd, 5 dockerd did not come up in time.
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

RUNNER_UID=1001
DOCKER_SOCKET="${RUNNER_DOCKER_SOCKET:-/var/run/docker.sock}"
DOCKER_WAIT_SECONDS="${RUNNER_DOCKER_WAIT_SECONDS:-60}"
CGROUP_ROOT="${RUNNER_DOCKER_CGROUP:-/sys/fs/cgroup}"

nest_cgroups() { # cgroup v2: move our processes out of the root so dockerd can delegate controllers
  [ -f "$CGROUP_ROOT/cgroup.controllers" ] || return 0
  mkdir -p "$CGROUP_ROOT/init"
  xargs -rn1 < "$CGROUP_ROOT/cgroup.procs" > "$CGROUP_ROOT/init/cgroup.procs" 2>/dev/null || :
  sed -e 's/ / +/g' -e 's/^/+/' < "$CGROUP_ROOT/cgroup.controllers" \
    > "$CGROUP_ROOT/cgroup.subtree_control" 2>/dev/null || :
}

start_docker() { # dockerd in the background, with an empty environment; waits for its socket
  [ "$(id -u)" = 0 ] || {
    log error "RUNNER_DOCKER=true needs the docker image, started as root (do not set the task's user)"
    exit 4
  }
  command -v dockerd > /dev/null || {
    log error "RUNNER_DOCKER=true but dockerd is not installed: the class needs the docker image variant"
    exit 4
  }
  [[ "$DOCKER_WAIT_SECONDS" =~ ^[1-9][0-9]{0,3}$ ]] || {
    log error "RUNNER_DOCKER_WAIT_SECONDS must be a number of seconds (1-9999)"
    exit 4
  }
  nest_cgroups
  log info "starting dockerd"
  env -i PATH="$PATH" dockerd --host="unix://$DOCKER_SOCKET" --group=docker < /dev/null >&2 &
  local pid=$! deadline=$((SECONDS + DOCKER_WAIT_SECONDS))
  until [ -S "$DOCKER_SOCKET" ]; do
    if ! kill -0 "$pid" 2> /dev/null; then
      log error "dockerd exited before its socket appeared (see its log above)"
      exit 5
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log error "dockerd did not create $DOCKER_SOCKET within ${DOCKER_WAIT_SECONDS}s"
      exit 5
    fi
    sleep 0.1
  done
  [ "$DOCKER_SOCKET" = /var/run/docker.sock ] || export DOCKER_HOST="unix://$DOCKER_SOCKET"
  log info "dockerd is ready"
}

# The docker image's path; the runner never runs as root: it drops to uid 1001 with its groups
# (docker: the socket's), no inheritable capabilities, and its own home.
as_runner=()
if [ "${RUNNER_DOCKER:-false}" = "true" ]; then
  start_docker
  export HOME=/home/runner
  as_runner=(setpriv --reuid="$RUNNER_UID" --regid="$RUNNER_UID" --init-groups --inh-caps=-all --)
fi
unset RUNNER_DOCKER RUNNER_DOCKER_SOCKET RUNNER_DOCKER_WAIT_SECONDS RUNNER_DOCKER_CGROUP
exec "${as_runner[@]}" ./run.sh "$@"
