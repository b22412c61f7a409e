"""`make bench` (`python -m local_mode bench`): the reliability and cost figures of the fleet.

burst      1,000 distinct queued jobs (GitHub's example payload, varied job ids and classes),
           20% delivered twice and 5% three times, in a seeded random order, through the real
           handler on 8 threads, against a moto server behind the fault proxy (every AWS call:
           20% of RunTask calls throttled, 10% of Fargate Spot RunTask calls without capacity,
           with CAPACITY_STRATEGY=spotPreferred) and the GitHub stand-in (5% of calls 502).
           An event whose handler raises is delivered again, as Lambda/EventBridge would,
           with jittered exponential backoff (scaled down to fit a benchmark), at most 185
           times. JIT configs are paced at 1,000 a second (GitHub's limit is rate_limited's
           subject). Calls are counted at the edges (the proxy's and the stand-in's request
           logs) and attributed to jobs by the job id or runner name they carry (the pacer's
           UpdateItem is of no job: not_of_one_job). Then 50 more jobs, one at a time and
           without faults, give the warm-cache launch path's calls.
           Invariant: tasks_launched == jobs, duplicates == 0, lost == 0 (else exit status 1).
cold_init  the built zip (scripts/build_lambda.py), extracted: median time to import
           control_plane.handler in a fresh interpreter (boto3 from this virtualenv, as the
           Lambda runtime provides it; no bytecode written, as /var/task is read-only)
           against `import boto3` alone, alternating in the same runs; and the zip's size.
cleanup    local_mode/bench_cleanup.py's figures, when that module is there.
rate_limited
           500 distinct queued jobs delivered at once (each once, no other fault) through the
           real handler on 48 threads (most of them wait for their slot, as concurrent
           Lambda invocations do), against the GitHub stand-in limiting generate-jitconfig
           to 20 a second (a token bucket of one second's worth), with the fleet paced to
           the same rate (GITHUB_JIT_CONFIGS_PER_MINUTE = 1,200). drain_seconds: from the
           first delivery until every job has its task; floor_seconds: jobs / limit; the
           share of JIT calls GitHub refused (403/429). Targets: drain_ratio <= 1.25,
           github_throttled_share <= 0.05. Invariant: lost == duplicates == 0 (else exit 1).
matching   local_mode/bench_matching.py: 500 jobs with label sets where subsets occur, assigned
           by the stand-in as GitHub does, run by the runner simulator, 5% of runners dying
           before their job and 5% of Spot tasks interrupted before theirs. Invariant:
           completed == jobs, ran_twice == 0, stranded == 0 (else exit 1).
latency    local_mode/bench_latency.py: the control plane's own latency, webhook received (POST
           to the local webhook endpoint) → RunTask issued (the task's createdAt at the
           emulator), p50 and p99 over 200 jobs (4 senders; 4 cold-cache jobs first, apart),
           without faults and with the burst's faults. Target: p99 < 1 s without faults
           (reported, not an exit status).

`--only rate_limited` (comma-separated) runs some sections. The last line printed is one
JSON object of the sections run; bench/results.json holds the same, keys sorted. The
handler's own log lines go to .build/bench/handler.log (rate_limited: handler-paced.log).
"""

# ruff: noqa: S311 - seeded pseudo-random draws make the benchmark reproducible

from __future__ import annotations

import argparse
import contextlib
import heapq
import importlib
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from control_plane import signature
from control_plane.handler import lambda_handler
from control_plane.workflow_job import job_id_of_runner

from local_mode import fault_proxy, github_api, send_job, vtl
from local_mode.fault_proxy import FaultProxy, Rule
from local_mode.github_api import GitHubAPI
from local_mode.moto_server import MotoServer
from local_mode.seed import seed_fleet
from local_mode.webhook_server import FakeLambdaContext, eventbridge_envelope

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results.json"
HANDLER_LOG = REPO_ROOT / ".build" / "bench" / "handler.log"
PACED_LOG = REPO_ROOT / ".build" / "bench" / "handler-paced.log"
REGION = "us-east-1"
ACCOUNT = "123456789012"
REPO = "Codertocat/Hello-World"  # the example payloads' repository
PAT = "ghp_benchmarktoken000000000000000000000000"
WEBHOOK_SECRET = "whsec-benchmark-7f3a9c21"  # noqa: S105 - the benchmark fleet's own
PREFIX = "bench"
LABEL_SETS = (
    ("self-hosted",),
    ("self-hosted", "class:small"),
    ("self-hosted", "class:medium"),
    ("self-hosted", "class:large"),
    ("self-hosted", "linux", "x64", "class:Medium"),
)
THROTTLE_RATE = 0.20
SPOT_SHORTAGE_RATE = 0.10
GITHUB_502_RATE = 0.05
TWICE, THREE_TIMES = 0.20, 0.05
MAX_DELIVERIES = 185  # EventBridge's default retry budget
REDELIVERY_BASE, REDELIVERY_CAP = 0.05, 2.0  # seconds; Lambda/EventBridge wait minutes
LAMBDA_ASYNC_ATTEMPTS = 3  # the module's Lambda async config: 1 + maximum_retry_attempts 2
LAMBDA_TIMEOUT = 120  # the module's default lambda_timeout
WARM_JOBS = 50
RATE_LIMITED_JOBS, JIT_LIMIT_PER_SECOND, RATE_LIMITED_WORKERS = 500, 20.0, 48
TARGETS = {
    "warm_path_calls_per_job": 5,
    "cold_init_ratio": 1.5,
    "zip_bytes": 5_000_000,
    "drain_ratio": 1.25,
    "github_throttled_share": 0.05,
}
SECTIONS = ("burst", "cold_init", "cleanup", "rate_limited", "matching", "latency")
MATCHING_JOBS = 500
LATENCY_JOBS = 200


def say(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def handler_environment(lambda_env: dict[str, str], log_path: Path) -> Iterator[None]:
    """The Lambda's environment for the handler run in process, its log lines to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        environment(lambda_env),
        log_path.open("w") as handler_log,
        contextlib.redirect_stdout(handler_log),
    ):
        yield


# --------------------------------------------------------------------------- fault injection


class RandomAwsFaults(FaultProxy):
    """The fault proxy, with RunTask faults drawn at random (seeded) instead of counted."""

    def __init__(self, upstream: str, seed: int) -> None:
        super().__init__(upstream)
        self.faults_on = True
        self._rng = random.Random(seed)

    def take(self, operation: str, body: bytes) -> Rule | None:
        rule = super().take(operation, body)
        if rule is not None or not self.faults_on or operation != "RunTask":
            return rule
        with self._lock:
            throttled = self._rng.random() < THROTTLE_RATE
            no_capacity = self._rng.random() < SPOT_SHORTAGE_RATE
        if throttled:
            return Rule.from_json(fault_proxy.throttling("RunTask"))
        if no_capacity and b'"FARGATE_SPOT"' in body:
            return Rule.from_json(fault_proxy.spot_capacity_shortage())
        return None


def flaky_github(seed: int) -> GitHubAPI:
    """The GitHub stand-in, answering a random (seeded) share of API calls with a 502."""
    api = GitHubAPI(pats=[PAT], repos=[REPO])
    rng = random.Random(seed)
    api.faults_on = True

    class Flaky(github_api.Handler):
        def _take_fault(self, state: Any, path: str) -> github_api.Fault | None:
            fault = super()._take_fault(state, path)  # called with the state's lock held
            if fault is None and api.faults_on and rng.random() < GITHUB_502_RATE:
                return github_api.Fault.from_json(0, {"status": 502})
            return fault

    api.server.RequestHandlerClass = Flaky
    return api.start()


# --------------------------------------------------------------------------- the fleet


def create_fleet(github_url: str) -> dict[str, str]:
    """The fleet's resources, as the module creates them; returns the Lambda's environment."""
    env = seed_fleet(
        PREFIX,
        repository=REPO,
        secrets={"webhook-secret": WEBHOOK_SECRET, "github-pat": PAT},
        image="runner:bench",
    )
    env.update(
        GITHUB_API_URL=github_url,
        RUNNER_EXTRA_LABELS="linux,x64",
        CAPACITY_STRATEGY="spotPreferred",
        # the burst's stand-in has no JIT limit: JIT configs paced far above what it drives
        GITHUB_JIT_CONFIGS_PER_MINUTE="60000",
    )
    return env


def queued_webhook(job_id: int, labels: tuple[str, ...], rng: random.Random) -> dict[str, Any]:
    """GitHub's signed webhook request for a queued job, as the mapping template forwards it."""
    payload = send_job.workflow_job_payload(
        "queued", labels=labels, job_id=job_id, repository=REPO, job_name=f"build-{job_id % 97}"
    )
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": str(uuid.UUID(int=rng.getrandbits(128))),
        "X-Hub-Signature-256": signature.sign(WEBHOOK_SECRET, body),
    }
    return vtl.put_events_entry(body, headers)


def burst_deliveries(jobs: int, rng: random.Random) -> tuple[list[tuple[int, dict]], Counter]:
    """(job id, PutEvents entry) per delivery: every job once, 20% twice, 5% three times."""
    job_ids = rng.sample(range(10**9, 9 * 10**9), jobs)
    copies = [3] * round(jobs * THREE_TIMES) + [2] * round(jobs * TWICE)
    copies += [1] * (jobs - len(copies))
    rng.shuffle(copies)
    deliveries = []
    for job_id, count in zip(job_ids, copies, strict=True):
        entry = queued_webhook(job_id, rng.choice(LABEL_SETS), rng)
        deliveries += [(job_id, entry)] * count
    rng.shuffle(deliveries)
    return deliveries, Counter(copies)


# --------------------------------------------------------------------------- delivering


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    job_id: int = field(compare=False)
    event: dict[str, Any] = field(compare=False)  # a retry delivers the same event again
    attempts: int = field(default=0, compare=False)


class Deliverer:
    """Hands events to `workers` threads running the handler; an event whose handler raised
    comes back after a jittered exponential backoff, at most MAX_DELIVERIES times."""

    def __init__(self, deliveries: list[tuple[int, dict]], seed: int) -> None:
        self._heap = [
            Delivery(0.0, seq, job, eventbridge_envelope(entry))
            for seq, (job, entry) in enumerate(deliveries)
        ]
        heapq.heapify(self._heap)
        self._seq = itertools.count(len(self._heap))
        self._outstanding = len(self._heap)
        self._cond = threading.Condition()
        self._rng = random.Random(seed)
        self.attempts: list[int] = []  # per event, once settled
        self.errors: Counter[str] = Counter()
        self.given_up: list[int] = []

    def _next(self) -> Delivery | None:
        with self._cond:
            while self._outstanding:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    return heapq.heappop(self._heap)
                self._cond.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _settle(self, delivery: Delivery, error: Exception | None) -> None:
        with self._cond:
            if error is not None:
                self.errors[type(error).__name__] += 1
                if delivery.attempts < MAX_DELIVERIES:
                    cap = min(REDELIVERY_CAP, REDELIVERY_BASE * 2 ** (delivery.attempts - 1))
                    delivery.due = time.monotonic() + self._rng.uniform(0, cap)
                    delivery.seq = next(self._seq)
                    heapq.heappush(self._heap, delivery)
                    self._cond.notify_all()
                    return
                self.given_up.append(delivery.job_id)
            self.attempts.append(delivery.attempts)
            self._outstanding -= 1
            self._cond.notify_all()

    def work(self) -> None:
        while (delivery := self._next()) is not None:
            delivery.attempts += 1
            try:
                lambda_handler(delivery.event, lambda_context())
            except Exception as exc:  # the Lambda failed: the event comes back
                self._settle(delivery, exc)
            else:
                self._settle(delivery, None)

    def run(self, workers: int) -> None:
        threads = [threading.Thread(target=self.work, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(
        function_name=f"{PREFIX}-control-plane",
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-control-plane",
        memory_limit_in_mb=256,
        timeout_seconds=LAMBDA_TIMEOUT,
    )


# --------------------------------------------------------------------------- counting


def job_of_name(name: Any) -> int | None:
    """The job id in a runner name or JIT parameter path of this fleet."""
    return job_id_of_runner(PREFIX, str(name).rsplit("/", 1)[-1]) if name else None


def job_of_aws_call(request: dict[str, Any]) -> int | None:
    body = request.get("body") or {}
    for key in ("Key", "Item"):  # DynamoDB
        pk = ((body.get(key) or {}).get("pk") or {}).get("S", "")
        if pk.startswith("job#"):
            return int(pk[4:])
    if not isinstance(body, dict):
        body = {}
    # S3: the JIT config's key names its runner (`/<bucket>/jit/<runner name>/<random>.env`)
    path = request.get("path", "").split("?", 1)[0].split("/")
    if len(path) > 3 and path[2] == "jit":
        return job_of_name(path[3])
    return job_of_name(body.get("startedBy") or body.get("Name"))  # ECS, SSM


def job_of_github_call(request: dict[str, Any]) -> int | None:
    body = request.get("body") if isinstance(request.get("body"), dict) else {}
    return job_of_name(body.get("name") or request.get("query", {}).get("name"))


def calls_per_job(
    aws: list[dict[str, Any]], github: list[dict[str, Any]], jobs: set[int]
) -> tuple[Counter[int], Counter[str], int]:
    """Calls per job, calls per operation, and calls no job can be named for."""
    per_job: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    shared = 0
    calls = [(job_of_aws_call(r), r["operation"]) for r in aws]
    calls += [
        (job_of_github_call(r), f"GitHub {r['method']} {r['path'].rsplit('/', 1)[-1]}")
        for r in github
    ]
    for job, operation in calls:
        if job in jobs:
            per_job[job] += 1
            per_operation[operation] += 1
        else:
            shared += 1
    return per_job, per_operation, shared


def tasks_by_job(moto_url: str) -> Counter[int]:
    """The tasks the emulator holds for each job (running or stopped), by their startedBy."""
    ecs = boto3.client("ecs", endpoint_url=moto_url, region_name=REGION)
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=PREFIX, desiredStatus=desired):
            arns += page["taskArns"]
    found: Counter[int] = Counter()
    for start in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster=PREFIX, tasks=arns[start : start + 100])["tasks"]:
            job = job_of_name(task.get("startedBy"))
            found[job if job is not None else -1] += 1
    return found


def records(moto_url: str) -> dict[int, dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url, region_name=REGION)
    deserializer = TypeDeserializer()
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=f"{PREFIX}-state"):
        for item in page["Items"]:
            if "job_id" in item:  # not the JIT pacer's schedule
                record = {k: deserializer.deserialize(v) for k, v in item.items()}
                found[int(record["job_id"])] = record
    return found


def spread(values: list[int]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 2), "max": max(values)} if values else {}


# --------------------------------------------------------------------------- burst


def burst(jobs: int, workers: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    moto = MotoServer.start()
    proxy = RandomAwsFaults(moto.url, seed + 1).start()
    github = flaky_github(seed + 2)
    deliveries, copies = burst_deliveries(jobs, rng)
    job_ids = {job for job, _ in deliveries}
    try:
        with environment(moto.client_env(REGION)):
            lambda_env = create_fleet(github.url)
            # every AWS call of the handler goes through the proxy: counted, and faulted
            lambda_env["AWS_ENDPOINT_URL"] = proxy.url
            say(f"burst: {jobs} jobs, {len(deliveries)} deliveries, {workers} workers ...")
            with handler_environment(lambda_env, HANDLER_LOG):
                deliverer = Deliverer(deliveries, seed + 3)
                started = time.monotonic()
                deliverer.run(workers)
                seconds = time.monotonic() - started
                burst_aws, burst_github = proxy.requests(), github.requests()
                warm = warm_path(rng, proxy, github)
            tasks = tasks_by_job(moto.url)
            stored = records(moto.url)
    finally:
        github.stop()
        proxy.stop()
        moto.stop()

    per_job, _, shared = calls_per_job(burst_aws, burst_github, job_ids)
    launched = sum(count for job, count in tasks.items() if job in job_ids)
    providers = Counter(
        stored[job].get("capacity_provider", "?") for job in job_ids if job in stored
    )
    redeliveries = sum(deliverer.attempts) - len(deliverer.attempts)
    result = {
        "jobs": jobs,
        "deliveries": len(deliveries),
        "delivered": {"once": copies[1], "twice": copies[2], "three_times": copies[3]},
        "workers": workers,
        "seconds": round(seconds, 1),
        "events_per_second": round(len(deliveries) / seconds, 1),
        "tasks_launched": launched,
        "duplicates": sum(
            count - 1 for job, count in tasks.items() if job in job_ids and count > 1
        ),
        "lost": sum(1 for job in job_ids if not tasks[job]),
        "records_without_task": sum(
            1 for job in job_ids if not stored.get(job, {}).get("task_arn")
        ),
        "capacity_providers": dict(sorted(providers.items())),
        "redeliveries": redeliveries,
        "redelivery_causes": dict(sorted(deliverer.errors.items())),
        "max_deliveries_of_one_event": max(deliverer.attempts),
        "events_beyond_lambda_async_retries": sum(
            1 for attempts in deliverer.attempts if attempts > LAMBDA_ASYNC_ATTEMPTS
        ),
        "events_given_up": len(deliverer.given_up),
        "faults_injected": {
            "runtask_throttled": sum(1 for r in burst_aws if r["injected"] and r["status"] == 400),
            "spot_capacity": sum(1 for r in burst_aws if r["injected"] and r["status"] == 200),
            "github_502": sum(1 for r in burst_github if r.get("status") == 502),
        },
        "calls_per_job": {
            **spread([per_job[job] for job in job_ids]),
            "aws_calls": len(burst_aws),
            "github_calls": len(burst_github),
            "not_of_one_job": shared,  # secrets and class sizes loaded into the caches
        },
        "warm_path": warm,
    }
    result["invariant_holds"] = (
        result["tasks_launched"] == jobs and result["duplicates"] == 0 and result["lost"] == 0
    )
    return result


def warm_path(rng: random.Random, proxy: RandomAwsFaults, github: GitHubAPI) -> dict[str, Any]:
    """Calls per job launched with warm caches and no fault, one job at a time."""
    proxy.faults_on = False
    github.faults_on = False
    aws_before, github_before = len(proxy.requests()), len(github.requests())
    job_ids = set(rng.sample(range(9 * 10**9, 10**10), WARM_JOBS))
    results = Counter()
    for job_id in sorted(job_ids):
        entry = queued_webhook(job_id, rng.choice(LABEL_SETS), rng)
        results[lambda_handler(eventbridge_envelope(entry), lambda_context())["result"]] += 1
    per_job, per_operation, shared = calls_per_job(
        proxy.requests()[aws_before:], github.requests()[github_before:], job_ids
    )
    calls = [per_job[job] for job in job_ids]
    return {
        "jobs": WARM_JOBS,
        "results": dict(results),
        **spread(calls),
        "per_operation": {op: round(n / WARM_JOBS, 2) for op, n in sorted(per_operation.items())},
        "not_of_one_job": shared,
        "target": TARGETS["warm_path_calls_per_job"],
        "target_met": max(calls) <= TARGETS["warm_path_calls_per_job"],
    }


# --------------------------------------------------------------------------- rate limited


def rate_limited(jobs: int, per_second: float, workers: int, seed: int) -> dict[str, Any]:
    """A burst against GitHub's JIT limit (the stand-in's), the fleet paced to the same rate."""
    rng = random.Random(seed)
    moto = MotoServer.start()
    github = GitHubAPI(pats=[PAT], repos=[REPO], jit_limit_per_second=per_second).start()
    job_ids = rng.sample(range(10**9, 9 * 10**9), jobs)
    deliveries = [(job, queued_webhook(job, rng.choice(LABEL_SETS), rng)) for job in job_ids]
    try:
        with environment(moto.client_env(REGION)):
            lambda_env = create_fleet(github.url)
            lambda_env["GITHUB_JIT_CONFIGS_PER_MINUTE"] = str(per_second * 60)
            say(f"rate_limited: {jobs} jobs at once, GitHub JIT limit {per_second:g}/s ...")
            with handler_environment(lambda_env, PACED_LOG):
                deliverer = Deliverer(deliveries, seed + 1)
                started = time.monotonic()
                deliverer.run(workers)
                drain = time.monotonic() - started
            tasks = tasks_by_job(moto.url)
        jit = github.requests(path=r"/generate-jitconfig$", method="POST")
    finally:
        github.stop()
        moto.stop()

    floor = jobs / per_second
    throttled = sum(1 for r in jit if r.get("status") in (403, 429))
    result = {
        "jobs": jobs,
        "workers": workers,
        "jit_limit_per_second": per_second,
        "fleet_jit_configs_per_minute": per_second * 60,
        "drain_seconds": round(drain, 1),
        "floor_seconds": round(floor, 1),
        "drain_ratio": round(drain / floor, 3),
        "jit_calls": len(jit),
        "github_throttled_share": round(throttled / max(1, len(jit)), 4),
        "redeliveries": sum(deliverer.attempts) - len(deliverer.attempts),
        "redelivery_causes": dict(sorted(deliverer.errors.items())),
        "lost": sum(1 for job in job_ids if not tasks[job]),
        "duplicates": sum(count - 1 for job, count in tasks.items() if count > 1),
        "targets": {k: TARGETS[k] for k in ("drain_ratio", "github_throttled_share")},
    }
    result["targets_met"] = (
        result["drain_ratio"] <= TARGETS["drain_ratio"]
        and result["github_throttled_share"] <= TARGETS["github_throttled_share"]
    )
    result["invariant_holds"] = result["lost"] == 0 and result["duplicates"] == 0
    return result


# --------------------------------------------------------------------------- cold init

# The package's imports, step by step in the order the handler makes them (each step's time
# excludes what an earlier step loaded); `boto3` alone is the baseline. PyJWT (and with it
# cryptography) is imported on first use by GitHub App auth, so not at init.
PACKAGE_STEPS = ("boto3", "requests", "control_plane.handler")
_IMPORT_CHILD = """
import json, sys, time
root, modules = sys.argv[1], sys.argv[2:]
if root:
    sys.path.insert(0, root)
before = set(sys.modules)
steps = {}
for module in modules:
    started = time.perf_counter()
    __import__(module)
    steps[module] = time.perf_counter() - started
found = {"steps": steps}
if root:
    import jwt.algorithms
    found["rsa_ready"] = jwt.algorithms.has_crypto  # the (stripped) Rust extension works
    runtime = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six"}
    found["outside_zip"] = sorted({
        name.split(".")[0] for name in set(sys.modules) - before
        if "site-packages" in (getattr(sys.modules[name], "__file__", None) or "")
        and not sys.modules[name].__file__.startswith(root)
        and name.split(".")[0] not in runtime
    })
print(json.dumps(found))
"""


def build_zip() -> Path:
    output = REPO_ROOT / ".build" / "lambda.zip"
    python = shutil.which("python3") or sys.executable  # as the module runs it
    subprocess.run(
        [python, str(REPO_ROOT / "scripts" / "build_lambda.py"), "--output", str(output)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return output


def time_imports(root: str, modules: tuple[str, ...], cwd: str) -> dict[str, Any]:
    """Imports `modules` in a fresh interpreter (with `root` first on its path)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHILD, root, *modules],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def cold_init(runs: int) -> dict[str, Any]:
    say(f"cold_init: building the zip, then {runs} fresh interpreters each ...")
    archive = build_zip()
    package: list[dict[str, float]] = []
    alone: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as root:
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(root)
        cwd = os.path.join(root, "control_plane")  # nothing importable by accident
        details = time_imports(root, PACKAGE_STEPS, cwd)  # warms the page cache: not counted
        time_imports("", ("boto3",), cwd)
        for run in range(runs):  # alternating which goes first
            for where in ("", root) if run % 2 else (root, ""):
                if where:
                    package.append(time_imports(root, PACKAGE_STEPS, cwd)["steps"])
                else:
                    alone.append(time_imports("", ("boto3",), cwd)["steps"]["boto3"])
    totals = [sum(steps.values()) for steps in package]
    ratio = statistics.median(totals) / statistics.median(alone)
    size = archive.stat().st_size
    return {
        "runs": runs,
        "package_import_seconds": round(statistics.median(totals), 3),
        "package_import_steps_seconds": {
            module: round(statistics.median(steps[module] for steps in package), 3)
            for module in PACKAGE_STEPS
        },
        "boto3_import_seconds": round(statistics.median(alone), 3),
        "ratio": round(ratio, 2),
        "ratio_target": TARGETS["cold_init_ratio"],
        "ratio_target_met": ratio <= TARGETS["cold_init_ratio"],
        "zip_bytes": size,
        "zip_target_bytes": TARGETS["zip_bytes"],
        "zip_target_met": size < TARGETS["zip_bytes"],
        "rsa_ready": details.get("rsa_ready"),
        # the zip targets CPython 3.12: its 3.12-only extension modules come from this venv
        "loaded_outside_the_zip": details.get("outside_zip"),
        "python": ".".join(map(str, sys.version_info[:3])),
    }


# --------------------------------------------------------------------------- cleanup


def cleanup() -> dict[str, Any]:
    try:
        module = importlib.import_module("local_mode.bench_cleanup")
    except ModuleNotFoundError as exc:
        if exc.name != "local_mode.bench_cleanup":
            raise
        return {"status": "not available"}
    say("cleanup: local_mode.bench_cleanup ...")
    return module.cleanup_benchmark()


# --------------------------------------------------------------------------- matching


def matching(jobs: int, workers: int, seed: int) -> dict[str, Any]:
    from local_mode.bench_matching import matching as run_matching  # it builds on this module

    say(f"matching: {jobs} jobs, GitHub's assignment, early deaths and Spot interruptions ...")
    return run_matching(jobs, workers, seed)


# --------------------------------------------------------------------------- latency


def latency(jobs: int, seed: int) -> dict[str, Any]:
    from local_mode.bench_latency import latency as run_latency  # it builds on this module

    return run_latency(jobs, seed)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_mode bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cold-init-runs", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        type=sections,
        default=SECTIONS,
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument("--rate-limited-jobs", type=int, default=RATE_LIMITED_JOBS)
    parser.add_argument("--jit-limit", type=float, default=JIT_LIMIT_PER_SECOND, help="per s")
    parser.add_argument("--rate-limited-workers", type=int, default=RATE_LIMITED_WORKERS)
    parser.add_argument("--matching-jobs", type=int, default=MATCHING_JOBS)
    parser.add_argument("--latency-jobs", type=int, default=LATENCY_JOBS)
    args = parser.parse_args(argv)

    started = time.monotonic()
    run = {
        "burst": lambda: burst(args.jobs, args.workers, args.seed),
        "cold_init": lambda: cold_init(args.cold_init_runs),
        "cleanup": cleanup,
        "rate_limited": lambda: rate_limited(
            args.rate_limited_jobs, args.jit_limit, args.rate_limited_workers, args.seed
        ),
        "matching": lambda: matching(args.matching_jobs, args.workers, args.seed),
        "latency": lambda: latency(args.latency_jobs, args.seed),
    }
    results: dict[str, Any] = {name: run[name]() for name in SECTIONS if name in args.only}
    results["seconds"] = round(time.monotonic() - started, 1)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    say(f"written to {args.output} (handler logs: {HANDLER_LOG})")
    print(json.dumps(results, sort_keys=True), flush=True)
    held = all(
        results[name]["invariant_holds"]
        for name in ("burst", "rate_limited", "matching")
        if name in results
    )
    return 0 if held else 1


def sections(value: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = set(chosen) - set(SECTIONS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
