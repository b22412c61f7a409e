#!/usr/bin/env bash
# AWS Runner Fleet: runner container entrypoint.
#
# 1. Reads the one-shot JIT runner config from the SSM SecureString named by
#    JIT_CONFIG_PARAMETER (GetParameter WithDecryption), with the task role's credentials.
# 2. Deletes the parameter (a config that was read is never read again).
# 3. exec's ./run.sh with the config in ACTIONS_RUNNER_INPUT_JITCONFIG. The runner reads it,
#    masks it and unsets it; it is never on a command line (job steps could read that from
#    /proc/*/cmdline) and never printed.
#
# Dependencies: bash, curl, jq, openssl, coreutils. No AWS CLI, no Python: requests are
# signed here with AWS Signature Version 4 (see runner/README.md for why).
#
# Credentials, in the AWS SDKs' order: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# (+AWS_SESSION_TOKEN); else the ECS container credentials endpoint
# (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or AWS_CONTAINER_CREDENTIALS_FULL_URI with
# AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]).
# Region: AWS_REGION, AWS_DEFAULT_REGION, else the task ARN from ECS_CONTAINER_METADATA_URI_V4.
# Endpoint: AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL (local mode), else the regional endpoint.
#
# Exit codes: 2 configuration error (missing/invalid variable, no ./run.sh),
#             3 the parameter does not exist (already used, or never written),
#             4 credentials could not be obtained, 5 an SSM call failed.
# On success this process becomes ./run.sh, and its exit code is the runner's.
set +x
set -uo pipefail
umask 077

readonly SERVICE="ssm"
MAX_ATTEMPTS="${ENTRYPOINT_MAX_ATTEMPTS:-5}" # SSM and credential calls, with backoff
[[ "$MAX_ATTEMPTS" =~ ^[1-9]$ ]] || MAX_ATTEMPTS=5
readonly MAX_ATTEMPTS

log() { # level message [key value]...: one JSON line on stderr; never pass a secret here
  local level="$1" message="$2"
  shift 2
  local -a args=(--arg level "$level" --arg msg "$message")
  # shellcheck disable=SC2016 # jq variables, not shell ones
  local filter='{level: $level, component: "runner-entrypoint", msg: $msg}'
  while [ "$#" -ge 2 ]; do
    args+=(--arg "$1" "$2")
    filter="$filter + {\"$1\": \$$1}"
    shift 2
  done
  jq -cn "${args[@]}" "$filter" >&2 || printf '%s: %s\n' "$level" "$message" >&2
}

die() { # exit_code message [key value]...
  local code="$1"
  shift
  log error "$@"
  exit "$code"
}

for tool in curl jq openssl sha256sum od; do
  command -v "$tool" >/dev/null 2>&1 || {
    printf '{"level":"error","component":"runner-entrypoint","msg":"required tool %s is missing"}\n' \
      "$tool" >&2
    exit 2
  }
done

# --- configuration ------------------------------------------------------------------------

parameter="${JIT_CONFIG_PARAMETER:-}"
[ -n "$parameter" ] ||
  die 2 "JIT_CONFIG_PARAMETER is not set: the task must be started with the SSM parameter name of its JIT runner config"
# SSM parameter names: letters, digits, _ . - / (a leading slash for hierarchies), ≤ 2048 chars.
[[ "$parameter" =~ ^[A-Za-z0-9_./-]{1,2048}$ ]] ||
  die 2 "JIT_CONFIG_PARAMETER is not a valid SSM parameter name"
[ -x ./run.sh ] || die 2 "./run.sh not found or not executable in the working directory" dir "$PWD"

region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
if [ -z "$region" ] && [ -n "${ECS_CONTAINER_METADATA_URI_V4:-}" ]; then
  # Task ARN: arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
  task_arn="$(curl -fsS --max-time 5 "${ECS_CONTAINER_METADATA_URI_V4}/task" 2>/dev/null |
    jq -r '.TaskARN // empty' 2>/dev/null)"
  region="$(printf '%s' "${task_arn:-}" | cut -d: -f4)"
fi
[ -n "$region" ] || die 2 "no AWS region: set AWS_REGION in the task definition"
[[ "$region" =~ ^[a-z0-9-]{1,32}$ ]] || die 2 "AWS region is not valid" region "$region"

endpoint="${AWS_ENDPOINT_URL_SSM:-${AWS_ENDPOINT_URL:-}}"
if [ -z "$endpoint" ]; then
  case "$region" in
    cn-*) endpoint="https://ssm.${region}.amazonaws.com.cn" ;;
    *) endpoint="https://ssm.${region}.amazonaws.com" ;;
  esac
fi
endpoint="${endpoint%/}"
[[ "$endpoint" =~ ^https?://(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$ ]] ||
  die 2 "the SSM endpoint URL must be scheme://host[:port] without a path" endpoint "$endpoint"
host="${endpoint#*://}"
case "$endpoint" in # SigV4 signs the host as the SDKs send it: without a default port
  https://*) host="${host%:443}" ;;
  http://*) host="${host%:80}" ;;
esac

# --- helpers --------------------------------------------------------------------------------

curl_quote() { # a value for a double-quoted curl config (-K) entry
  local value="${1//\\/\\\\}"
  printf '"%s"' "${value//\"/\\\"}"
}

# curl with every option read from stdin (-K -), so that no header (session token,
# signature, authorization token) ever appears on a command line.
# Prints the body, then a last line with the HTTP status. Returns curl's exit code.
curl_config() {
  curl -K - -sS --max-time 20 --connect-timeout 5 -w '\n%{http_code}'
}

sha256_hex() { sha256sum | cut -d' ' -f1; }

hmac_hex() { # hex_key data → hex HMAC-SHA256 (data on stdin of openssl, not on its argv)
  printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" | awk '{print $NF}'
}

to_hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

backoff() { # attempt number → sleep 2^(n-1) s with jitter, capped at 8 s
  local delay=$((1 << ($1 - 1)))
  [ "$delay" -gt 8 ] && delay=8
  sleep "$delay.$((RANDOM % 10))"
}

# --- credentials ----------------------------------------------------------------------------

access_key="" secret_key="" session_token=""

is_allowed_full_uri() { # the hosts the AWS SDKs accept for a plain-http FULL_URI
  local uri="$1"
  case "$uri" in
    https://*) return 0 ;;
    http://127.* | http://localhost:* | http://localhost/* | http://\[::1\]* | \
      http://169.254.170.2:* | http://169.254.170.2/* | \
      http://169.254.170.23:* | http://169.254.170.23/* | http://\[fd00:ec2::23\]*) return 0 ;;
  esac
  return 1
}

load_credentials() {
  if [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then
    access_key="$AWS_ACCESS_KEY_ID"
    secret_key="$AWS_SECRET_ACCESS_KEY"
    session_token="${AWS_SESSION_TOKEN:-}"
    return 0
  fi

  local uri="" auth=""
  if [ -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ]; then
    uri="http://169.254.170.2${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}"
  elif [ -n "${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ]; then
    uri="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
    is_allowed_full_uri "$uri" ||
      die 4 "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback/ECS/EKS address"
    if [ -n "${AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:-}" ]; then
      auth="$(cat -- "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" 2>/dev/null)" ||
        die 4 "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
    else
      auth="${AWS_CONTAINER_AUTHORIZATION_TOKEN:-}"
    fi
  else
    die 4 "no AWS credentials: the task needs a task role (ECS container credentials endpoint)"
  fi

  local attempt response status body config
  for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    config="url = $(curl_quote "$uri")"
    [ -n "$auth" ] && config+=$'\n'"header = $(curl_quote "Authorization: $auth")"
    response="$(printf '%s\n' "$config" | curl_config)" && {
      status="${response##*$'\n'}"
      body="${response%$'\n'*}"
      if [ "$status" = 200 ]; then
        access_key="$(printf '%s' "$body" | jq -r '.AccessKeyId // empty' 2>/dev/null)"
        secret_key="$(printf '%s' "$body" | jq -r '.SecretAccessKey // empty' 2>/dev/null)"
        session_token="$(printf '%s' "$body" | jq -r '.Token // empty' 2>/dev/null)"
        [ -n "$access_key" ] && [ -n "$secret_key" ] && return 0
        die 4 "the container credentials endpoint answered without credentials"
      fi
      case "$status" in
        429 | 5??) ;;
        *) die 4 "the container credentials endpoint refused the request" status "$status" ;;
      esac
    }
    [ "$attempt" -lt "$MAX_ATTEMPTS" ] && backoff "$attempt"
  done
  die 4 "the container credentials endpoint did not answer" attempts "$MAX_ATTEMPTS"
}

# --- SSM (JSON 1.1 protocol, SigV4) -----------------------------------------------------------

# ssm_call Action payload → sets ssm_status, ssm_body (on success), ssm_error and ssm_message
# (on failure); returns 0 when HTTP 200.
# Retries throttling, 5xx and connection errors with backoff; a new signature each time.
ssm_status="" ssm_body="" ssm_error="" ssm_message=""
ssm_call() {
  local action="$1" payload="$2"
  local attempt amz_date date_stamp scope payload_hash canonical string_to_sign key signature
  local signed_headers="content-type;host;x-amz-date;x-amz-target"
  [ -n "$session_token" ] && signed_headers="content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
  payload_hash="$(printf '%s' "$payload" | sha256_hex)"

  for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    amz_date="$(date -u +%Y%m%dT%H%M%SZ)"
    date_stamp="${amz_date%%T*}"
    scope="${date_stamp}/${region}/${SERVICE}/aws4_request"

    canonical="POST"$'\n'"/"$'\n'$'\n'
    canonical+="content-type:application/x-amz-json-1.1"$'\n'
    canonical+="host:${host}"$'\n'
    canonical+="x-amz-date:${amz_date}"$'\n'
    [ -n "$session_token" ] && canonical+="x-amz-security-token:${session_token}"$'\n'
    canonical+="x-amz-target:AmazonSSM.${action}"$'\n'
    canonical+=$'\n'"${signed_headers}"$'\n'"${payload_hash}"

    string_to_sign="AWS4-HMAC-SHA256"$'\n'"${amz_date}"$'\n'"${scope}"$'\n'
    string_to_sign+="$(printf '%s' "$canonical" | sha256_hex)"

    key="$(hmac_hex "$(to_hex "AWS4${secret_key}")" "$date_stamp")"
    key="$(hmac_hex "$key" "$region")"
    key="$(hmac_hex "$key" "$SERVICE")"
    key="$(hmac_hex "$key" "aws4_request")"
    signature="$(hmac_hex "$key" "$string_to_sign")"

    local config
    config="url = $(curl_quote "${endpoint}/")"$'\n'
    config+="request = \"POST\""$'\n'
    config+="header = $(curl_quote "Host: ${host}")"$'\n'
    config+="header = \"Content-Type: application/x-amz-json-1.1\""$'\n'
    config+="header = $(curl_quote "X-Amz-Target: AmazonSSM.${action}")"$'\n'
    config+="header = $(curl_quote "X-Amz-Date: ${amz_date}")"$'\n'
    [ -n "$session_token" ] &&
      config+="header = $(curl_quote "X-Amz-Security-Token: ${session_token}")"$'\n'
    config+="header = $(curl_quote "Authorization: AWS4-HMAC-SHA256 Credential=${access_key}/${scope}, SignedHeaders=${signed_headers}, Signature=${signature}")"$'\n'
    config+="data-binary = $(curl_quote "$payload")"

    local response
    if response="$(printf '%s\n' "$config" | curl_config 2>/dev/null)"; then
      ssm_status="${response##*$'\n'}"
      ssm_body="${response%$'\n'*}"
      unset response
      if [ "$ssm_status" = 200 ]; then
        ssm_error="" ssm_message=""
        return 0
      fi
      # An error body holds no secret: its type and message are safe to log.
      ssm_error="$(printf '%s' "$ssm_body" |
        jq -r '(.__type // .code // "") | split("#") | last' 2>/dev/null)"
      ssm_message="$(printf '%s' "$ssm_body" | jq -r '.message // .Message // ""' 2>/dev/null)"
      if [ -z "$ssm_error" ]; then # an XML error document (some proxies and emulators)
        ssm_error="$(printf '%s' "$ssm_body" | sed -n 's:.*<Code>\([A-Za-z0-9.]*\)</Code>.*:\1:p' | head -n 1)"
        ssm_message="$(printf '%s' "$ssm_body" | sed -n 's:.*<Message>\([^<]*\)</Message>.*:\1:p' | head -n 1)"
      fi
      ssm_error="${ssm_error//[^A-Za-z0-9._-]/}"
      ssm_error="${ssm_error:-HTTP$ssm_status}"
      ssm_message="${ssm_message:0:300}"
      ssm_body=""
      case "$ssm_status:$ssm_error" in
        5??:* | 429:* | *:ThrottlingException | *:ThrottledException | *:TooManyUpdates | \
          *:RequestLimitExceeded | *:InternalServerError) ;;
        *) return 1 ;;
      esac
    else
      ssm_status="000" ssm_error="ConnectionError" ssm_message="" ssm_body=""
    fi
    [ "$attempt" -lt "$MAX_ATTEMPTS" ] && backoff "$attempt"
  done
  return 1
}

# --- main -----------------------------------------------------------------------------------

load_credentials
payload_name="$(jq -cn --arg name "$parameter" '{Name: $name}')"
payload_get="$(jq -cn --arg name "$parameter" '{Name: $name, WithDecryption: true}')"

if ! ssm_call GetParameter "$payload_get"; then
  case "$ssm_error" in
    ParameterNotFound)
      die 3 "the JIT config parameter does not exist (already used by another task, or never written)" \
        parameter "$parameter" ;;
    *)
      die 5 "ssm:GetParameter failed" parameter "$parameter" status "$ssm_status" \
        error "$ssm_error" detail "$ssm_message" ;;
  esac
fi
jit_config="$(printf '%s' "$ssm_body" | jq -r '.Parameter.Value // empty' 2>/dev/null)"
ssm_body=""
[ -n "$jit_config" ] || die 5 "ssm:GetParameter answered without a value" parameter "$parameter"
log info "read the JIT runner config" parameter "$parameter"

if ssm_call DeleteParameter "$payload_name"; then
  log info "deleted the JIT runner config parameter" parameter "$parameter"
elif [ "$ssm_error" = ParameterNotFound ]; then
  log info "the JIT runner config parameter was already deleted" parameter "$parameter"
else
  # Never start a runner whose secret stays behind: fail, and let the control plane clean up.
  unset jit_config
  die 5 "ssm:DeleteParameter failed; not starting the runner" parameter "$parameter" \
    status "$ssm_status" error "$ssm_error" detail "$ssm_message"
fi

unset access_key secret_key session_token ssm_body
export ACTIONS_RUNNER_INPUT_JITCONFIG="$jit_config"
unset jit_config
log info "starting the runner"
exec ./run.sh "$@"
