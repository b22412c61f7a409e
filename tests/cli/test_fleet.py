"""`ecsrunner list-class-sizes` (the SSM parameter the control plane reads) and
`ecsrunner cluster status` (ECS task counts, runner counts from the state table)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from control_plane.state import ORDER, TERMINAL, iso

from ecsrunner.output import duration, parse_time
from ecsrunner.stats import percentile
from tests.cli.conftest import Cli, advance, measure, queue, task_exits
from tests.control_plane.class_helpers import configure_classes, docker_provider
from tests.control_plane.harness import ACCOUNT, REGION, Fleet

STATUSES = [*ORDER, *TERMINAL]  # every status the control plane writes, in its order

# ---------------------------------------------------------------------- list-class-sizes


def size(name: str, cpu: int, memory: int, default: bool = False, **placed: Any) -> dict:
    units = {"vcpu": cpu / 1024, "memory_gib": memory / 1024}
    where = {
        "architecture": "x86_64",
        "disk_gib": 20,
        "runs_on": "fargate",
        "capacity": None,
        **placed,
    }
    return {"name": name, "cpu": cpu, "memory": memory, **units, **where, "default": default}


def test_class_sizes_in_human_units_with_the_default_marked(fleet: Fleet, run: Cli) -> None:
    result = run("list-class-sizes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "CLASS    VCPU      MEMORY    ARCH    DISK    RUNS ON    CAPACITY     DEFAULT",
        "-------  --------  --------  ------  ------  ---------  -----------  ---------",
        "small    0.5 vCPU  1 GiB     x86_64  20 GiB  Fargate    module-wide  yes",
        "medium   1 vCPU    2 GiB     x86_64  20 GiB  Fargate    module-wide  no",
        "large    2 vCPU    4 GiB     x86_64  20 GiB  Fargate    module-wide  no",
    ]
    assert run.json("list-class-sizes") == {
        "parameter": f"/{fleet.prefix}/config/class-sizes",
        "default_class": "small",
        "classes": [
            size("small", 512, 1024, default=True),
            size("medium", 1024, 2048),
            size("large", 2048, 4096),
        ],
    }


def test_smallest_and_largest_sizes(fleet: Fleet, run: Cli) -> None:
    name = f"/{fleet.prefix}/config/other-sizes"
    sizes = {
        "default_class": "xl",
        "classes": {"xl": {"cpu": 16384, "memory": 122880}, "tiny": {"cpu": 256, "memory": 512}},
    }
    fleet.client("ssm").put_parameter(Name=name, Value=json.dumps(sizes), Type="String")

    result = run("list-class-sizes", "--class-sizes-param", name)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        "tiny     0.25 vCPU  512 MiB   x86_64  20 GiB  Fargate    module-wide  no",
        "xl       16 vCPU    120 GiB   x86_64  20 GiB  Fargate    module-wide  yes",
    ]


def cells(line: str) -> list[str]:
    """A table row's cells (separated by two spaces or more)."""
    return re.split(r"\s{2,}", line.strip())


def test_architecture_disk_and_fargate_or_docker_of_each_class(fleet: Fleet, run: Cli) -> None:
    configure_classes(fleet)  # small; spot (spotPreferred); arm (arm64, 100 GiB); docker

    result = run("list-class-sizes")

    assert result.exit_code == 0, result.output
    provider = docker_provider(fleet)
    header, _, *rows = result.stdout.splitlines()
    assert cells(header) == [
        "CLASS", "VCPU", "MEMORY", "ARCH", "DISK", "RUNS ON", "CAPACITY", "DEFAULT",
    ]  # fmt: skip
    assert [cells(row) for row in rows] == [
        ["small", "0.5 vCPU", "1 GiB", "x86_64", "20 GiB", "Fargate", "module-wide", "yes"],
        ["arm", "1 vCPU", "2 GiB", "arm64", "100 GiB", "Fargate", "module-wide", "no"],
        ["spot", "1 vCPU", "2 GiB", "x86_64", "20 GiB", "Fargate", "spotPreferred", "no"],
        ["docker", "2 vCPU", "4 GiB", "x86_64", "instance volume", "Docker (EC2)", provider, "no"],
    ]
    assert run.json("list-class-sizes")["classes"] == [
        size("small", 512, 1024, default=True),
        size("arm", 1024, 2048, architecture="arm64", disk_gib=100),
        size("spot", 1024, 2048, capacity="spotPreferred"),
        size("docker", 2048, 4096, disk_gib=None, runs_on="docker", capacity=provider),
    ]


def test_invalid_class_sizes(fleet: Fleet, run: Cli) -> None:
    name = f"/{fleet.prefix}/config/broken"
    fleet.client("ssm").put_parameter(Name=name, Value="{not json", Type="String")
    result = run("list-class-sizes", "--class-sizes-param", name)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: the class sizes in {name} are invalid: ")
    assert result.stderr.count("\n") == 1


def test_class_sizes_parameter_not_found(run: Cli) -> None:
    result = run("list-class-sizes", env={"CLASS_SIZES_PARAM": "/nowhere/config/class-sizes"})
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: SSM parameter '/nowhere/config/class-sizes' not found in {REGION}: "
        "check --class-sizes-param / CLASS_SIZES_PARAM\n"
    )


def test_class_sizes_parameter_not_set(run: Cli) -> None:
    result = run("list-class-sizes", env={"CLASS_SIZES_PARAM": None})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no class sizes parameter: pass --class-sizes-param or set CLASS_SIZES_PARAM\n"
    )


# ---------------------------------------------------------------------- cluster status


def tasks(class_name: str, provider: str, running: int = 0, pending: int = 0) -> dict:
    counts = {"running": running, "pending": pending, "stopping": 0}
    return {"class": class_name, "capacity_provider": provider, **counts}


@pytest.fixture
def busy_fleet(fleet: Fleet, monkeypatch: pytest.MonkeyPatch, held_tasks: None) -> dict[str, int]:
    """Runners in every phase; one of them on Fargate Spot; one task stopped in ECS."""
    jobs = {
        "small": queue(fleet),
        "medium": queue(fleet, labels=("self-hosted", "class:medium")),
        "done": queue(fleet, labels=("self-hosted", "class:large")),
        "rejected": queue(fleet, labels=("self-hosted", "class:huge")),
    }
    monkeypatch.setenv("CAPACITY_STRATEGY", "FARGATE_SPOT")
    jobs["spot"] = queue(fleet, labels=("self-hosted", "class:medium"))
    advance(fleet, jobs["medium"], "busy")
    advance(fleet, jobs["spot"], "running")
    advance(fleet, jobs["done"], "busy")
    done_task = fleet.record(jobs["done"])["task_arn"]
    fleet.client("ecs").stop_task(cluster=fleet.prefix, task=done_task, reason="job done")
    task_exits(fleet, jobs["done"], exit_code=0)
    return jobs


def test_cluster_status(fleet: Fleet, run: Cli, busy_fleet: dict[str, int]) -> None:
    status = run.json("cluster", "status", fleet.prefix)

    assert status["cluster"] == fleet.prefix
    assert status["tasks"] == [  # per class and capacity provider; the stopped task is gone
        tasks("medium", "FARGATE", running=1),
        tasks("medium", "FARGATE_SPOT", running=1),
        tasks("small", "FARGATE", running=1),
    ]
    assert status["totals"] == {"running": 3, "pending": 0, "stopping": 0}
    runners = status["runners"]
    assert runners["table"] == f"{fleet.prefix}-state"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", runners["since"])
    assert runners["by_status"] == {
        **dict.fromkeys(STATUSES, 0),
        "starting": 1,
        "running": 1,
        "busy": 1,
        "completed": 1,
        "rejected": 1,
    }
    assert list(runners["by_status"]) == STATUSES

    text = run("cluster", "status", fleet.prefix)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[:7] == [
        f"Cluster {fleet.prefix}: tasks",
        "CLASS    CAPACITY PROVIDER      RUNNING    PENDING    STOPPING",
        "-------  -------------------  ---------  ---------  ----------",
        "medium   FARGATE                      1          0           0",
        "medium   FARGATE_SPOT                 1          0           0",
        "small    FARGATE                      1          0           0",
        "total    -                            3          0           0",
    ]
    assert lines[7:15] == [
        "",
        f"Classes (/{fleet.prefix}/config/class-sizes)",
        "CLASS    ARCH    DISK    RUNS ON    CAPACITY",
        "-------  ------  ------  ---------  -----------",
        "small    x86_64  20 GiB  Fargate    module-wide",
        "medium   x86_64  20 GiB  Fargate    module-wide",
        "large    x86_64  20 GiB  Fargate    module-wide",
        "",
    ]
    assert [c["name"] for c in status["classes"]] == ["small", "medium", "large"]
    assert lines[15].startswith("Runners created since ")
    assert lines[15].endswith(f"(table {fleet.prefix}-state)")
    counts = dict(line.split() for line in lines[18 : 18 + len(STATUSES)])
    assert counts == {status: str(n) for status, n in runners["by_status"].items()}
    # the busy jobs' queue waits, as the control plane measured them from in_progress events
    waits = [float(r["queue_wait_seconds"]) for r in fleet.records() if "queue_wait_seconds" in r]
    p50, p90 = percentile(waits, 50), percentile(waits, 90)
    assert len(waits) == 2
    assert status["queue_wait_seconds"] == {
        "since": status["queue_wait_seconds"]["since"],
        "p50": p50,
        "p90": p90,
    }
    assert lines[18 + len(STATUSES) :] == [
        "",
        f"Queue wait of the jobs created in the last hour: p50 {duration(p50)}, "
        f"p90 {duration(p90)}",
    ]


def test_docker_tasks_and_every_class_in_the_status(
    fleet: Fleet, run: Cli, held_tasks: None
) -> None:
    configure_classes(fleet)
    queue(fleet, labels=("self-hosted", "class:docker"))
    queue(fleet, labels=("self-hosted", "class:arm"))
    provider = docker_provider(fleet)

    status = run.json("cluster", "status", fleet.prefix)

    assert status["tasks"] == [tasks("arm", "FARGATE", running=1), tasks("docker", provider, 1)]
    classes = {c["name"]: c for c in status["classes"]}
    assert list(classes) == ["small", "arm", "spot", "docker"]
    placed = ("architecture", "disk_gib", "runs_on", "capacity")
    assert [classes["arm"][k] for k in placed] == ["arm64", 100, "fargate", None]
    assert [classes["docker"][k] for k in placed] == ["x86_64", None, "docker", provider]
    lines = run("cluster", "status", fleet.prefix).stdout.splitlines()
    title = lines.index(f"Classes (/{fleet.prefix}/config/class-sizes)")
    assert cells(lines[title + 6]) == [
        "docker",
        "x86_64",
        "instance volume",
        "Docker (EC2)",
        provider,
    ]


def test_the_status_without_readable_class_sizes_still_shows_the_rest(
    fleet: Fleet, run: Cli, held_tasks: None
) -> None:
    queue(fleet)
    env = {"CLASS_SIZES_PARAM": None}  # the default, `/<name_prefix>/config/class-sizes`
    assert run.json("cluster", "status", fleet.prefix, env=env)["classes"] is not None
    missing = {"CLASS_SIZES_PARAM": "/nowhere/config/class-sizes"}

    status = run.json("cluster", "status", fleet.prefix, env=missing)

    assert status["classes"] is None
    assert status["totals"]["running"] == 1
    lines = run("cluster", "status", fleet.prefix, env=missing).stdout.splitlines()
    title = lines.index("Classes (/nowhere/config/class-sizes)")
    assert lines[title + 1].startswith("not shown: ParameterNotFound")


def test_the_last_hours_queue_wait(fleet: Fleet, run: Cli) -> None:
    waits = [12, 3, 45, 7, 30, 1, 60, 5, 20, 9]  # sorted: 1 3 5 7 9 12 20 30 45 60
    for wait in waits:
        measure(fleet, queue(fleet), queue_wait_seconds=wait)
    two_hours_ago = iso(time.time() - 7200)
    measure(fleet, queue(fleet), queue_wait_seconds=3600, created_at=two_hours_ago)
    before = time.time()

    status = run.json("cluster", "status", fleet.prefix)

    recent = status["queue_wait_seconds"]
    assert (recent["p50"], recent["p90"]) == (9.0, 45.0)  # nearest rank; the older job left out
    assert abs((parse_time(recent["since"]) or 0) - (before - 3600)) < 60
    assert status["runners"]["by_status"]["starting"] == 11  # --since 24h: the older job too
    text = run("cluster", "status", fleet.prefix)
    assert text.stdout.splitlines()[-1] == (
        "Queue wait of the jobs created in the last hour: p50 9s, p90 45s"
    )


def test_tasks_being_placed_count_as_pending(fleet: Fleet, run: Cli) -> None:
    first, second = queue(fleet), queue(fleet, labels=("self-hosted", "class:large"))
    arns = [fleet.record(job)["task_arn"] for job in (first, second)]
    # moto starts tasks RUNNING at once: ECS's answer while Fargate is still placing them
    # (the second task without tags: its class comes from its task definition family)
    fleet.ecs_describes(
        {
            "taskArn": arns[0],
            "lastStatus": "PROVISIONING",
            "desiredStatus": "RUNNING",
            "capacityProviderName": "FARGATE_SPOT",
            "tags": [{"key": "class", "value": "small"}],
        },
        {
            "taskArn": arns[1],
            "lastStatus": "PENDING",
            "desiredStatus": "RUNNING",
            "launchType": "FARGATE",
            "taskDefinitionArn": (
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{fleet.prefix}-large:3"
            ),
        },
    )

    status = run.json("cluster", "status")  # the cluster from CLUSTER_NAME

    assert status["tasks"] == [
        tasks("large", "FARGATE", pending=1),
        tasks("small", "FARGATE_SPOT", pending=1),
    ]
    assert status["totals"] == {"running": 0, "pending": 2, "stopping": 0}


def test_since(fleet: Fleet, run: Cli) -> None:
    queue(fleet)
    later = run.json("cluster", "status", fleet.prefix, "--since", "2999-01-01")
    assert set(later["runners"]["by_status"].values()) == {0}
    assert later["runners"]["since"] == "2999-01-01T00:00:00.000Z"
    week = run.json("cluster", "status", fleet.prefix, "--since", "7d")
    assert week["runners"]["by_status"]["starting"] == 1


def test_no_cluster_given(run: Cli) -> None:
    result = run("cluster", "status", env={"CLUSTER_NAME": None})
    assert result.exit_code == 2
    assert result.stderr == "error: no cluster: give the CLUSTER argument or set CLUSTER_NAME\n"


def test_an_unknown_cluster(run: Cli) -> None:
    result = run("cluster", "status", "no-such-cluster")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: AWS refused ListTasks: ClusterNotFoundException")
    assert result.stderr.count("\n") == 1
