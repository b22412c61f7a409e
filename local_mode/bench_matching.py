"""`make bench` section `matching`: every queued job runs once, the way GitHub assigns jobs.

Jobs with label sets where subsets occur (a runner made for `[self-hosted, class:large]` can
take a `[self-hosted]` job) are queued at the GitHub stand-in and their `queued` webhooks
delivered at once. The stand-in assigns them as GitHub does (an idle runner takes the oldest
queued job its labels cover) and sends `in_progress`/`completed` for the job each runner ran;
the runner simulator plays ECS and the runners; 5% of runners die before their job (the
entrypoint exits 3) and 5% of Fargate Spot tasks are interrupted before theirs. Every event
(webhook, ECS) goes through the real handler on moto, retried on failure as Lambda's async
invocation would (3 attempts); the scheduled cleanup runs every CLEANUP_EVERY seconds.

Figures: `completed` (jobs run exactly once), `ran_twice` (GitHub's view), `stranded` (never
ran), `runners_launched`, `duplicate_runners` (the fleet's view: tasks of a job beyond its
launch and relaunches), `spare_runners` (runners that took no job: stopped as spare),
`relaunches` (by cause), `spare_runner_seconds` (task RUNNING to its stop, p50/max).
Invariant: completed == jobs, ran_twice == stranded == duplicate_runners == 0.
"""

# ruff: noqa: S311 - seeded pseudo-random draws make the benchmark reproducible

from __future__ import annotations

import contextlib
import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from typing import Any

from control_plane import signature
from control_plane.cleanup.run import run_cleanup
from control_plane.handler import lambda_handler
from control_plane.retry import Deadline
from control_plane.services import Services
from control_plane.settings import Settings

from local_mode import bench, runner_sim, vtl
from local_mode.github_api import GitHubAPI
from local_mode.moto_server import MotoServer
from local_mode.webhook_server import eventbridge_envelope

LABEL_SETS = (
    ("self-hosted",),
    ("self-hosted", "class:large"),
    ("self-hosted", "linux", "class:small"),
    ("self-hosted", "linux"),
    ("self-hosted", "class:medium"),
    ("self-hosted", "linux", "x64", "class:large"),
)
DIE_RATE = SPOT_RATE = 0.05
HANDLER_ATTEMPTS = 3  # Lambda's async invocation: 1 + maximum_retry_attempts 2
CLEANUP_EVERY = 5.0  # seconds (the module's schedule is minutes; the benchmark is short)
JOB_SECONDS = 0.3
SETTLE_TIMEOUT = 600.0
MATCHING_LOG = bench.HANDLER_LOG.with_name("matching.log")


class Events:
    """The handler, invoked as EventBridge → Lambda would (retried on failure)."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()
        self.lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> None:
        for attempt in range(1, HANDLER_ATTEMPTS + 1):
            try:
                lambda_handler(event, bench.lambda_context())
                return
            except Exception as exc:  # Lambda retries the event (after minutes; here at once)
                with self.lock:
                    self.failures[type(exc).__name__] += 1
                if attempt < HANDLER_ATTEMPTS:
                    time.sleep(0.05 * attempt)

    def webhook(self, payload: dict[str, Any]) -> None:
        """A webhook the stand-in sends, through the API Gateway mapping template."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature.sign(bench.WEBHOOK_SECRET, body),
        }
        self.invoke(eventbridge_envelope(vtl.put_events_entry(body, headers)))

    def post(self, url: str, json: dict[str, Any], timeout: float = 0) -> Any:
        """The runner simulator's ECS events (it would POST them to the local endpoint)."""
        self.invoke(json)
        return type("Answer", (), {"status_code": 200, "text": ""})()


class Fates:
    """What becomes of each runner task (seeded): it runs, dies early, or Spot takes it."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.drawn: dict[str, str] = {}

    def __call__(self, task: dict[str, Any]) -> str:
        with self.lock:
            draw = self.rng.random()
        spot = task.get("capacityProviderName", "FARGATE_SPOT") == "FARGATE_SPOT"
        fate = runner_sim.RUN
        if draw < DIE_RATE:
            fate = runner_sim.DIE
        elif spot and draw < DIE_RATE + SPOT_RATE:
            fate = runner_sim.SPOT
        self.drawn[task["taskArn"]] = fate
        return fate


def queue_jobs(github: GitHubAPI, jobs: int, rng: random.Random) -> dict[int, tuple[str, ...]]:
    """The jobs GitHub shows queued, oldest first."""
    start = time.time() - jobs
    chosen = {
        job_id: rng.choice(LABEL_SETS) for job_id in rng.sample(range(10**9, 9 * 10**9), jobs)
    }
    github.call(
        github.state.seed_jobs,
        [
            {
                "repository": bench.REPO,
                "id": job_id,
                "labels": list(labels),
                "created_at": bench.github_api._iso(start + index),
            }
            for index, (job_id, labels) in enumerate(chosen.items())
        ],
    )
    return chosen


def run_cleanups(stop: threading.Event) -> None:
    while not stop.wait(CLEANUP_EVERY):
        with contextlib.suppress(Exception):
            run_cleanup(Services(Settings.from_env(), Deadline(bench.LAMBDA_TIMEOUT)))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def matching(jobs: int, workers: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    events = Events()
    moto = MotoServer.start()
    github = GitHubAPI(pats=[bench.PAT], repos=[bench.REPO], deliver=events.webhook).start()
    stop = threading.Event()
    try:
        with bench.environment(moto.client_env(bench.REGION)):
            lambda_env = bench.create_fleet(github.url)
            with bench.handler_environment(lambda_env, MATCHING_LOG):
                simulator = runner_sim.RunnerSimulator(
                    runner_sim.Settings(
                        region=bench.REGION,
                        aws_endpoint_url=moto.url,
                        cluster_name=bench.PREFIX,
                        webhook_url="",
                        events_url="",
                        webhook_secret="",
                        github_api_url=github.url,
                        github_repo=bench.REPO,
                        job_seconds=JOB_SECONDS,
                        poll_seconds=0.3,
                        real_entrypoint=False,
                    ),
                    post=events.post,
                    fate=Fates(seed + 1),
                )
                threading.Thread(target=simulator.run, daemon=True).start()
                threading.Thread(target=run_cleanups, args=(stop,), daemon=True).start()
                chosen = queue_jobs(github, jobs, rng)
                deliveries = [
                    (job_id, bench.queued_webhook(job_id, labels, rng))
                    for job_id, labels in chosen.items()
                ]
                started = time.monotonic()
                bench.Deliverer(deliveries, seed + 2).run(workers)
                settled = wait_until_done(github, set(chosen), started + SETTLE_TIMEOUT)
                seconds = time.monotonic() - started
                stop.set()
                simulator.stop_event.set()
                drain(github)  # the last webhooks still reach the handler with its settings
            stored = bench.records(moto.url)
            tasks = bench.tasks_by_job(moto.url)
    finally:
        stop.set()
        github.stop()
        moto.stop()
    return figures(github, simulator, chosen, stored, tasks, seconds, settled, events)


def drain(github: GitHubAPI, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(q.unfinished_tasks for q in github.state.outboxes):
        time.sleep(0.2)


def relaunches(record: dict[str, Any]) -> int:
    return int(record.get("relaunches") or 0) + int(record.get("displacements") or 0)


def wait_until_done(github: GitHubAPI, job_ids: set[int], deadline: float) -> bool:
    while time.monotonic() < deadline:
        with github.state.lock:
            open_jobs = sum(
                1 for job_id in job_ids if github.state.jobs[job_id]["status"] != "completed"
            )
        if not open_jobs:
            return True
        time.sleep(0.5)
    return False


def figures(
    github: GitHubAPI,
    simulator: runner_sim.RunnerSimulator,
    chosen: dict[int, tuple[str, ...]],
    stored: dict[int, dict[str, Any]],
    tasks: Counter[int],
    seconds: float,
    settled: bool,
    events: Events,
) -> dict[str, Any]:
    with github.state.lock:
        runs = Counter(job_id for job_id, _ in github.state.assignments)
        outcome = {job_id: dict(github.state.jobs[job_id]) for job_id in chosen}
    fates = Counter(simulator.fate.drawn.values())  # type: ignore[attr-defined]
    spare = [
        tracked.ended - tracked.started
        for arn, tracked in simulator.tracked.items()
        if simulator.fate.drawn.get(arn) == runner_sim.RUN  # type: ignore[attr-defined]
        and not tracked.job
        and tracked.ended
    ]
    completed = sum(
        1
        for job_id, job in outcome.items()
        if job["status"] == "completed" and job.get("conclusion") == "success" and runs[job_id] == 1
    )
    result = {
        "jobs": len(chosen),
        "label_sets": [list(labels) for labels in LABEL_SETS],
        "settled": settled,
        "seconds": round(seconds, 1),
        "completed": completed,
        "ran_twice": sum(1 for n in runs.values() if n > 1),
        "stranded": sum(1 for job in outcome.values() if job["status"] == "queued"),
        "runners_launched": sum(tasks.values()),
        # the fleet's own duplicates: more tasks for a job than its launch and relaunches
        "duplicate_runners": sum(
            max(0, tasks[job_id] - 1 - relaunches(stored.get(job_id, {}))) for job_id in chosen
        ),
        "runners_died_before_job": fates[runner_sim.DIE],
        "spot_interrupted_before_job": fates[runner_sim.SPOT],
        "jobs_on_another_jobs_runner": sum(
            1 for record in stored.values() if record.get("served_by")
        ),
        "spare_runners": len(spare),
        "spare_runner_seconds": (
            {"p50": round(statistics.median(spare), 1), "max": round(max(spare), 1)}
            if spare
            else {}
        ),
        "relaunches": {
            "died_or_interrupted": sum(int(r.get("relaunches") or 0) for r in stored.values()),
            "displaced": sum(int(r.get("displacements") or 0) for r in stored.values()),
        },
        "handler_failures": dict(events.failures),
        "stranded_records": [  # what the fleet knew of the first few, if any
            {key: str(stored.get(job_id, {}).get(key)) for key in ("job_id", "status", "reason")}
            for job_id, job in outcome.items()
            if job["status"] == "queued"
        ][:5],
    }
    result["invariant_holds"] = (
        result["completed"] == result["jobs"]
        and result["ran_twice"] == 0
        and result["stranded"] == 0
        and result["duplicate_runners"] == 0
    )
    return result
