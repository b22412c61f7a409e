"""Image build records in the state table: one item per runner image tag, so that however many
jobs (or operators) ask for an image at once, one CodeBuild build runs for it.

Item `pk = "build#<image_tag>"`, `kind = "build"` (docs/CONTRACTS.md). Every write is
conditional, like the job records' (state.py):

- `create` (attribute_not_exists) or `replace` (a `failed` build, or a `succeeded` one whose
  image has gone from ECR) opens a build as `building` under a start lease, with a fresh
  `request_id` (CodeBuild's idempotency token). Only the writer that won starts the build.
- `record_started` stores the build's id once StartBuild answered and frees the lease; a
  build record left without a build id (the starter died) is taken over by `take_start`.
- `join` adds a job to `waiting_jobs` only while the build is `building`: a job that loses
  that race sees the outcome instead, so no job can miss the end of its build.
- `finish` moves `building` to `succeeded` or `failed` once (a redelivered event finds it done).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from control_plane.state import RECORD_TTL_SECONDS, StateStore, iso

KIND = "build"
BUILDING, SUCCEEDED, FAILED = "building", "succeeded", "failed"
START_DEADLINE_SECONDS = 10 * 60  # `timeout_at` of an opened build until it has started

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def key(tag: str) -> dict[str, Any]:
    return {"pk": {"S": f"build#{tag}"}}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _tidy(record: dict[str, Any]) -> dict[str, Any]:
    """The waiting jobs as a sorted list of ints (DynamoDB holds a number set)."""
    record["waiting_jobs"] = sorted(int(job) for job in record.get("waiting_jobs") or ())
    return record


def _item(attributes: dict[str, Any]) -> dict[str, Any]:
    return _tidy({k: _deserializer.deserialize(v) for k, v in attributes.items()})


def _conditional(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class BuildStore:
    def __init__(self, table: str, dynamodb: Any, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.dynamodb = dynamodb
        self.clock = clock

    def _update(self, tag: str, **request: Any) -> dict[str, Any] | None:
        """UpdateItem returning the new record, or None when its condition failed."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.table, Key=key(tag), ReturnValues="ALL_NEW", **request
            )
        except ClientError as exc:
            if _conditional(exc):
                return None
            raise
        return _item(response["Attributes"])

    # ------------------------------------------------------------------ reading

    def get(self, tag: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=key(tag), ConsistentRead=True)
        return _item(item["Item"]) if "Item" in item else None

    def newest(self, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Build records, newest first (the by-kind-created index, never a scan)."""
        for record in StateStore(self.table, self.dynamodb, self.clock).newest(KIND, since):
            yield _tidy(record)

    # ------------------------------------------------------------------ opening a build

    def _opening(
        self, owner: str, lease_seconds: float, job_id: int | None
    ) -> tuple[dict[str, Any], list[str]]:
        """The values and SET clauses of every opened build: `building` under a start lease,
        with a fresh request id (and `job_id` waiting, if given)."""
        now = self.clock()
        values: dict[str, Any] = {
            ":building": BUILDING,
            ":request": uuid.uuid4().hex,
            ":owner": owner,
            ":until": int(now + lease_seconds) + 1,
            ":at": iso(now),
            ":deadline": int(now + START_DEADLINE_SECONDS),
            ":expires": int(now + RECORD_TTL_SECONDS),
        }
        sets = [
            "#status = :building",
            "request_id = :request",
            "lease_owner = :owner",
            "lease_until = :until",
            "timeout_at = :deadline",
            "created_at = :at",
            "updated_at = :at",
            "expires_at = :expires",
        ]
        if job_id is not None:
            values[":job"] = {job_id}
            sets.append("waiting_jobs = :job")
        return values, sets

    def create(
        self,
        tag: str,
        base_image: str,
        image_uri: str,
        owner: str,
        lease_seconds: float,
        job_id: int | None = None,
    ) -> dict[str, Any] | None:
        """Opens the first build of `tag`; None if a record exists already."""
        values, sets = self._opening(owner, lease_seconds, job_id)
        values |= {":kind": KIND, ":tag": tag, ":base": base_image, ":uri": image_uri, ":none": {}}
        sets += [
            "kind = :kind",
            "image_tag = :tag",
            "base_image = :base",
            "image_uri = :uri",
            "task_definitions = :none",
        ]
        return self._update(
            tag,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(values),
        )

    def replace(
        self,
        previous: dict[str, Any],
        owner: str,
        lease_seconds: float,
        job_id: int | None = None,
    ) -> dict[str, Any] | None:
        """Opens a new build of a tag whose last build failed or whose image is gone; None if
        another invocation replaced (or changed) `previous` first."""
        values, sets = self._opening(owner, lease_seconds, job_id)
        values |= {":was": previous["status"], ":none": {}}
        # A record `remember_task_definition` made for an image found in ECR was never built:
        # it has no request id.
        condition = "attribute_not_exists(request_id) AND #status = :was"
        if "request_id" in previous:
            values[":previous"] = previous["request_id"]
            condition = "request_id = :previous AND #status = :was"
        # The new image gets new `-img` revisions: those of the image that is gone may have
        # been deregistered by the cleanup (images.py) already.
        sets.append("task_definitions = :none")
        removed = "build_id, build_arn, log_link, started_at, finished_at, reason"
        if job_id is None:
            removed += ", waiting_jobs"
        return self._update(
            previous["image_tag"],
            UpdateExpression=f"SET {', '.join(sets)} REMOVE {removed}",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(values),
        )

    def take_start(self, tag: str, request_id: str, owner: str, lease_seconds: float) -> bool:
        """Takes over starting a build whose starter died before recording the build id."""
        now = self.clock()
        return (
            self._update(
                tag,
                UpdateExpression="SET lease_owner = :owner, lease_until = :until, updated_at = :at",
                ConditionExpression=(
                    "#status = :building AND request_id = :request AND "
                    "attribute_not_exists(build_id) AND "
                    "(attribute_not_exists(lease_until) OR lease_until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(
                    {
                        ":building": BUILDING,
                        ":request": request_id,
                        ":owner": owner,
                        ":until": int(now + lease_seconds) + 1,
                        ":at": iso(now),
                        ":now": int(now),
                    }
                ),
            )
            is not None
        )

    def record_started(
        self, tag: str, owner: str, build: dict[str, Any], timeout_at: int
    ) -> dict[str, Any] | None:
        """Stores what StartBuild answered and frees the start lease."""
        now = self.clock()
        return self._update(
            tag,
            UpdateExpression=(
                "SET build_id = :id, build_arn = :arn, log_link = :logs, started_at = :at, "
                "timeout_at = :timeout, updated_at = :at REMOVE lease_owner, lease_until"
            ),
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues=_values(
                {
                    ":id": build["id"],
                    ":arn": build.get("arn") or build["id"],
                    ":logs": (build.get("logs") or {}).get("deepLink") or "",
                    ":timeout": timeout_at,
                    ":at": iso(now),
                    ":owner": owner,
                }
            ),
        )

    def release_start(self, tag: str, owner: str, reason: str) -> None:
        """Gives up the start lease (StartBuild failed) so that a retry starts the build."""
        self._update(
            tag,
            UpdateExpression="SET reason = :reason, updated_at = :at "
            "REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues=_values(
                {":reason": reason[:500], ":at": iso(self.clock()), ":owner": owner}
            ),
        )

    # ------------------------------------------------------------------ waiting and ending

    def join(self, tag: str, request_id: str, job_id: int) -> dict[str, Any] | None:
        """Adds a job to the build's waiting list; None if the build is no longer running."""
        return self._update(
            tag,
            UpdateExpression="ADD waiting_jobs :job SET updated_at = :at",
            ConditionExpression="#status = :building AND request_id = :request",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(
                {
                    ":job": {job_id},
                    ":at": iso(self.clock()),
                    ":building": BUILDING,
                    ":request": request_id,
                }
            ),
        )

    def finish(
        self,
        tag: str,
        build_arn: str | None,
        status: str,
        reason: str | None = None,
        log_link: str | None = None,
    ) -> dict[str, Any] | None:
        """`building` → `succeeded`/`failed`, for the build `build_arn` only (a record whose
        starter died before recording the build adopts it, unless a start is in flight; None:
        a build that never started); None if the record was already finished or belongs to
        another build."""
        now = self.clock()
        values: dict[str, Any] = {
            ":status": status,
            ":building": BUILDING,
            ":at": iso(now),
            ":now": int(now),
        }
        sets = ["#status = :status", "finished_at = :at", "updated_at = :at"]
        unstarted = (
            "(attribute_not_exists(build_arn) AND "
            "(attribute_not_exists(lease_until) OR lease_until < :now))"
        )
        condition = f"#status = :building AND {unstarted}"
        if build_arn:
            values[":arn"] = build_arn
            sets.append("build_arn = :arn")
            condition = f"#status = :building AND (build_arn = :arn OR {unstarted})"
        if reason:
            values[":reason"] = reason[:500]
            sets.append("reason = :reason")
        if log_link:
            values[":logs"] = log_link
            sets.append("log_link = :logs")
        return self._update(
            tag,
            UpdateExpression=f"SET {', '.join(sets)}",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(values),
        )

    # ------------------------------------------------------------------ task definitions

    def remember_task_definition(
        self, tag: str, base_image: str, class_definition: str, image_definition: str
    ) -> None:
        """Notes the `-img` task definition revision registered for (class revision, tag); an
        image found in ECR without a record gets one (`succeeded`) to hold it."""
        now = self.clock()
        added = self._update(
            tag,
            UpdateExpression="SET task_definitions.#class = :arn, updated_at = :at",
            ConditionExpression="attribute_exists(task_definitions)",
            ExpressionAttributeNames={"#class": class_definition},
            ExpressionAttributeValues=_values({":arn": image_definition, ":at": iso(now)}),
        )
        if added is not None:
            return
        self._update(
            tag,
            UpdateExpression=(
                "SET task_definitions = :map, updated_at = :at, kind = if_not_exists(kind, :kind), "
                "#status = if_not_exists(#status, :succeeded), "
                "image_tag = if_not_exists(image_tag, :tag), "
                "base_image = if_not_exists(base_image, :base), "
                "created_at = if_not_exists(created_at, :at), "
                "expires_at = if_not_exists(expires_at, :expires)"
            ),
            ConditionExpression="attribute_not_exists(task_definitions)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(
                {
                    ":map": {class_definition: image_definition},
                    ":at": iso(now),
                    ":kind": KIND,
                    ":succeeded": SUCCEEDED,
                    ":tag": tag,
                    ":base": base_image,
                    ":expires": int(now + RECORD_TTL_SECONDS),
                }
            ),
        )
