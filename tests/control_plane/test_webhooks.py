"""Verify first: signatures, the mapping template's twin, and what is refused or acknowledged."""

from __future__ import annotations

import base64
import json

import pytest
from control_plane import signature
from control_plane.webhook_event import WebhookEventError, from_detail, to_eventbridge_event

from local_mode.webhook_server import eventbridge_envelope
from tests.conftest import REPO_ROOT
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


# ---------------------------------------------------------------- the mapping template's twin


def test_the_twin_carries_the_exact_bytes_and_the_headers() -> None:
    body = '{"a": "l\'été \\" \\u00e9",\n  "b": [1, 2]}  '.encode()
    headers = {
        "x-github-event": "workflow_job",  # any case, as API Gateway matches headers
        "X-GITHUB-DELIVERY": "d-1",
        "X-Hub-Signature-256": signature.sign(GITHUB_SECRET, body),
    }
    entry = to_eventbridge_event(body, headers, event_bus_name="fleet-bus")
    assert entry["Source"] == "aws-runner-fleet.github"
    assert entry["DetailType"] == "workflow_job"
    assert entry["EventBusName"] == "fleet-bus"
    detail = json.loads(entry["Detail"])
    assert set(detail) == {"body", "signature", "event", "delivery"}
    assert base64.b64decode(detail["body"]) == body

    request = from_detail(eventbridge_envelope(entry)["detail"])
    assert request.body == body
    assert (request.event, request.delivery) == ("workflow_job", "d-1")
    assert signature.problem(GITHUB_SECRET, request.body, request.signature) is None


def test_the_twin_leaves_missing_headers_empty() -> None:
    detail = json.loads(to_eventbridge_event(b"{}", {})["Detail"])
    assert detail == {"body": "e30=", "signature": "", "event": "", "delivery": ""}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-GitHub-Event", 'workflow_job", "x": "'),  # would break the JSON of the template
        ("X-GitHub-Event", "Workflow_Job"),
        ("X-Hub-Signature-256", "sha256=" + "A" * 64),  # GitHub sends lowercase hex
        ("X-Hub-Signature-256", "sha1=" + "0" * 40),
        ("X-GitHub-Delivery", "d" * 65),
        ("X-GitHub-Delivery", "a b"),
    ],
)
def test_the_twin_passes_only_well_formed_headers_like_the_template(name: str, value: str) -> None:
    detail = json.loads(to_eventbridge_event(b"{}", {name: value})["Detail"])
    key = {"X-GitHub-Event": "event", "X-Hub-Signature-256": "signature"}.get(name, "delivery")
    assert detail[key] == ""


def test_the_twin_matches_the_modules_mapping_template() -> None:
    template = (REPO_ROOT / "modules/control-plane/templates/webhook-request.vtl").read_text()
    for name, pattern in (
        ("X-GitHub-Event", "[a-z_]{1,64}"),
        ("X-Hub-Signature-256", "sha256=[0-9a-f]{64}"),
        ("X-GitHub-Delivery", "[0-9A-Za-z-]{1,64}"),
    ):
        assert f"$!input.params('{name}')" in template
        assert f".matches('{pattern}')" in template
    assert "$util.base64Encode($input.body)" in template
    for key in ("body", "signature", "event", "delivery"):
        assert f'\\"{key}\\":' in template


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
