"""The state table: one item per runner/job, written with conditions so that duplicates,
concurrent deliveries and out-of-order events can never launch twice or move a status back.

Item `pk = "job#<job_id>"` (docs/CONTRACTS.md). Launch protocol:

1. `claim` creates the item (status `pending`) with `attribute_not_exists(pk)` before any
   side effect, holding a lease (`lease_owner`, `lease_until`: the invocation's own deadline).
   An item that already exists can be claimed again only while it is `pending`, has no task
   and its lease is free or expired: a failed or crashed attempt is resumed, a live one is not.
2. The launch records its task with `record_task` (condition: it still holds the lease),
   which releases the lease; then `transition` moves the status forwards.
3. A failed attempt `release`s its lease (with the reason) so the next delivery resumes it.
4. A job whose runner image is being built (builds.py) is parked as `image-building`
   by `await_build`, which releases the lease; it stays resumable like `pending` and is
   launched when the build succeeds.

Status order: pending < image-building < starting < running < busy < the terminal ones
(completed, failed, stopped, rejected). `transition` only moves forwards: its condition lists
the statuses that come before the new one, so a late or repeated event changes nothing but its
own fields.

Cursors (the cleanup only): item `pk = "cursor#<name>"` with `position` (N), where a scan that
takes several runs stopped (github.py). It has no `kind`, so the by-kind index, and every
reader of records, never sees it.

Recovery (recovery.py): a record whose runner stopped before it took a job, or took another
job, may be reopened to `pending` for a relaunch under a new runner name
(`reopen_for_relaunch`, the one move backwards), or closed as `failed` (`fail_interrupted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from control_plane import log
from control_plane.times import iso

KIND = "runner"
BY_KIND_CREATED = "by-kind-created"  # GSI: hash kind, range created_at (docs/CONTRACTS.md)
RECORD_TTL_SECONDS = 30 * 86400
IMAGE_BUILDING = "image-building"
ORDER = ("pending", IMAGE_BUILDING, "starting", "running", "busy")
RESUMABLE = ("pending", IMAGE_BUILDING)  # no task yet: a new attempt may take the lease
TERMINAL = ("completed", "failed", "stopped", "rejected")
# Relaunch counters: after a runner died before its job, and after it took another job.
RELAUNCHES = "relaunches"
DISPLACEMENTS = "displacements"
RANK = {status: rank for rank, status in enumerate(ORDER)} | dict.fromkeys(TERMINAL, len(ORDER))

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def key(job_id: int) -> dict[str, Any]:
    return {"pk": {"S": f"job#{job_id}"}}


def launch_attempt(record: Mapping[str, Any]) -> int:
    """The attempt number of the record's current launch: GitHub's run attempt plus its
    relaunches, of both kinds (runner name suffix and RunTask clientToken, docs/CONTRACTS.md)."""
    return (
        int(record.get("run_attempt") or 1)
        + int(record.get(RELAUNCHES) or 0)
        + int(record.get(DISPLACEMENTS) or 0)
    )


def _value(value: Any) -> dict[str, Any]:
    """`value` as DynamoDB takes it; a float (a measurement, a cost) as a Decimal to 9
    decimals, a whole one without decimals (DynamoDB takes no float)."""
    if isinstance(value, float):
        number = Decimal(str(round(value, 9)))
        value = number.to_integral_value() if number == number.to_integral_value() else number
    return _serializer.serialize(value)


def _reason(reason: str) -> str:
    """A reason as stored: secrets masked (it may quote an error), before the cut that would
    otherwise keep the start of one."""
    return log.redact(reason)[:500]


def _record(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def in_flight(record: Mapping[str, Any]) -> bool:
    """Whether a launch may still be under way for the record (resumable, no task yet)."""
    return record.get("status") in RESUMABLE and not record.get("task_arn")


def _status_before(status: str, values: dict) -> str:
    """`#status IN (...)` over the statuses that come before `status`, adding their
    placeholders to `values` (the caller maps `#status`)."""
    earlier = [s for s, rank in RANK.items() if rank < RANK[status]]
    for index, name in enumerate(earlier):
        values[f":b{index}"] = _value(name)
    return f"#status IN ({', '.join(f':b{i}' for i in range(len(earlier)))})"


def _set_fields(fields: Mapping[str, Any], names: dict, values: dict) -> list[str]:
    """`#fN = :fN` clauses for `fields`, adding their placeholders to `names` and `values`
    (placeholders, so that any attribute name works, reserved words included)."""
    clauses = []
    for index, (name, value) in enumerate(fields.items()):
        names[f"#f{index}"] = name
        values[f":f{index}"] = _value(value)
        clauses.append(f"#f{index} = :f{index}")
    return clauses


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Claim:
    """The outcome of `claim`: `new` or `resumed` (this invocation may launch), `busy`
    (another live attempt holds the lease) or `done` (launched, rejected or finished)."""

    outcome: str
    record: dict[str, Any]

    @property
    def may_launch(self) -> bool:
        return self.outcome in ("new", "resumed")


class StateStore:
    def __init__(self, table: str, dynamodb: Any, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.dynamodb = dynamodb
        self.clock = clock

    # ------------------------------------------------------------------ reading

    def get(self, job_id: int) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=key(job_id), ConsistentRead=True
        ).get("Item")
        return _record(item) if item else None

    def newest(
        self, kind: str = KIND, since: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Items of `kind`, newest first (created at or after `since`, an ISO 8601 UTC time,
        when given): the `by-kind-created` index read page by page, never a scan, so a caller
        that has seen enough simply stops iterating."""
        condition = "#kind = :kind"
        values = {":kind": _value(kind)}
        if since:
            condition += " AND created_at >= :since"
            values[":since"] = _value(since)
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_KIND_CREATED,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#kind": "kind"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": page_size,
        }
        while True:
            response = self.dynamodb.query(**request)
            for item in response.get("Items", []):
                yield _record(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def cursor(self, name: str) -> int:
        """Where the scan `name` stopped (0 before its first run)."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": f"cursor#{name}"}}, ConsistentRead=True
        ).get("Item")
        return int(item["position"]["N"]) if item and "position" in item else 0

    def set_cursor(self, name: str, position: int) -> None:
        """Stores where the scan `name` goes on next (last writer wins: runs that overlap
        look at the same repositories, which is harmless)."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"cursor#{name}"},
                "position": _value(position),
                "updated_at": _value(iso(self.clock())),
            },
        )

    # ------------------------------------------------------------------ creating

    def _new_item(self, fields: Mapping[str, Any], status: str, reason: str | None) -> dict:
        now = self.clock()
        entry: dict[str, Any] = {"status": status, "at": iso(now)}
        if reason:
            entry["reason"] = _reason(reason)
        item = {
            **{k: v for k, v in fields.items() if v is not None and v != ""},
            "kind": KIND,
            "status": status,
            "created_at": iso(now),
            "updated_at": iso(now),
            "history": [entry],
            "expires_at": int(now + RECORD_TTL_SECONDS),
        }
        if reason:
            item["reason"] = _reason(reason)
        return item

    def _put_new(self, job_id: int, item: dict[str, Any]) -> bool:
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={**key(job_id), **{k: _value(v) for k, v in item.items()}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def create_rejected(self, job_id: int, fields: Mapping[str, Any], reason: str) -> bool:
        """Records a job no runner is started for; False if the job was already recorded."""
        return self._put_new(job_id, self._new_item(fields, "rejected", reason))

    def claim(
        self, job_id: int, fields: Mapping[str, Any], owner: str, lease_seconds: float
    ) -> Claim:
        """Records the job as `pending` (or takes over a resumable record) under a lease."""
        item = self._new_item(fields, "pending", None)
        item["lease_owner"] = owner
        item["lease_until"] = int(self.clock() + lease_seconds) + 1
        if self._put_new(job_id, item):
            return Claim("new", {"pk": f"job#{job_id}", **item})
        resumed = self.take_lease(job_id, owner, lease_seconds)
        if resumed is not None:
            return Claim("resumed", resumed)
        record = self.get(job_id) or {}
        return Claim("busy" if in_flight(record) else "done", record)

    def take_lease(self, job_id: int, owner: str, lease_seconds: float) -> dict[str, Any] | None:
        """Takes over a resumable record (RESUMABLE, no task, lease free or expired) under a
        new lease; the record, or None when it is not resumable (or someone else holds it)."""
        now = self.clock()
        return self._update_record(
            job_id,
            UpdateExpression="SET lease_owner = :owner, lease_until = :until, updated_at = :at",
            ConditionExpression=(
                "#status IN (:pending, :building) AND attribute_not_exists(task_arn) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":owner": _value(owner),
                ":until": _value(int(now + lease_seconds) + 1),
                ":at": _value(iso(now)),
                ":pending": _value("pending"),
                ":building": _value(IMAGE_BUILDING),
                ":now": _value(int(now)),
            },
        )

    # ------------------------------------------------------------------ launching

    def record_task(
        self, job_id: int, owner: str, task_arn: str, *, starting: bool = False, **fields: Any
    ) -> bool:
        """Stores the launched task and releases the lease; False if the lease was lost (or,
        with `starting`, if the status is no longer one that may move to `starting`).

        `starting` also moves the status to `starting` in the same write: the launch path's
        common case costs one DynamoDB call instead of two. The reason of an earlier wait or
        failed attempt (kept in `history`) no longer holds once a task runs, so it goes.
        """
        now = iso(self.clock())
        values = {":owner": _value(owner), ":arn": _value(task_arn), ":at": _value(now)}
        names: dict[str, str] = {}
        sets = ["task_arn = :arn", "updated_at = :at"]
        condition = "lease_owner = :owner"
        if starting:
            names["#status"] = "status"
            values[":starting"] = _value("starting")
            values[":empty"] = _value([])
            values[":entry"] = _value([{"status": "starting", "at": now}])
            sets += [
                "#status = :starting",
                "history = list_append(if_not_exists(history, :empty), :entry)",
            ]
            condition += " AND " + _status_before("starting", values)
        sets += _set_fields(fields, names, values)
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key(job_id),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE lease_owner, lease_until, reason",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def release(self, job_id: int, owner: str, reason: str) -> bool:
        """Gives up this attempt's lease, saying why, so that a retry can resume at once."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key(job_id),
                UpdateExpression="SET reason = :reason, updated_at = :at "
                "REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={
                    ":owner": _value(owner),
                    ":reason": _value(_reason(reason)),
                    ":at": _value(iso(self.clock())),
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def await_build(
        self, job_id: int, owner: str, reason: str, fields: Mapping[str, Any], first: bool
    ) -> bool:
        """Parks a claimed job as `image-building` (with the build's facts in `fields`) and
        releases the lease; `first`: the job was `pending` (a history entry is added). False if
        the lease was lost or the job moved on meanwhile (e.g. its build failed it)."""
        now = iso(self.clock())
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":owner": _value(owner),
            ":building": _value(IMAGE_BUILDING),
            ":pending": _value("pending"),
            ":reason": _value(_reason(reason)),
            ":at": _value(now),
        }
        sets = ["#status = :building", "reason = :reason", "updated_at = :at"]
        if first:
            entry = {"status": IMAGE_BUILDING, "at": now, "reason": _reason(reason)}
            values |= {":empty": _value([]), ":entry": _value([entry])}
            sets.append("history = list_append(if_not_exists(history, :empty), :entry)")
        sets += _set_fields(fields, names, values)
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key(job_id),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner AND #status IN (:pending, :building)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------------ lifecycle

    def transition(
        self,
        job_id: int,
        status: str,
        *,
        reason: str | None = None,
        fields: Mapping[str, Any] | None = None,
        task_arn: str | None = None,
        runner: str | None = None,
    ) -> bool:
        """Moves the status forwards (never back) and sets `fields`; True if it moved.

        If the status does not move (same or later status already), `fields` are still set,
        so a late event keeps its information (conclusion, exit code) without undoing a state.
        With `task_arn`, the record must have no task yet or that same task; with `runner`,
        its runner must be that one (a relaunched record ignores its earlier runner).
        """
        fields = {k: v for k, v in (fields or {}).items() if v is not None}
        now = iso(self.clock())
        if RANK[status] == 0:
            return False  # nothing comes before `pending`: a record starts there
        entry: dict[str, Any] = {"status": status, "at": now}
        if task_arn:
            fields["task_arn"] = task_arn
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": _value(status),
            ":at": _value(now),
            ":empty": _value([]),
        }
        sets = [
            "#status = :status",
            "updated_at = :at",
            "history = list_append(if_not_exists(history, :empty), :entry)",
        ]
        if reason:  # the reason of this status only: a late event never overwrites it
            entry["reason"] = _reason(reason)
            values[":reason"] = _value(_reason(reason))
            sets.append("reason = :reason")
        values[":entry"] = _value([entry])
        field_sets = _set_fields(fields, names, values)
        condition = "attribute_exists(pk) AND " + _status_before(status, values)
        task_condition = ""
        if task_arn:
            values[":task"] = _value(task_arn)
            # a task an earlier attempt had (before a relaunch) never touches the record again
            task_condition = (
                " AND (attribute_not_exists(task_arn) OR task_arn = :task)"
                " AND NOT contains(retired_tasks, :task)"
            )
        if runner:
            values[":runner"] = _value(runner)
            task_condition += " AND runner_name = :runner"
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key(job_id),
                UpdateExpression="SET " + ", ".join(sets + field_sets),
                ConditionExpression=condition + task_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
        # The status stays; the event's own facts (not the task reference alone: a record at or
        # past this status has its task) are still worth keeping.
        if fields.keys() - {"task_arn"}:
            field_names = {k: v for k, v in names.items() if k != "#status"}
            field_values = {k: v for k, v in values.items() if k.startswith(":f")}
            field_values[":at"] = values[":at"]
            for placeholder in (":task", ":runner"):
                if placeholder in values:
                    field_values[placeholder] = values[placeholder]
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=key(job_id),
                    UpdateExpression="SET " + ", ".join(["updated_at = :at", *field_sets]),
                    ConditionExpression="attribute_exists(pk)" + task_condition,
                    ExpressionAttributeNames=field_names,
                    ExpressionAttributeValues=field_values,
                )
            except ClientError as exc:
                if not _is_conditional_failure(exc):
                    raise
        return False

    # ------------------------------------------------------------------ recovery (cleanup)

    def reopen_for_relaunch(
        self,
        job_id: int,
        *,
        task_arn: str,
        done: int,
        runner_name: str,
        jit_object: str,
        owner: str,
        lease_seconds: float,
        reason: str,
        displaced: bool = False,
    ) -> dict[str, Any] | None:
        """The one move backwards: the record goes back to `pending` under a lease, for a new
        runner `runner_name`, counting one more relaunch (`done` so far, of that kind).
        Either its task `task_arn` stopped before it took its job (`stopped`/`failed`), or
        (`displaced`) its runner took another job (`served_job_id`; busy with it, or done):
        that task is `handed_over` to the other job.
        The old task joins `retired_tasks` (its late events change nothing). Conditional on the
        task and the count, so a repeated or concurrent decision reopens it once; returns the
        record, or None."""
        counter = DISPLACEMENTS if displaced else RELAUNCHES
        now = self.clock()
        entry = {"status": "pending", "at": iso(now), "reason": _reason(reason)}
        values: dict[str, Any] = {
            ":pending": _value("pending"),
            ":task": _value(task_arn),
            ":next": _value(done + 1),
            ":name": _value(runner_name),
            ":jit": _value(jit_object),
            ":owner": _value(owner),
            ":until": _value(int(now + lease_seconds) + 1),
            ":at": _value(iso(now)),
            ":reason": _value(_reason(reason)),
            ":empty": _value([]),
            ":entry": _value([entry]),
            ":retired": _value([task_arn]),
        }
        counted = "#counter = :count" if done else "attribute_not_exists(#counter)"
        if done:
            values[":count"] = _value(done)
        sets = (
            "SET #status = :pending, #counter = :next, runner_name = :name, "
            "jit_object = :jit, lease_owner = :owner, lease_until = :until, "
            "updated_at = :at, reason = :reason, "
            "history = list_append(if_not_exists(history, :empty), :entry), "
            "retired_tasks = list_append(if_not_exists(retired_tasks, :empty), :retired)"
        )
        values |= {":stopped": _value("stopped"), ":failed": _value("failed")}
        if displaced:
            values |= {":busy": _value("busy"), ":completed": _value("completed")}
            status = (
                "#status IN (:busy, :completed, :stopped, :failed) "
                "AND attribute_exists(served_job_id)"
            )
            sets += ", handed_over = list_append(if_not_exists(handed_over, :empty), :retired)"
            # the other job's facts go with the runner that ran it
            removed = "served_job_id, served_conclusion, conclusion, "
        else:
            status = "#status IN (:stopped, :failed)"
            removed = ""
        removed += (
            "task_arn, capacity_provider, stop_reason, exit_code, stopped_by, not_relaunched, "
            "start_seconds"
        )
        return self._update_record(
            job_id,
            UpdateExpression=f"{sets} REMOVE {removed}",
            ConditionExpression=(
                f"{status} AND task_arn = :task AND "
                f"attribute_not_exists(recovery_checked) AND {counted}"
            ),
            ExpressionAttributeNames={"#status": "status", "#counter": counter},
            ExpressionAttributeValues=values,
        )

    def annotate(
        self,
        job_id: int,
        fields: Mapping[str, Any],
        task_arn: str | None = None,
        unless_set: str | None = None,
    ) -> dict[str, Any] | None:
        """Sets `fields` on an existing record (with `task_arn`: only while that is its task;
        with `unless_set`: only if the record has no such attribute yet, so that a measurement
        is recorded once), whatever its status; the record, or None."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":at": _value(iso(self.clock()))}
        sets = ["updated_at = :at", *_set_fields(fields, names, values)]
        condition = "attribute_exists(pk)"
        if task_arn:
            values[":task"] = _value(task_arn)
            condition += " AND task_arn = :task"
        if unless_set:
            names["#once"] = unless_set
            condition += " AND attribute_not_exists(#once)"
        return self._update_record(
            job_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            **({"ExpressionAttributeNames": names} if names else {}),
            ExpressionAttributeValues=values,
        )

    def add_bill(
        self, job_id: int, task_arn: str, bill: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Adds a stopped task's `billed_seconds` and `cost_usd` to the job's totals (a relaunched
        job pays for each of its tasks) and sets the size fields a first bill brings (a job's
        tasks share their class), once per task (`billed_tasks`); the record, or None if that
        task was billed already or is none of the record's tasks (its current one, or one a
        relaunch retired)."""
        totals = ("billed_seconds", "cost_usd")
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":at": _value(iso(self.clock())),
            ":zero": _value(0),
            ":empty": _value([]),
            ":tasks": _value([task_arn]),
            ":task": _value(task_arn),
        }
        sets = [
            "updated_at = :at",
            "billed_tasks = list_append(if_not_exists(billed_tasks, :empty), :tasks)",
        ]
        # an EC2 task has no cost_usd: the job's total is then the Fargate tasks' (if any)
        for index, name in enumerate(n for n in totals if bill.get(n) is not None):
            names[f"#t{index}"] = name
            values[f":t{index}"] = _value(bill[name])
            sets.append(f"#t{index} = if_not_exists(#t{index}, :zero) + :t{index}")
        for index, (name, value) in enumerate((k, v) for k, v in bill.items() if k not in totals):
            names[f"#s{index}"] = name
            values[f":s{index}"] = _value(value)
            sets.append(f"#s{index} = if_not_exists(#s{index}, :s{index})")
        return self._update_record(
            job_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=(
                "(task_arn = :task OR contains(retired_tasks, :task)) "
                "AND NOT contains(billed_tasks, :task)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _update_record(self, job_id: int, **request: Any) -> dict[str, Any] | None:
        """A conditional UpdateItem of the job's record; the record after it, or None when
        the condition did not hold."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.table, Key=key(job_id), ReturnValues="ALL_NEW", **request
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _record(response["Attributes"])

    def fail_interrupted(self, job_id: int, task_arn: str, reason: str) -> bool:
        """A `stopped`/`failed` record whose task stopped before it took its job, and that is
        not relaunched: `failed` with the reason, and `recovery_checked` so no later cleanup
        looks at it again. False if another cleanup decided first (or the task changed)."""
        now = iso(self.clock())
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key(job_id),
                UpdateExpression=(
                    "SET #status = :failed, reason = :reason, recovery_checked = :at, "
                    "updated_at = :at, "
                    "history = list_append(if_not_exists(history, :empty), :entry)"
                ),
                ConditionExpression=(
                    "#status IN (:stopped, :failed) AND task_arn = :task AND "
                    "attribute_not_exists(recovery_checked)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":failed": _value("failed"),
                    ":stopped": _value("stopped"),
                    ":task": _value(task_arn),
                    ":reason": _value(_reason(reason)),
                    ":at": _value(now),
                    ":empty": _value([]),
                    ":entry": _value([{"status": "failed", "at": now, "reason": _reason(reason)}]),
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True
