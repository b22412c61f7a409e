"""Verify first: signatures, the mapping template's twin, and what is refused or acknowledged."""

from __future__ import annotations

import base64
import json

import pytest
from control_plane import signature
from control_plane.webhook_event import WebhookEventError, from_detail

from tests.control_plane.harness import WEBHOOK_SECRET, Fleet, job_payload, webhook

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_published_test_vector() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    assert signature.sign(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    assert signature.problem(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE) is None
    uppercase_hex = "sha256=" + GITHUB_SIGNATURE.removeprefix("sha256=").upper()
    assert signature.problem(GITHUB_SECRET, GITHUB_BODY, uppercase_hex) is None


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "missing X-Hub-Signature-256"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "malformed"),
        ("sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0", "malformed"),
        ("sha256=757107ea", "malformed"),
        ("sha256=" + "0" * 64, "signature does not match"),
        (GITHUB_SIGNATURE + " ", "malformed"),
    ],
)
def test_bad_signatures(header: str, problem: str) -> None:
    assert problem in (signature.problem(GITHUB_SECRET, GITHUB_BODY, header) or "")


def test_a_signature_of_other_bytes_does_not_match() -> None:
    assert signature.problem(GITHUB_SECRET, GITHUB_BODY + b"\n", GITHUB_SIGNATURE) == (
        "signature does not match"
    )
    assert signature.problem("another secret", GITHUB_BODY, GITHUB_SIGNATURE) == (
        "signature does not match"
    )


# ---------------------------------------------------------------- the detail the template builds
# (the template itself is rendered in test_vtl_templates.py)


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"body": "not base64!", "signature": "", "event": "", "delivery": ""}, "not base64"),
        ({"body": 42}, "detail.body is not a string"),
        ("not json", "detail is not JSON"),
        ([1, 2], "detail is not an object"),
    ],
)
def test_malformed_details_are_errors(detail: object, reason: str) -> None:
    with pytest.raises(WebhookEventError, match=reason):
        from_detail(detail)


# ---------------------------------------------------------------- through the handler


def assert_nothing_changed(fleet: Fleet) -> None:
    assert fleet.records() == []
    assert fleet.tasks() == []
    assert fleet.github.requests() == []


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": None}, "missing X-Hub-Signature-256"),
        ({"secret": "not-the-secret"}, "signature does not match"),
        ({"signature_header": "sha256=xyz"}, "missing X-Hub-Signature-256"),  # template drops it
    ],
)
def test_unsigned_or_badly_signed_webhooks_change_nothing(
    fleet: Fleet, kwargs: dict, reason: str, capsys
) -> None:
    payload = job_payload(labels=["self-hosted"])
    result = fleet.deliver(payload, **kwargs)
    assert result == {"result": "refused", "reason": reason}
    assert_nothing_changed(fleet)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    refusals = [line for line in lines if line["msg"].startswith("refused")]
    assert len(refusals) == 1
    assert refusals[0]["msg"] == f"refused: {reason}"
    assert refusals[0]["delivery_id"]
    assert "job_id" not in refusals[0]  # nothing was read from an unverified body


def test_a_body_altered_after_signing_is_refused(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted"])
    event = webhook(payload)
    body = base64.b64decode(event["detail"]["body"])
    event["detail"]["body"] = base64.b64encode(
        body.replace(b"self-hosted", b"self-hostex")
    ).decode()
    assert fleet.invoke(event)["reason"] == "signature does not match"
    assert_nothing_changed(fleet)


def test_a_body_that_is_not_base64_is_refused(fleet: Fleet) -> None:
    event = webhook(job_payload())
    event["detail"]["body"] = "%%%"
    assert fleet.invoke(event) == {"result": "refused", "reason": "detail.body is not base64"}
    assert_nothing_changed(fleet)


def test_a_signed_body_that_is_not_json_is_refused(fleet: Fleet) -> None:
    assert fleet.deliver(b"{not json") == {"result": "refused", "reason": "body is not JSON"}
    assert_nothing_changed(fleet)


def test_a_signed_workflow_job_without_its_fields_is_refused(fleet: Fleet) -> None:
    result = fleet.deliver({"action": "queued", "repository": {"full_name": "a/b"}})
    assert result["result"] == "refused"
    assert "no workflow_job" in result["reason"]
    assert_nothing_changed(fleet)


@pytest.mark.parametrize(
    "fixture", ["payload.json", "with-app_id.payload.json", "with-organization.payload.json"]
)
def test_ping_is_acknowledged(fleet: Fleet, github_fixtures, fixture: str, capsys) -> None:
    body = (github_fixtures / "webhooks" / "ping" / fixture).read_bytes()  # GitHub's own bytes
    assert fleet.deliver(body, event="ping") == {"result": "pong"}
    assert_nothing_changed(fleet)
    assert '"msg":"ping acknowledged"' in capsys.readouterr().out


def test_an_unsigned_ping_is_refused(fleet: Fleet, github_fixtures) -> None:
    body = (github_fixtures / "webhooks" / "ping" / "payload.json").read_bytes()
    assert fleet.deliver(body, event="ping", secret=None)["result"] == "refused"


@pytest.mark.parametrize("event", ["push", "workflow_run", "check_run"])
def test_other_events_are_ignored(fleet: Fleet, event: str) -> None:
    result = fleet.deliver(job_payload(labels=["self-hosted"]), event=event)
    assert result == {"result": "ignored", "reason": f"event {event!r}"}
    assert_nothing_changed(fleet)


def test_the_event_name_falls_back_to_the_detail_type(fleet: Fleet) -> None:
    event = webhook(job_payload(labels=["self-hosted"]))
    event["detail"]["event"] = ""
    assert fleet.invoke(event)["result"] == "launched"


def test_the_secret_is_read_once_and_cached(fleet: Fleet) -> None:
    fleet.deliver(job_payload(labels=["ubuntu-latest"]))
    fleet.client("ssm").put_parameter(
        Name=fleet.env["WEBHOOK_SECRET_PARAM"], Value="rotated", Type="SecureString", Overwrite=True
    )
    # within the cache's lifetime the old secret still verifies (no SSM call per webhook)
    assert (
        fleet.deliver(job_payload(labels=["ubuntu-latest"]), secret=WEBHOOK_SECRET)["result"]
        == "ignored"
    )
