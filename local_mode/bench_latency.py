"""The control plane's own latency (issue 13): webhook received → RunTask issued, per job.

`make bench` runs it as its `latency` section (local_mode/bench.py). The local webhook endpoint
(local_mode/webhook_server.py: the module's API Gateway mapping template, EventBridge routing
by a rule like the module's, the real handler with a Lambda-like context) in a thread, in
front of the emulator behind the bench's fault proxy and the GitHub stand-in. Senders POST
signed `queued` webhooks, each sender one at a time.

- received: the time a sender's POST leaves it (loopback: an upper bound on the latency);
- RunTask issued: the task's `createdAt`, the time the emulator took the RunTask that
  launched it (local_mode/emulator.py); a RunTask the proxy faulted never reaches it;
- a delivery the handler failed (HTTP 500) is sent again, as Lambda's async retries would
  (at most 3 attempts in all), and its latency still counts from the first POST.

First one job per sender, which find the handler's caches cold (secrets, class sizes: one
cold start per concurrent execution environment), reported on their own as `cold`. Then two
runs on one fleet: without faults, then with the burst's faults (20% of RunTask calls
throttled, 10% of Fargate Spot RunTask calls without capacity, 5% of GitHub calls 502).
Percentiles are nearest-rank. Figures, not assertions: the target (p99 under 1 s without
faults) is reported, never an exit status.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from typing import Any

import boto3

from ecsrunner.stats import percentile
from local_mode import bench, send_job, webhook_server
from local_mode.moto_server import MotoServer
from local_mode.webhook_server import EventRouter, LambdaRuntime, WebhookServer

LOG = bench.REPO_ROOT / ".build" / "bench" / "handler-latency.log"
JOBS, SENDERS = bench.LATENCY_JOBS, 4
TARGET_P99_SECONDS = 1.0
ATTEMPTS = bench.LAMBDA_ASYNC_ATTEMPTS
BUS = f"{bench.PREFIX}-github"
EVENT_SOURCE = "aws-runner-fleet.github"  # the module's (modules/control-plane/main.tf)


def latencies(received: dict[int, float], issued: dict[int, float]) -> list[float]:
    """Seconds from each job's webhook to its RunTask, for the jobs that have both."""
    return [issued[job] - at for job, at in received.items() if job in issued]


def summary(received: dict[int, float], issued: dict[int, float]) -> dict[str, Any]:
    found = latencies(received, issued)
    figures = {"jobs": len(received), "launched": len(found)}
    if found:
        figures.update(
            {
                name: round(float(percentile(found, p)), 3)
                for name, p in (("p50_seconds", 50), ("p99_seconds", 99))
            }
        )
        figures["max_seconds"] = round(max(found), 3)
    return figures


# --------------------------------------------------------------------------- the endpoint


def create_function(lambda_env: dict[str, str]) -> str:
    """The control plane's function in the emulator, as the module declares it, for the
    webhook endpoint's Lambda runtime to read (moto runs no Lambda: the endpoint does), and
    the rule that routes workflow_job events from the webhook bus to it."""
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = f"{bench.PREFIX}-control-plane"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    bucket = lambda_env["JIT_BUCKET"]
    jit_access = {  # the emulator checks an assumed role's S3 calls against its policies
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="jit", PolicyDocument=json.dumps(jit_access))
    function = boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="control_plane.handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # the endpoint runs the source tree
        Timeout=bench.LAMBDA_TIMEOUT,
        MemorySize=256,
        Environment={"Variables": lambda_env},
    )
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    pattern = {"source": [EVENT_SOURCE], "detail-type": ["workflow_job"]}
    events.put_rule(Name="workflow-job", EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="workflow-job",
        EventBusName=BUS,
        Targets=[{"Id": "control-plane", "Arn": function["FunctionArn"]}],
    )
    return name


def start_endpoint(function: str, aws_url: str, moto_url: str) -> WebhookServer:
    """The local webhook endpoint on a free port, its handler's AWS calls to `aws_url`."""
    runtime = LambdaRuntime(function, aws_url, bench.REGION, concurrency=SENDERS)
    router = EventRouter(runtime, moto_url, bench.REGION, webhook_bus=BUS)
    webhook_server.webhook_bus = BUS  # as the endpoint's main() sets it
    server = WebhookServer(("127.0.0.1", 0), router)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return server


# --------------------------------------------------------------------------- one run


def send_jobs(url: str, job_ids: list[int], seed: int) -> tuple[dict[int, float], int]:
    """POSTs each job's queued webhook (SENDERS at a time); (job → first POST time, resends)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible label draws
    labels = {job: rng.choice(bench.LABEL_SETS) for job in job_ids}
    received: dict[int, float] = {}
    resent = [0]
    lock = threading.Lock()
    pending = iter(job_ids)

    def sender() -> None:
        while True:
            with lock:
                job = next(pending, None)
            if job is None:
                return
            payload = send_job.workflow_job_payload(
                "queued", labels=labels[job], job_id=job, repository=bench.REPO
            )
            delivery = send_job.build_delivery(url, payload, bench.WEBHOOK_SECRET)
            delivery.headers["X-GitHub-Delivery"] = str(uuid.UUID(int=rng.getrandbits(128)))
            at = time.time()
            for attempt in range(ATTEMPTS):
                if delivery.send(timeout=bench.LAMBDA_TIMEOUT).status < 500:
                    break
                with lock:
                    resent[0] += attempt < ATTEMPTS - 1
            with lock:
                received[job] = at

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return received, resent[0]


def runtask_times(moto_url: str) -> dict[int, float]:
    """Each job's task: the time the emulator took its RunTask (the first, if several)."""
    ecs = boto3.client("ecs", endpoint_url=moto_url, region_name=bench.REGION)
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(
            cluster=bench.PREFIX, desiredStatus=desired
        )
        arns += [arn for page in pages for arn in page["taskArns"]]
    issued: dict[int, float] = {}
    for start in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster=bench.PREFIX, tasks=arns[start : start + 100])[
            "tasks"
        ]:
            job = bench.job_of_name(task.get("startedBy"))
            if job is not None:
                created = task["createdAt"].timestamp()
                issued[job] = min(created, issued.get(job, created))
    return issued


# --------------------------------------------------------------------------- the section


def latency(jobs: int = JOBS, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311
    moto = MotoServer.start(ecs_created_at=True)
    proxy = bench.RandomAwsFaults(moto.url, seed + 1).start()
    github = bench.flaky_github(seed + 2)
    runs = {"cold": False, "without_faults": False, "with_faults": True}
    sizes = {"cold": SENDERS, "without_faults": jobs, "with_faults": jobs}
    job_ids = {name: rng.sample(range(10**9, 9 * 10**9), sizes[name]) for name in runs}
    results: dict[str, Any] = {}
    try:
        with bench.environment(moto.client_env(bench.REGION)):
            lambda_env = bench.create_fleet(github.url)
            function = create_function(lambda_env)
            bench.say(f"latency: {jobs} jobs without faults, {jobs} with, {SENDERS} senders ...")
            LOG.parent.mkdir(parents=True, exist_ok=True)
            with LOG.open("w") as log, contextlib.redirect_stdout(log):
                server = start_endpoint(function, proxy.url, moto.url)
                url = "http://{}:{}/webhook".format(*server.server_address[:2])
                try:
                    for name, faults in runs.items():
                        proxy.faults_on = github.faults_on = faults
                        aws_before, github_before = len(proxy.requests()), len(github.requests())
                        received, resent = send_jobs(url, job_ids[name], seed + 3)
                        results[name] = {
                            **summary(received, runtask_times(moto.url)),
                            "resent_after_500": resent,
                        }
                        if faults:
                            aws = proxy.requests()[aws_before:]
                            results[name]["faults_injected"] = {
                                "runtask_throttled": sum(
                                    1 for r in aws if r["injected"] and r["status"] == 400
                                ),
                                "spot_capacity": sum(
                                    1 for r in aws if r["injected"] and r["status"] == 200
                                ),
                                "github_502": sum(
                                    1
                                    for r in github.requests()[github_before:]
                                    if r.get("status") == 502
                                ),
                            }
                finally:
                    server.shutdown()
                    server.server_close()
    finally:
        github.stop()
        proxy.stop()
        moto.stop()
    p99 = results["without_faults"].get("p99_seconds")
    return {
        **results,
        "senders": SENDERS,
        "target_p99_seconds": TARGET_P99_SECONDS,
        "target_met": p99 is not None and p99 < TARGET_P99_SECONDS,
    }
