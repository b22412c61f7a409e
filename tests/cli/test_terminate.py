"""`ecsrunner runners terminate`: a runner launched by the real control plane, its task
running in moto, its registration in the GitHub stand-in; GitHub reached with the settings
of the control-plane Lambda (as deployed) and the PAT from SSM."""

from __future__ import annotations

import getpass
import re
import socket
import time
from typing import Any

import pytest
from control_plane.github import GitHubError
from control_plane.state import StateStore

from tests.cli.conftest import Cli, advance, queue, task_exits
from tests.control_plane.cleanup_helpers import connect
from tests.control_plane.harness import PAT, REPO, Fleet, job_payload

pytestmark = pytest.mark.usefixtures("held_tasks")

REASON = f"Terminated by {getpass.getuser()}@{socket.gethostname()} with ecsrunner"


def registration(fleet: Fleet, name: str) -> dict[str, Any] | None:
    """The runner as GitHub (the stand-in) has it registered."""
    return next((r for r in fleet.github.runners() if r["name"] == name), None)


def task_state(fleet: Fleet, task_arn: str) -> tuple[str, str, str | None]:
    task = fleet.describe(task_arn)
    return task["lastStatus"], task["desiredStatus"], task.get("stoppedReason")


def deletes(fleet: Fleet) -> list[dict[str, Any]]:
    return fleet.github.requests(path=r"/actions/runners/\d+$", method="DELETE")


@pytest.fixture
def busy(fleet: Fleet, control_plane_function: str) -> int:
    """A runner that took its job: task RUNNING, record busy, registered with GitHub."""
    job_id = queue(fleet, labels=("self-hosted", "class:medium"))
    advance(fleet, job_id, "busy")
    return job_id


def test_terminate_stops_the_task_marks_the_record_and_removes_the_runner(
    fleet: Fleet, run: Cli, busy: int
) -> None:
    name = fleet.runner_name(busy)
    task_arn = fleet.record(busy)["task_arn"]
    task = task_arn.rsplit("/", 1)[1]
    github_id = registration(fleet, name)["id"]

    result = run("runners", "terminate", name, "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Terminating runner {name}:",
        f"  ECS: task {task} stopped (was RUNNING)",
        "  state table: marked stopped (was busy)",
        f"  GitHub: runner {github_id} removed",
    ]
    (stop,) = fleet.ecs_proxy.requests("StopTask")
    assert stop["body"] == {"cluster": fleet.prefix, "task": task_arn, "reason": REASON}
    assert task_state(fleet, task_arn) == ("STOPPED", "STOPPED", REASON)
    record = fleet.record(busy)
    assert record["status"] == "stopped"
    assert record["reason"] == REASON
    assert record["history"][-1]["status"] == "stopped"
    assert record["history"][-1]["reason"] == REASON
    assert registration(fleet, name) is None
    (delete,) = deletes(fleet)
    assert delete["path"] == f"/repos/{REPO}/actions/runners/{github_id}"

    # ECS then reports the stop (UserInitiated): the control plane keeps `stopped`
    task_exits(fleet, busy, exit_code=143, stopCode="UserInitiated", stoppedReason=REASON)
    assert fleet.record(busy)["status"] == "stopped"


def test_the_prompt_says_what_will_happen_and_yes_goes_ahead(
    fleet: Fleet, run: Cli, busy: int
) -> None:
    name = fleet.runner_name(busy)
    task = fleet.record(busy)["task_arn"].rsplit("/", 1)[1]
    github_id = registration(fleet, name)["id"]

    result = run("runners", "terminate", str(busy), input="y\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"Runner {name} (job {busy}, busy). This will:\n"
        f"  - stop ECS task {task} (RUNNING)\n"
        "  - mark the record stopped (now busy)\n"
        f"  - remove runner {github_id} from GitHub\n"
        "Terminate it? [y/N]: y\n"
        f"Terminating runner {name}:\n"
    )
    assert fleet.record(busy)["status"] == "stopped"
    assert registration(fleet, name) is None


@pytest.mark.parametrize("answer", ["n\n", "\n"])
def test_declining_changes_nothing(fleet: Fleet, run: Cli, busy: int, answer: str) -> None:
    name = fleet.runner_name(busy)
    before = fleet.record(busy)

    result = run("runners", "terminate", name, input=answer)

    assert result.exit_code == 1
    assert result.stdout.endswith(f"Terminate it? [y/N]: {answer}")
    assert result.stderr == "Aborted!\n"
    assert fleet.record(busy) == before
    assert task_state(fleet, before["task_arn"])[:2] == ("RUNNING", "RUNNING")
    assert not fleet.ecs_proxy.requests("StopTask")
    assert registration(fleet, name) is not None
    assert not deletes(fleet)


def test_a_runner_already_gone_is_a_message(fleet: Fleet, run: Cli, busy: int) -> None:
    name = fleet.runner_name(busy)
    assert run("runners", "terminate", name, "--yes").exit_code == 0

    result = run("runners", "terminate", name)  # no prompt: there is nothing to confirm

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert re.fullmatch(
        rf"runner {name} is already stopped \(\ds ago\): its task is not running and GitHub "
        r"has no runner of that name; nothing to do\n",
        result.stdout,
    )
    assert len(fleet.ecs_proxy.requests("StopTask")) == 1  # the first time only
    assert len(deletes(fleet)) == 1


def test_a_finished_runner_ecs_and_github_have_forgotten(
    fleet: Fleet, run: Cli, control_plane_function: str
) -> None:
    job_id = queue(fleet)
    advance(fleet, job_id, "completed")
    task_exits(fleet, job_id, exit_code=0)
    name = fleet.runner_name(job_id)
    # GitHub removes an ephemeral runner after its job; ECS forgets a stopped task in an hour
    github_id = registration(fleet, name)["id"]
    fleet.github.call(fleet.github.state.delete_runner, f"repos/{REPO.lower()}", github_id)
    fleet.ecs_proxy.add(
        {"operation": "DescribeTasks", "status": 200, "body": {"tasks": [], "failures": []}}
    )
    before = fleet.record(job_id)

    result = run("runners", "terminate", name)

    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"runner {name} is already completed \(\ds ago\): its task is not running and "
        r"GitHub has no runner of that name; nothing to do\n",
        result.stdout,
    )
    assert fleet.record(job_id) == before


def test_a_finished_runner_whose_task_still_runs_is_stopped(
    fleet: Fleet, run: Cli, control_plane_function: str
) -> None:
    """The job completed (webhook) but the container did not exit: the task is stopped, the
    record keeps its conclusion."""
    job_id = queue(fleet)
    advance(fleet, job_id, "completed")
    name = fleet.runner_name(job_id)
    task_arn = fleet.record(job_id)["task_arn"]

    result = run("runners", "terminate", name, "--yes")

    assert result.exit_code == 0, result.output
    assert f"  ECS: task {task_arn.rsplit('/', 1)[1]} stopped (was RUNNING)" in result.stdout
    assert "  state table: already completed" in result.stdout
    assert task_state(fleet, task_arn)[0] == "STOPPED"
    record = fleet.record(job_id)
    assert (record["status"], record["conclusion"]) == ("completed", "success")


def test_nothing_to_do_but_github_cannot_be_checked(fleet: Fleet, run: Cli) -> None:
    job_id = queue(fleet, labels=("self-hosted", "class:huge"))  # rejected: never had a task

    result = run("runners", "terminate", str(job_id))  # no control-plane function deployed

    assert result.exit_code == 1
    assert re.fullmatch(
        rf"runner {fleet.runner_name(job_id)} is already rejected \(\ds ago\): no task was "
        r"started; nothing to do\n",
        result.stdout,
    )
    assert result.stderr.startswith(
        f"error: could not check GitHub: cannot read the configuration of function "
        f"{fleet.prefix}-control-plane (--function-name): "
    )
    assert result.stderr.count("\n") == 1


def test_an_unknown_runner(fleet: Fleet, run: Cli, control_plane_function: str) -> None:
    result = run("runners", "terminate", f"{fleet.prefix}-31337", "--yes")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: no runner {fleet.prefix}-31337 in table {fleet.prefix}-state\n"


def test_a_runner_busy_on_github_is_stopped_and_removed_once_github_lets_go(
    fleet: Fleet, run: Cli, busy: int
) -> None:
    name = fleet.runner_name(busy)
    connect(fleet, name)  # the runner is running the job: GitHub refuses to delete it (422)
    github_id = registration(fleet, name)["id"]
    task_arn = fleet.record(busy)["task_arn"]

    result = run("runners", "terminate", name, "--yes")

    assert result.exit_code == 1
    assert f"  ECS: task {task_arn.rsplit('/', 1)[1]} stopped (was RUNNING)" in result.stdout
    assert "  state table: marked stopped (was busy)" in result.stdout
    assert (
        f"  GitHub: runner {github_id} is still busy with its job: GitHub fails the job once "
        "the stopped runner stops answering (a few minutes); run this command again then to "
        "remove it"
    ) in result.stdout
    assert (
        result.stderr == f"error: runner {name} is stopped, but could not be removed from GitHub\n"
    )
    assert task_state(fleet, task_arn)[0] == "STOPPED"
    assert fleet.record(busy)["status"] == "stopped"
    assert registration(fleet, name)["busy"] is True

    # GitHub notices the runner is gone: the job fails, the runner is offline and idle
    fleet.github.call(
        lambda: fleet.github.state.runners[github_id].update(busy=False, status="offline")
    )
    again = run("runners", "terminate", name, "--yes")

    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        f"Terminating runner {name}:",
        f"  ECS: task {task_arn.rsplit('/', 1)[1]} is already STOPPED",
        "  state table: already stopped",
        f"  GitHub: runner {github_id} removed",
    ]
    assert len(fleet.ecs_proxy.requests("StopTask")) == 1  # stopped once, not twice
    assert registration(fleet, name) is None


def test_without_github_the_runner_is_still_stopped(fleet: Fleet, run: Cli, busy: int) -> None:
    name = fleet.runner_name(busy)
    task_arn = fleet.record(busy)["task_arn"]

    result = run("runners", "terminate", name, "--yes", "--function-name", "no-such-function")

    assert result.exit_code == 1
    assert "  state table: marked stopped (was busy)" in result.stdout
    assert (
        "  GitHub: not done: cannot read the configuration of function no-such-function "
        "(--function-name): "
    ) in result.stdout
    assert (
        result.stderr == f"error: runner {name} is stopped, but could not be removed from GitHub\n"
    )
    assert task_state(fleet, task_arn)[0] == "STOPPED"
    assert fleet.record(busy)["status"] == "stopped"
    assert registration(fleet, name) is not None  # left for the next attempt (or the cleanup)


def test_github_errors_are_one_line_and_the_pat_never_shows(
    fleet: Fleet, run: Cli, busy: int
) -> None:
    name = fleet.runner_name(busy)
    fleet.github.add_fault(r"/actions/runners/\d+$", status=403, method="DELETE")

    result = run("runners", "terminate", name, "--yes")

    assert result.exit_code == 1
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("  GitHub:")]
    assert line.startswith("  GitHub: not done: GitHubError: ") and "403" in line
    assert PAT not in result.output
    assert "Traceback" not in result.output
    assert fleet.record(busy)["status"] == "stopped"


def test_a_failed_launch_is_stopped_for_good(
    fleet: Fleet, run: Cli, control_plane_function: str
) -> None:
    """A job whose launch failed stays `pending` (resumable by the next delivery); once
    terminated, a redelivery starts nothing."""
    fleet.github.add_fault(
        r"/generate-jitconfig$", status=403, count=1, body={"message": "Forbidden"}
    )
    payload = job_payload()
    job_id = payload["workflow_job"]["id"]
    with pytest.raises(GitHubError):
        fleet.deliver(payload)
    assert fleet.record(job_id)["status"] == "pending"
    name = fleet.runner_name(job_id)

    result = run("runners", "terminate", name, "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Terminating runner {name}:",
        "  ECS: no task was started",
        "  state table: marked stopped (was pending)",
        "  GitHub: not registered (an ephemeral runner is removed when its job ends)",
    ]
    assert fleet.record(job_id)["status"] == "stopped"
    fleet.deliver(payload)
    assert fleet.tasks() == []
    assert fleet.record(job_id)["status"] == "stopped"


def test_a_launch_in_flight_is_not_raced(
    fleet: Fleet, run: Cli, control_plane_function: str
) -> None:
    job_id = 987654321
    store = StateStore(f"{fleet.prefix}-state", fleet.client("dynamodb"))
    claim = store.claim(
        job_id, {"job_id": job_id, "runner_name": fleet.runner_name(job_id)}, "other", 60
    )
    assert claim.may_launch
    before = fleet.record(job_id)

    result = run("runners", "terminate", str(job_id), "--yes")

    assert result.exit_code == 1
    left = int(float(before["lease_until"]) - time.time()) + 1
    assert result.stderr in {
        f"error: runner {fleet.runner_name(job_id)} is being launched right now; "
        f"try again in {s}s\n"
        for s in (left, left + 1)  # the CLI looked a moment earlier
    }
    assert fleet.record(job_id) == before
