"""Metrics (EMF lines on stdout) and each job's times and cost in its record: measured from
GitHub's and ECS's own times, recorded and counted once however often an event arrives."""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from control_plane import metrics
from control_plane.cleanup.policy import stranded_job
from control_plane.cost import Prices, PricesError, bill, billed_seconds
from control_plane.settings import Settings, SettingsError
from control_plane.state import iso

from local_mode import fault_proxy
from tests.control_plane import emf
from tests.control_plane.cleanup_helpers import clean, launch, seed_job
from tests.control_plane.harness import Fleet, job_payload, task_state_change

T0 = 1_790_000_000.0  # GitHub queued the job
LABELS = ["self-hosted", "class:medium"]
MEDIUM_ON_DEMAND_HOURLY = 1 * 0.04048 + 2 * 0.004445  # 1 vCPU, 2 GB, x86_64


def at(seconds: float) -> str:
    return iso(T0 + seconds)


def timed(payload: dict[str, Any], **times: float) -> dict[str, Any]:
    """`payload` with GitHub's job times (created_at, started_at, completed_at) T0 + seconds."""
    payload = copy.deepcopy(payload)
    payload["workflow_job"].update({name: at(s) for name, s in times.items()})
    return payload


def job_events(fleet: Fleet, job_id: int, task_arn: str) -> list[dict[str, Any]]:
    """Every event of one job after its launch, as GitHub and ECS send them."""
    name = fleet.runner_name(job_id)
    ecs_times = {"createdAt": at(10), "pullStartedAt": at(13), "startedAt": at(52.5)}
    stopped = {
        **ecs_times,
        "stoppedAt": at(13 + 400.2),
        "capacityProviderName": "FARGATE",
        "cpu": "1024",
        "memory": "2048",
        "stopCode": "EssentialContainerExited",
    }
    running = job_payload("in_progress", job_id=job_id, runner_name=name, labels=LABELS)
    completed = job_payload("completed", job_id=job_id, runner_name=name, labels=LABELS)
    return [
        task_state_change(fleet, task_arn, "RUNNING", **ecs_times),
        timed(running, created_at=0, started_at=95),
        timed(completed, created_at=0, started_at=95, completed_at=395),
        task_state_change(fleet, task_arn, "STOPPED", exit_code=0, **stopped),
    ]


def job_measurements(out: str) -> list[emf.Measurement]:
    """The metrics of `out` about jobs (not GitHub's rate limit, one per API call)."""
    return [m for m in emf.measurements(out) if m.name != "GitHubRateLimitRemaining"]


def send(fleet: Fleet, event: dict[str, Any]) -> dict[str, Any]:
    return fleet.invoke(event) if "source" in event else fleet.deliver(event)


def test_the_emf_check_refuses_what_the_specification_refuses() -> None:
    good = metrics.document("AWSRunnerFleet", "fleet", "JobCostUSD", 0.01, "medium", 1)
    emf.validate(good)
    broken = [
        lambda d: d.pop("Class"),  # a dimension that is not a member
        lambda d: d.update(JobCostUSD="0.01"),  # a metric that is not a number
        lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Dollars"),
        lambda d: d["_aws"].pop("Timestamp"),
        lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Namespace=""),
    ]
    for breaks in broken:
        document = copy.deepcopy(good)
        breaks(document)
        with pytest.raises(AssertionError):
            emf.validate(document)


def test_a_job_publishes_each_measurement_once_and_its_record_holds_its_times_and_cost(
    fleet: Fleet, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_NAMESPACE", "Team/Runners")
    queued = timed(job_payload(labels=LABELS), created_at=0, started_at=0)
    job_id = queued["workflow_job"]["id"]
    task_arn = fleet.deliver(queued)["task_arn"]
    events = job_events(fleet, job_id, task_arn)
    for event in events:
        send(fleet, event)
    out = capsys.readouterr().out

    expected_cost = MEDIUM_ON_DEMAND_HOURLY * 401 / 3600  # 400.2 s billed as 401
    measured = job_measurements(out)
    published = {m.name: m for m in measured}
    assert sorted(published) == sorted(
        [
            "JobsQueued",
            "RunnersLaunched",
            "StartSeconds",
            "QueueWaitSeconds",
            "JobSeconds",
            "JobCostUSD",
        ]
    )
    assert len(measured) == len(published)  # each once
    assert published["QueueWaitSeconds"].value == 95
    assert published["StartSeconds"].value == 42.5
    assert published["JobSeconds"].value == 300
    assert published["JobCostUSD"].value == pytest.approx(expected_cost, abs=1e-6)
    for m in published.values():
        assert m.namespace == "Team/Runners"
        assert m.dimensions == {"Fleet": fleet.prefix, "Class": "medium"}
        assert m.dimension_sets == (("Fleet",), ("Fleet", "Class"))
    assert published["StartSeconds"].unit == "Seconds"
    assert published["JobsQueued"].unit == "Count"

    record = fleet.record(job_id)
    assert (record["queue_wait_seconds"], record["start_seconds"], record["job_seconds"]) == (
        95,
        Decimal("42.5"),
        300,
    )
    assert record["billed_seconds"] == 401
    assert float(record["cost_usd"]) == pytest.approx(expected_cost, abs=1e-6)
    assert (record["vcpu"], record["memory_gb"], record["architecture"]) == (1, 2, "x86_64")
    assert record["capacity_provider"] == "FARGATE"

    # at-least-once delivery: every event again changes no measurement and counts nothing
    fleet.deliver(queued)
    for event in events:
        send(fleet, event)
    assert job_measurements(capsys.readouterr().out) == []
    again = fleet.record(job_id)
    fields = ("queue_wait_seconds", "start_seconds", "job_seconds", "billed_seconds", "cost_usd")
    assert {k: again[k] for k in fields} == {k: record[k] for k in fields}


def test_a_relaunched_job_pays_for_both_of_its_tasks(fleet: Fleet, capsys) -> None:
    """The first runner dies before its job (Spot); the job's cost is both tasks' bills."""
    queued = job_payload(labels=LABELS)
    job_id = queued["workflow_job"]["id"]
    first = fleet.deliver(queued)["task_arn"]
    seed_job(fleet, job_id, labels=LABELS)  # GitHub still shows it queued: relaunched
    fleet.invoke(task_state_change(fleet, first, "RUNNING"))
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=first, reason="Spot")
    interrupted = task_state_change(
        fleet,
        first,
        "STOPPED",
        stopCode="SpotInterruption",
        pullStartedAt=at(0),
        stoppedAt=at(30),  # the one-minute minimum
        capacityProviderName="FARGATE_SPOT",
    )
    fleet.invoke(interrupted)
    second = fleet.record(job_id)["task_arn"]
    assert second != first
    fleet.invoke(
        task_state_change(
            fleet,
            second,
            "STOPPED",
            exit_code=0,
            stopCode="EssentialContainerExited",
            pullStartedAt=at(100),
            stoppedAt=at(220),
            capacityProviderName="FARGATE",
        )
    )
    fleet.invoke(interrupted)  # the first task's event again: billed once

    spot = MEDIUM_ON_DEMAND_HOURLY * 0.3 * 60 / 3600  # the default 70 % Spot discount
    on_demand = MEDIUM_ON_DEMAND_HOURLY * 120 / 3600
    record = fleet.record(job_id)
    assert record["billed_seconds"] == 180
    assert float(record["cost_usd"]) == pytest.approx(spot + on_demand, abs=2e-6)
    assert record["billed_tasks"] == [first, second]
    out = capsys.readouterr().out
    costs = [m.value for m in emf.named(out, "JobCostUSD")]
    assert costs == pytest.approx([spot, on_demand], abs=1e-6)
    assert [m.dimensions["Class"] for m in emf.named(out, "Relaunches")] == ["medium"]


def test_a_runner_that_took_another_job_counts_the_relaunch_and_the_spare_once(
    fleet: Fleet, capsys
) -> None:
    """GitHub gives job A to the runner made for job B (a large one): B is relaunched and A's
    own runner retired, each counted once however often the event arrives; the handed-over
    task's late bill leaves B's current capacity provider alone."""
    small, large = ["self-hosted"], ["self-hosted", "class:large"]
    job_a, job_b = launch(fleet, tuple(small)), launch(fleet, tuple(large))
    seed_job(fleet, job_a, labels=small)
    seed_job(fleet, job_b, labels=large)
    for job in (job_a, job_b):
        fleet.invoke(task_state_change(fleet, fleet.record(job)["task_arn"], "RUNNING"))
    handed_over = fleet.record(job_b)["task_arn"]
    capsys.readouterr()
    took = job_payload(
        "in_progress", labels=small, job_id=job_a, runner_name=fleet.runner_name(job_b)
    )
    for _ in range(2):
        fleet.deliver(timed(took, created_at=0, started_at=30))
    counted = Counter(
        (m.name, m.dimensions.get("Class")) for m in job_measurements(capsys.readouterr().out)
    )
    assert counted == {
        ("Relaunches", "large"): 1,
        ("RunnersLaunched", "large"): 1,
        ("SpareRunnersStopped", "small"): 1,
        ("QueueWaitSeconds", "small"): 1,  # job A's own wait, whichever runner took it
    }

    provider = fleet.record(job_b)["capacity_provider"]
    fleet.invoke(
        task_state_change(
            fleet,
            handed_over,
            "STOPPED",
            exit_code=0,
            pullStartedAt=at(0),
            stoppedAt=at(300),
            capacityProviderName="FARGATE_SPOT" if provider == "FARGATE" else "FARGATE",
        )
    )
    record = fleet.record(job_b)
    assert record["capacity_provider"] == provider  # still the new task's
    assert record["billed_tasks"] == [handed_over] and record["billed_seconds"] == 300


def test_rejections_and_failed_launches_are_counted(fleet: Fleet, capsys) -> None:
    fleet.deliver(job_payload(labels=["self-hosted", "class:Not-A-Class-123"]))
    fleet.ecs_proxy.add(fault_proxy.server_error("RunTask", count=100))
    with pytest.raises(Exception):  # noqa: B017 - the launch fails: the event is retried
        fleet.deliver(job_payload(labels=LABELS), timeout=5)
    out = capsys.readouterr().out

    (rejected,) = emf.named(out, "JobsRejected")
    # fleet-wide only: a workflow's label must not mint a new metric dimension value
    assert rejected.dimensions == {"Fleet": fleet.prefix}
    assert rejected.dimension_sets == (("Fleet",),)
    failures = emf.named(out, "LaunchFailures")
    assert [m.dimensions.get("Class") for m in failures] == ["medium"]
    assert not emf.named(out, "RunnersLaunched")


def test_githubs_rate_limit_is_published_as_github_reports_it(fleet: Fleet, capsys) -> None:
    fleet.deliver(job_payload(labels=LABELS))  # generate-jitconfig: one API call
    fleet.github.add_fault("generate-jitconfig", status=403, rate_limit_reset_in=1, count=1)
    fleet.deliver(job_payload(labels=LABELS))  # rate-limited once, then the call passes
    remaining = [m.value for m in emf.named(capsys.readouterr().out, "GitHubRateLimitRemaining")]
    assert remaining == [4999, 0, 4997]  # the refused call counts too


def test_the_cleanup_publishes_the_stranded_jobs_it_sees(
    fleet: Fleet, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRANDED_JOB_SECONDS", "1800")
    seed_job(fleet, 990001, labels=["self-hosted"], created_at=iso(T0))  # queued for long
    clean()
    assert [m.value for m in emf.named(capsys.readouterr().out, "JobsStranded")] == [1]

    seed_job(fleet, 990001, labels=["self-hosted"], created_at=iso(T0), status="completed")
    clean()
    assert [m.value for m in emf.named(capsys.readouterr().out, "JobsStranded")] == [0]


def test_stranded_means_queued_past_the_limit_with_this_fleets_labels() -> None:
    now = T0 + 1000
    job = {"status": "queued", "labels": ["self-hosted"], "created_at": iso(T0)}
    assert stranded_job(job, now, (), 900)
    assert not stranded_job(job, now, (), 1000)
    assert not stranded_job({**job, "status": "in_progress"}, now, (), 900)
    assert not stranded_job({**job, "labels": ["ubuntu-latest"]}, now, (), 900)


# ---------------------------------------------------------------------------- cost (pure)


def test_fargate_bills_from_pull_to_stop_per_second_with_a_minute_minimum() -> None:
    def billed(pull: float | None, stop: float | None) -> int:
        detail = {"pullStartedAt": None if pull is None else at(pull)}
        detail["stoppedAt"] = None if stop is None else at(stop)
        return billed_seconds(detail)

    assert billed(0, 125.2) == 126
    assert billed(0, 12) == 60
    assert billed(None, 500) == 0  # never pulled its image: not billed


def test_the_price_table_sets_architecture_spot_and_disk_prices() -> None:
    prices = Prices(arm64_vcpu_hour=0.02, arm64_gb_hour=0.002, ephemeral_storage_gb_hour=0.001)
    detail = {"pullStartedAt": at(0), "stoppedAt": at(3600), "cpu": "2048", "memory": "4096"}
    arm = {"architecture": "arm64", "ephemeral_storage_gib": 100}
    assert bill(detail, arm, prices).cost_usd == pytest.approx(2 * 0.02 + 4 * 0.002 + 80 * 0.001)
    spot = {**detail, "capacityProviderName": "FARGATE_SPOT"}
    x86 = bill(spot, {}, prices)
    assert (x86.architecture, x86.storage_gib) == ("x86_64", 20)
    assert x86.cost_usd == pytest.approx((2 * 0.04048 + 4 * 0.004445) * 0.3)


def test_only_fargate_tasks_are_priced() -> None:
    detail = {"pullStartedAt": at(0), "stoppedAt": at(600), "cpu": "2048", "memory": "4096"}
    docker = {"docker": True, "capacity_provider": "fleet-docker-x86_64"}
    for record in (docker, {"docker": True}):  # an EC2 task, even without its provider
        ec2 = bill(detail, record, Prices())
        assert (ec2.billed_seconds, ec2.cost_usd) == (600, None)
        assert ec2.fields()["cost_usd"] is None
    # a record from before capacity providers were recorded: a Fargate task, priced
    assert bill(detail, {}, Prices()).cost_usd == pytest.approx(
        (2 * 0.04048 + 4 * 0.004445) * 600 / 3600
    )
    ec2_event = {**detail, "capacityProviderName": "fleet-docker-arm64"}
    assert bill(ec2_event, {}, Prices()).cost_usd is None


def test_a_price_table_that_is_not_the_modules_is_a_deployment_error() -> None:
    assert Prices.from_json('{"x86_64_vcpu_hour": 0.05}').x86_64_vcpu_hour == 0.05
    for text in ("[1]", '{"vcpu": 1}', '{"arm64_gb_hour": -1}', '{"spot_discount": 1}', "{"):
        with pytest.raises(PricesError):
            Prices.from_json(text)
    env = {
        "NAME_PREFIX": "x",
        "GITHUB_OWNER": "o",
        "GITHUB_REPO": "r",
        "SUBNET_IDS": "s",
        "SECURITY_GROUP_IDS": "g",
        "JIT_BUCKET": "b",
    }
    assert Settings.from_env(env).fargate_prices == Prices()
    with pytest.raises(SettingsError, match="FARGATE_PRICES"):
        Settings.from_env({**env, "FARGATE_PRICES": '{"spot_discount": "lots"}'})
