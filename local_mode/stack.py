"""Bring-up and tear-down of the local stack.

`up` starts, on free loopback ports, each in its own process group with a log under
<state dir>/logs/:

- moto server (the AWS emulator),
- the GitHub REST API stand-in (local_mode/github_api.py),
- the root module applied to the emulator (local_mode/terraform, working copy and state
  under <state dir>/terraform),
- the webhook endpoint (local_mode/webhook_server.py: API Gateway → EventBridge → Lambda),
- the runner simulator (local_mode/runner_sim.py),
- local mode's CodeBuild (local_mode/codebuild.py: plays the image builds),

then writes <state dir>/stack.json and <state dir>/env. The state dir is .local/ in the
repository unless LOCAL_MODE_DIR says otherwise (the end-to-end test uses its own).
A second `up` reuses a healthy stack or restarts it; `down` ends every process group.
moto keeps its state in memory, so a new moto means a fresh `terraform apply`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import requests

from ecsrunner.config import LOCAL_MODE_VAR
from local_mode import ecs_agent
from local_mode.moto_server import MotoServer, free_port, hold_ecs_tasks
from local_mode.runner_sim import DEFAULT_JOB_SECONDS

REPO_ROOT = Path(__file__).resolve().parent.parent
TF_SOURCE = REPO_ROOT / "local_mode" / "terraform"
REGION = "us-east-1"
NAME_PREFIX = "runner-fleet"
# The repository of GitHub's example payloads (shared/fixtures/github): jobs name it.
GITHUB_REPO = "Codertocat/Hello-World"
CLASS_SIZES = {
    "small": {"cpu": 512, "memory": 1024},
    "medium": {"cpu": 1024, "memory": 2048},
    "large": {"cpu": 2048, "memory": 4096},
    # Docker-in-Docker on the EC2 capacity provider (local_mode/terraform keeps one instance)
    "docker": {"cpu": 2048, "memory": 4096, "docker": True},
}
# Marker in each process's command line: a recorded pid is only ours if it still matches.
MARKERS = {
    "moto": "local_mode.emulator",
    "github": "local_mode.github_api",
    "webhook": "local_mode.webhook_server",
    "runner_sim": "local_mode.runner_sim",
    "codebuild": "local_mode.codebuild",
}
ORDER = ["codebuild", "runner_sim", "webhook", "github", "moto"]  # tear-down order

# The emulator's credentials for every process of the stack (never a real profile).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

Say = Callable[[str], None]


class StackError(RuntimeError):
    """The stack could not be brought up (the message says where to look)."""


# --------------------------------------------------------------------------- paths


def state_dir() -> Path:
    return Path(os.environ.get("LOCAL_MODE_DIR") or REPO_ROOT / ".local").resolve()


def stack_file() -> Path:
    return state_dir() / "stack.json"


def env_file() -> Path:
    return state_dir() / "env"


def log_dir() -> Path:
    return state_dir() / "logs"


def tf_dir() -> Path:
    return state_dir() / "terraform"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One up/down at a time per state dir."""
    state_dir().mkdir(parents=True, exist_ok=True)
    with (state_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load() -> dict | None:
    try:
        return json.loads(stack_file().read_text())
    except (FileNotFoundError, ValueError):
        return None


def save(stack: dict) -> None:
    path = stack_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stack, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o600)  # holds the webhook secret
    tmp.replace(path)


# --------------------------------------------------------------------------- processes


def spawn(name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Starts a background process in its own process group, output to logs/<name>.log."""
    log_dir().mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **AWS_ENV, **(env or {}), "PYTHONUNBUFFERED": "1"}
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        full_env.pop(key, None)
    with (log_dir() / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    if not pid:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return marker is None or marker in cmdline


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # only zombies left? (children of this process that nobody reaped yet)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
        if int(fields[2]) == pgid:
            _reap(int(proc.name))
    return False


def kill_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGTERM to the whole process group, SIGKILL to what is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pgid)
            if not group_alive(pgid):
                return
            time.sleep(0.05)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_http(url: str, process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{name} exited with {process.returncode}: {tail(name)}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise StackError(f"{name} did not answer at {url} within {timeout:.0f}s: {tail(name)}")


def tail(name: str, lines: int = 15) -> str:
    path = log_dir() / f"{name}.log"
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"see {path}:\n" + "\n".join(text)


# --------------------------------------------------------------------------- Terraform


def terraform_env(stack: dict | None = None) -> dict[str, str]:
    env = dict(os.environ)
    rc = REPO_ROOT / ".build" / "terraformrc"
    configured = env.get("TF_CLI_CONFIG_FILE")
    if not configured or not Path(configured).is_file():  # `make setup` writes .build/terraformrc
        if not rc.exists():
            subprocess.run(
                ["bash", str(REPO_ROOT / "scripts" / "terraformrc.sh"), str(rc)], check=True
            )
        env["TF_CLI_CONFIG_FILE"] = str(rc)
    cache = REPO_ROOT / ".build" / "tf-plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env.setdefault("TF_PLUGIN_CACHE_DIR", str(cache))
    env.setdefault("TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE", "1")
    env.update(
        {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            # The provider gets its endpoints and keys from the configuration only.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    return env


def prepare_terraform_dir() -> Path:
    """Copies local_mode/terraform to the state dir, with the fleet's source made relative."""
    work = tf_dir()
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.tf"):
        old.unlink()
    source = os.path.relpath(REPO_ROOT, work)
    for tf in TF_SOURCE.glob("*.tf"):
        text = tf.read_text()
        text = re.sub(r'source\s*=\s*"\.\./\.\."', f'source = "{source}"', text)
        (work / tf.name).write_text(text)
    return work


def run_logged(argv: list[str], name: str, env: dict[str, str], cwd: Path | None = None) -> None:
    log_dir().mkdir(parents=True, exist_ok=True)
    with (log_dir() / f"{name}.log").open("ab") as log:
        log.write(f"\n$ {shlex.join(argv)}\n".encode())
        log.flush()
        result = subprocess.run(
            argv, cwd=cwd or REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise StackError(
            f"`{shlex.join(argv[:3])} ...` failed ({result.returncode}): {tail(name, 40)}"
        )


def build_lambda_zip(say: Say) -> Path | None:
    """scripts/build_lambda.py builds the Lambda zip (dependencies cached after the first run)."""
    script = REPO_ROOT / "scripts" / "build_lambda.py"
    if not script.exists():
        say("  (scripts/build_lambda.py not found: the module builds or finds the zip itself)")
        return None
    run_logged([sys.executable, str(script)], "build-lambda", dict(os.environ))
    built = REPO_ROOT / ".build" / "lambda.zip"
    return built if built.exists() else None


def terraform_apply(stack: dict, say: Say) -> dict:
    work = prepare_terraform_dir()
    for state in ("terraform.tfstate", "terraform.tfstate.backup"):
        (work / state).unlink(missing_ok=True)  # the new moto knows none of it
    variables = {
        "aws_endpoint_url": stack["aws_endpoint_url"],
        "aws_region": stack["region"],
        "name_prefix": stack["name_prefix"],
        "github_api_url": stack["github_api_url"],
        "github_repo": stack["github_repo"],
        "webhook_secret": stack["webhook_secret"],
        "runner_class_sizes": stack["class_sizes"],
    }
    if stack.get("lambda_zip"):
        variables["lambda_zip_path"] = stack["lambda_zip"]
    var_file = work / "local.tfvars.json"
    var_file.write_text(json.dumps(variables, indent=2))
    var_file.chmod(0o600)
    env = terraform_env(stack)
    chdir = f"-chdir={work}"
    say("  terraform init")
    run_logged(["terraform", chdir, "init", "-input=false", "-no-color"], "terraform", env)
    say("  terraform apply (root module → emulator)")
    run_logged(
        [
            "terraform",
            chdir,
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-parallelism=20",
            f"-var-file={var_file}",
        ],
        "terraform",
        env,
    )
    result = subprocess.run(
        ["terraform", chdir, "output", "-json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {key: value.get("value") for key, value in json.loads(result.stdout or "{}").items()}


def names_from_outputs(outputs: dict) -> dict[str, str]:
    """Resource names from the fleet module's outputs (local_mode/terraform/outputs.tf)."""
    fleet = outputs["fleet"]
    return {
        "runner_table": fleet["state_table_name"],
        "class_sizes_parameter": fleet["class_sizes_parameter_name"],
        "cluster_name": fleet["cluster_name"],
        "function_name": fleet["lambda_function_name"],
        "event_bus_name": fleet["event_bus_name"],
        "api_webhook_url": fleet["webhook_url"],
        "jit_bucket": fleet["jit_bucket_name"],
        "lambda_role_arn": fleet["lambda_role_arn"],
        "image_build_project": fleet["image_build_project_name"],
        "ecr_repository_url": fleet["ecr_repository_url"],
    }


# --------------------------------------------------------------------------- ECS agent


def register_container_instances(stack: dict) -> list[str]:
    """Plays the ECS agent of the Docker classes' instances once (local_mode/ecs_agent.py);
    returns the container instance ARNs registered."""
    clients = (aws_client(stack, name) for name in ("ecs", "autoscaling", "ec2"))
    return ecs_agent.sync(*clients, stack["cluster_name"], stack["region"])


# --------------------------------------------------------------------------- health


def aws_client(stack: dict, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fixed test credential
    )


def health(stack: dict) -> list[str]:
    """What is wrong with a recorded stack (empty when it is healthy)."""
    problems = []
    if stack.get("status") != "ready":
        problems.append(f"status is {stack.get('status')!r}")
    for name, marker in MARKERS.items():
        if not pid_alive(stack.get("pids", {}).get(name), marker):
            problems.append(f"{name} is not running")
    for name, port in stack.get("ports", {}).items():
        if not port_open(port):
            problems.append(f"{name} does not listen on {port}")
    if problems:
        return problems
    try:
        requests.get(f"{stack['webhook_base_url']}/health", timeout=2).raise_for_status()
    except requests.RequestException as exc:
        problems.append(f"webhook endpoint: {exc}")
    try:
        clusters = aws_client(stack, "ecs").describe_clusters(clusters=[stack["cluster_name"]])
        if not any(c.get("status") == "ACTIVE" for c in clusters.get("clusters", [])):
            problems.append(f"cluster {stack['cluster_name']} missing in the emulator")
    except Exception as exc:
        problems.append(f"emulator: {exc}")
    return problems


# --------------------------------------------------------------------------- up / down


def env_values(stack: dict) -> dict[str, str]:
    """What .local/env exports: the CLI and boto3 pointed at the stack."""
    return {
        "AWS_ENDPOINT_URL": stack["aws_endpoint_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": stack["region"],
        "AWS_REGION": stack["region"],
        "AWS_PAGER": "",
        "RUNNER_TABLE": stack["runner_table"],
        "STATE_TABLE": stack["runner_table"],
        "CLASS_SIZES_PARAM": stack["class_sizes_parameter"],
        "CLUSTER_NAME": stack["cluster_name"],
        "NAME_PREFIX": stack["name_prefix"],
        "SSM_PREFIX": f"/{stack['name_prefix']}",
        "GITHUB_API_URL": stack["github_api_url"],
        "WEBHOOK_URL": stack["webhook_url"],
        LOCAL_MODE_VAR: "1",  # the CLI says what local mode cannot do (ECS Exec)
    }


def env_lines(stack: dict) -> str:
    lines = [f"# local mode stack, written by `python -m local_mode up` ({stack['created_at']})"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env_values(stack).items()]
    # The virtualenv's bin first, so `ecsrunner` is the CLI installed by `make setup`.
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return "\n".join(lines) + "\n"


def cli_env(stack: dict) -> dict[str, str]:
    """os.environ plus what .local/env exports (for running the CLI against the stack)."""
    env = {**os.environ, **env_values(stack)}
    env.pop("AWS_PROFILE", None)
    return env


def write_env(stack: dict) -> None:
    path = env_file()
    path.write_text(env_lines(stack))
    path.chmod(0o600)


def github_argv(stack: dict) -> list[str]:
    return [
        sys.executable,
        "-m",
        "local_mode.github_api",
        "--host",
        "127.0.0.1",
        "--port",
        str(stack["ports"]["github"]),
    ]


def up(
    restart: bool = False,
    say: Say = print,
    job_seconds: float | None = None,
    fail_builds: list[str] | None = None,
) -> dict:
    """Brings the stack up (or reuses a healthy one) and returns stack.json's content.

    `fail_builds`: glob patterns of base images whose image builds fail (None: keep the
    running stack's, none for a new one); local_mode/codebuild.py reads them for each build.
    """
    with locked():
        existing = load()
        if existing and not restart:
            problems = health(existing) + changed_settings(existing, job_seconds)
            if not problems:
                say(f"Reusing the healthy local stack ({stack_file()}).")
                if fail_builds is not None:
                    existing["fail_builds"] = fail_builds
                    save(existing)
                write_env(existing)
                return existing
            say("Restarting the local stack: " + "; ".join(problems))
        if existing:
            _down(existing, say=lambda _msg: None)
        return _up(say, job_seconds, fail_builds or [])


def changed_settings(stack: dict, job_seconds: float | None) -> list[str]:
    """What a new `up` asks for that the running stack does not do (None: anything will do)."""
    running = stack.get("job_seconds", DEFAULT_JOB_SECONDS)
    if job_seconds is None or job_seconds == running:
        return []
    return [f"job seconds {running:g} → {job_seconds:g}"]


def _up(say: Say, job_seconds: float | None, fail_builds: list[str]) -> dict:
    started = time.monotonic()
    for old in log_dir().glob("*.log") if log_dir().is_dir() else []:
        old.unlink()
    ports = {"moto": free_port(), "github": free_port(), "webhook": free_port()}
    webhook_base = f"http://127.0.0.1:{ports['webhook']}"
    stack: dict[str, Any] = {
        "version": 1,
        "status": "starting",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "state_dir": str(state_dir()),
        "region": REGION,
        "name_prefix": NAME_PREFIX,
        "github_repo": GITHUB_REPO,
        "class_sizes": CLASS_SIZES,
        "aws_endpoint_url": f"http://127.0.0.1:{ports['moto']}",
        "github_api_url": f"http://127.0.0.1:{ports['github']}",
        "webhook_base_url": webhook_base,
        "webhook_url": f"{webhook_base}/webhook",
        "events_url": f"{webhook_base}/events",
        "webhook_secret": secrets.token_hex(20),
        "fail_builds": fail_builds,
        "job_seconds": DEFAULT_JOB_SECONDS if job_seconds is None else job_seconds,
        "ports": ports,
        "pids": {},
        "logs": str(log_dir()),
    }
    save(stack)
    try:
        say(f"Starting moto server on {stack['aws_endpoint_url']}")
        moto = MotoServer.start(
            port=ports["moto"], log_path=log_dir() / "moto.log", ecs_created_at=True
        )
        stack["pids"]["moto"] = moto.process.pid
        save(stack)
        hold_ecs_tasks(moto.url)

        say(f"Starting the GitHub API stand-in on {stack['github_api_url']}")
        github = spawn("github", github_argv(stack), env=github_env(stack))
        stack["pids"]["github"] = github.pid
        save(stack)

        say("Building the Lambda package")
        zip_path = build_lambda_zip(say)
        if zip_path:
            stack["lambda_zip"] = str(zip_path)
        wait_http(stack["github_api_url"], github, "github")

        say("Applying local_mode/terraform (the fleet's root module) to the emulator")
        t0 = time.monotonic()
        outputs = terraform_apply(stack, say)
        stack.update(names_from_outputs(outputs))
        stack["terraform_seconds"] = round(time.monotonic() - t0, 1)
        stack["subnet_id"] = outputs.get("subnet_id")
        stack["security_group_id"] = outputs.get("security_group_id")
        say("Registering the Docker classes' instances with the cluster (the ECS agent's part)")
        stack["container_instances"] = register_container_instances(stack)
        save(stack)

        say(f"Starting the webhook endpoint on {stack['webhook_url']}")
        webhook = spawn(
            "webhook",
            [
                sys.executable,
                "-m",
                "local_mode.webhook_server",
                "--port",
                str(ports["webhook"]),
                "--aws-endpoint-url",
                stack["aws_endpoint_url"],
                "--region",
                stack["region"],
                "--function-name",
                stack["function_name"],
                *(["--event-bus", stack["event_bus_name"]] if stack.get("event_bus_name") else []),
            ],
        )
        stack["pids"]["webhook"] = webhook.pid
        save(stack)
        wait_http(f"{webhook_base}/health", webhook, "webhook")

        say("Starting the runner simulator")
        # It reads its settings, job_seconds included, from stack.json.
        argv = [sys.executable, "-m", "local_mode.runner_sim", "--stack-file", str(stack_file())]
        sim = spawn("runner_sim", argv)
        stack["pids"]["runner_sim"] = sim.pid

        say("Starting local mode's CodeBuild (image builds)")
        codebuild = spawn(
            "codebuild",
            [sys.executable, "-m", "local_mode.codebuild", "--stack-file", str(stack_file())],
        )
        stack["pids"]["codebuild"] = codebuild.pid
        stack["status"] = "ready"
        stack["up_seconds"] = round(time.monotonic() - started, 1)
        save(stack)
        write_env(stack)
        time.sleep(0.3)
        if sim.poll() is not None:
            raise StackError(f"runner simulator exited with {sim.returncode}: {tail('runner_sim')}")
        if codebuild.poll() is not None:
            raise StackError(
                f"local CodeBuild exited with {codebuild.returncode}: {tail('codebuild')}"
            )
    except BaseException:
        _down(stack, say=lambda _msg: None)
        raise
    say(f"Local stack is up in {stack['up_seconds']:.0f}s ({stack_file()}).")
    return stack


def github_env(stack: dict) -> dict[str, str]:
    """What the GitHub stand-in may use to send webhooks back (it owns its own interface)."""
    return {
        "LOCAL_GITHUB_WEBHOOK_URL": stack["webhook_url"],
        "LOCAL_GITHUB_WEBHOOK_SECRET": stack["webhook_secret"],
        "LOCAL_GITHUB_REPO": stack["github_repo"],
    }


def down(say: Say = print) -> bool:
    """Stops every process of the stack; returns whether there was one."""
    with locked():
        stack = load()
        if not stack:
            say("No local stack is recorded.")
            return False
        _down(stack, say)
        return True


def _down(stack: dict, say: Say) -> None:
    pids = stack.get("pids", {})
    for name in ORDER:
        pid = pids.get(name)
        if pid and pid_alive(pid, MARKERS[name]):
            say(f"Stopping {name} (process group {pid})")
            kill_group(pid)
        elif pid:
            _reap(pid)
    for name, port in stack.get("ports", {}).items():
        deadline = time.monotonic() + 5
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if port_open(port):
            say(f"warning: port {port} ({name}) still answers")
    # moto's state died with it: the Terraform state would describe nothing.
    for state in ("terraform.tfstate", "terraform.tfstate.backup"):
        (tf_dir() / state).unlink(missing_ok=True)
    stack_file().unlink(missing_ok=True)
    env_file().unlink(missing_ok=True)
    say("Local stack stopped.")


def status() -> dict:
    stack = load()
    if not stack:
        return {"status": "down"}
    problems = health(stack)
    return {
        "status": "healthy" if not problems else "unhealthy",
        "problems": problems,
        "stack": stack,
        "processes": {
            name: {
                "pid": stack.get("pids", {}).get(name),
                "alive": pid_alive(stack.get("pids", {}).get(name), marker),
            }
            for name, marker in MARKERS.items()
        },
    }
