"""The module's own mapping templates, rendered by a Velocity engine (local_mode/vtl.py), in
front of the Lambda's real webhook path: the signature is checked end to end over the exact
bytes GitHub sent, and nothing a client puts in a header gets past the template."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from control_plane import signature
from control_plane.handler import route
from control_plane.parameters import WebhookSecrets
from control_plane.webhook_event import from_detail

from local_mode import vtl, webhook_server
from local_mode.moto_server import MotoServer
from local_mode.webhook_server import eventbridge_envelope
from tests.conftest import FIXTURES, REGION
from tests.control_plane.harness import WEBHOOK_SECRET, Fleet, job_payload

SECRET = "whsec-vtl-7f3a"
BUS = "fleet-events"
# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

FIXTURE_FILES = sorted((FIXTURES / "webhooks").glob("*/*.payload.json"))
# Bodies the template must carry byte for byte: non-ASCII (2-, 3- and 4-byte UTF-8, U+2028),
# quotes, backslashes, `\'` (what escapeJavaScript would emit), text that looks like VTL or
# like Terraform's templatefile() syntax, and whitespace JSON re-serialisation would change.
HARD_BODIES = {
    "non-ascii": '{"name": "Bäckerei \u2013 日本語 😀 \u2028 end"}'.encode(),
    "quotes": b'{"q": "say \\"hi\\" and \'bye\'", "raw": "it\'s"}',
    "backslashes": b'{"path": "C:\\\\runner\\\\_work", "esc": "\\\\\'", "u": "\\u00e9"}',
    "vtl-lookalike": b'{"t": "$input.body #set($event = \\"ping\\") ${event_bus_name} ##"}',
    "whitespace": b'{\r\n\t"a" :  [1, 2 ],\n  "b": null }\n\n',
    "not-json": b'\x00\x01 plain text, a \\ and a " \xc3\xa9',
}


class SecretOnly:
    """The one service the webhook path uses before its signature check has passed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def webhook_secrets(self) -> WebhookSecrets:
        return WebhookSecrets(self.secret)

    def refreshed_webhook_secrets(self) -> WebhookSecrets | None:
        return None  # as if read again a moment ago


def sign(body: bytes, secret: str = SECRET) -> str:
    # computed here with hmac directly, so the test does not trust signature.sign
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(
    body: bytes, event: str = "ping", *, secret: str = SECRET
) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("User-Agent", "GitHub-Hookshot/044aadd"),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", str(uuid.uuid4())),
        ("X-Hub-Signature-256", sign(body, secret)),
    ]


def put_events_entry(body: bytes, headers: Any, **kwargs: Any) -> dict[str, Any]:
    """The PutEvents entry the real request template renders (API Gateway's integration
    request, parsed as JSON like EventBridge parses it)."""
    (entry,) = vtl.put_events_entries(
        vtl.render_request(body, headers, event_bus_name=BUS, **kwargs)
    )
    return entry


def lambda_event(body: bytes, headers: Any, **kwargs: Any) -> dict[str, Any]:
    """What the Lambda receives: the rendered entry in EventBridge's envelope."""
    return eventbridge_envelope(put_events_entry(body, headers, **kwargs))


def handle(event: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The Lambda handler's own routing and webhook path (handler.route)."""
    return route(event, SecretOnly(secret))  # type: ignore[arg-type]


def replace(headers: list[tuple[str, str]], name: str, *values: str) -> list[tuple[str, str]]:
    """The headers with `name` sent with each of `values` (none: not sent)."""
    return [(k, v) for k, v in headers if k != name] + [(name, v) for v in values]


# ---------------------------------------------------------------- GitHub's test vector


def test_signature_module_against_githubs_test_vector() -> None:
    assert signature.sign(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    assert signature.problem(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE) is None
    assert signature.problem(GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE) == (
        "signature does not match"
    )


def test_githubs_test_vector_through_the_template() -> None:
    headers = [("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", GITHUB_SIGNATURE)]
    event = lambda_event(GITHUB_BODY, headers)
    assert event["detail"]["signature"] == GITHUB_SIGNATURE
    assert handle(event, GITHUB_SECRET) == {"result": "pong"}
    assert handle(event, GITHUB_SECRET + " ")["reason"] == "signature does not match"


# ---------------------------------------------------------------- GitHub's payloads


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_githubs_payloads_reach_the_lambda_byte_exact(path: Path) -> None:
    body = path.read_bytes()  # the fixture's bytes, pretty-printed, trailing newline and all
    headers = github_headers(body, event=path.parent.name)
    entry = put_events_entry(body, headers)
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == (
        BUS,
        "aws-runner-fleet.github",
        path.parent.name,
    )
    request = from_detail(eventbridge_envelope(entry)["detail"])
    assert request.body == body
    assert request.event == path.parent.name
    assert request.delivery == dict(headers)["X-GitHub-Delivery"]
    assert request.signature == sign(body)
    assert signature.problem(SECRET, request.body, request.signature) is None


@pytest.mark.parametrize(
    ("fixture", "result"),
    [
        ("ping/payload.json", {"result": "pong"}),
        ("ping/with-organization.payload.json", {"result": "pong"}),
        # verified, then parsed as JSON by the Lambda: an action the fleet has nothing to do for
        ("workflow_job/waiting.payload.json", {"result": "ignored", "reason": "action 'waiting'"}),
    ],
)
def test_githubs_payloads_through_the_handler(fixture: str, result: dict) -> None:
    body = (FIXTURES / "webhooks" / fixture).read_bytes()
    event = lambda_event(body, github_headers(body, event=fixture.split("/")[0]))
    assert handle(event) == result


@pytest.mark.parametrize("body", HARD_BODIES.values(), ids=HARD_BODIES.keys())
def test_hard_bodies_arrive_byte_exact_and_verify(body: bytes) -> None:
    event = lambda_event(body, github_headers(body))
    assert from_detail(event["detail"]).body == body
    assert handle(event) == {"result": "pong"}


def test_escape_javascript_would_not_do_what_base64_does() -> None:
    """Why the template carries base64 (docs/DESIGN.md): escapeJavaScript turns `'` into `\\'`,
    which is not JSON, and it would not keep the bytes either."""
    body = HARD_BODIES["quotes"].decode()
    variables = {"input": vtl.Input(body), "util": vtl.Util()}
    escaped = vtl.render('{"body": "$util.escapeJavaScript($input.body)"}', variables)
    assert "\\'" in escaped
    with pytest.raises(json.JSONDecodeError):
        json.loads(escaped)
    encoded = vtl.render('{"body": "$util.base64Encode($input.body)"}', variables)
    assert base64.b64decode(json.loads(encoded)["body"]).decode() == body


# ---------------------------------------------------------------- forged and broken requests


BODY = (FIXTURES / "webhooks" / "ping" / "payload.json").read_bytes()
GENUINE = sign(BODY)
FORGED = sign(BODY, "not-the-secret")
SIG = "X-Hub-Signature-256"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ((), "missing X-Hub-Signature-256"),
        ((FORGED,), "signature does not match"),
        ((sign(BODY + b"\n"),), "signature does not match"),  # GitHub's signature of other bytes
        # values not in GitHub's format never reach the Lambda: the template blanks them
        ((GENUINE.upper(),), "missing X-Hub-Signature-256"),
        (("sha256=" + GENUINE[7:].upper(),), "missing X-Hub-Signature-256"),
        (("sha1=" + hashlib.sha1(BODY).hexdigest(),), "missing X-Hub-Signature-256"),  # noqa: S324
        ((GENUINE + " ",), "missing X-Hub-Signature-256"),
        ((GENUINE + '","signature":"' + GENUINE,), "missing X-Hub-Signature-256"),
        ((f"{GENUINE}, {FORGED}",), "missing X-Hub-Signature-256"),  # folded by a proxy
        # duplicated: API Gateway keeps one value (the last) and the Lambda checks that one
        ((GENUINE, FORGED), "signature does not match"),
        ((FORGED, sign(BODY, "another")), "signature does not match"),
    ],
    ids=[
        "missing",
        "other-secret",
        "other-bytes",
        "all-uppercase",
        "uppercase-hex",
        "sha1",
        "trailing-space",
        "json-injection",
        "folded",
        "duplicated-genuine-first",
        "duplicated-both-forged",
    ],
)
def test_forged_missing_and_duplicated_signatures_are_refused(values: tuple, reason: str) -> None:
    event = lambda_event(BODY, replace(github_headers(BODY), SIG, *values))
    assert handle(event) == {"result": "refused", "reason": reason}


def test_with_a_duplicated_header_only_the_checked_value_counts() -> None:
    # the value checked is a genuine HMAC of the body: the body is GitHub's, whatever came before
    event = lambda_event(BODY, replace(github_headers(BODY), SIG, FORGED, GENUINE))
    assert handle(event) == {"result": "pong"}


def test_header_names_are_case_insensitive() -> None:
    headers = [(name.lower(), value) for name, value in github_headers(BODY)]
    assert handle(lambda_event(BODY, headers)) == {"result": "pong"}


def test_a_query_parameter_shadows_the_header_as_in_api_gateway() -> None:
    # $input.params(x) searches path, query string, then headers
    event = lambda_event(BODY, github_headers(BODY), querystring={SIG: FORGED})
    assert handle(event)["reason"] == "signature does not match"


@pytest.mark.parametrize(
    "changed",
    [
        BODY + b" ",
        BODY.replace(b'"zen"', b'"Zen"'),
        json.dumps(json.loads(BODY)).encode(),  # the same JSON, re-serialised
        json.dumps(json.loads(BODY), separators=(",", ":")).encode(),
    ],
    ids=["trailing-space", "one-letter", "reserialised", "compact"],
)
def test_a_changed_body_is_refused(changed: bytes) -> None:
    assert changed != BODY
    event = lambda_event(changed, github_headers(BODY))  # signed over the original bytes
    assert handle(event) == {"result": "refused", "reason": "signature does not match"}


def test_an_event_header_cannot_smuggle_a_signature_into_the_detail() -> None:
    smuggled = 'ping","signature":"' + GENUINE
    headers = replace(replace(github_headers(BODY), SIG), "X-GitHub-Event", smuggled)
    entry = put_events_entry(BODY, headers)
    assert entry["DetailType"] == ""  # PutEvents rejects the entry (see the response test)
    detail = json.loads(entry["Detail"])
    assert detail == {
        "body": base64.b64encode(BODY).decode(),
        "signature": "",
        "event": "",
        "delivery": dict(headers)["X-GitHub-Delivery"],
    }
    assert handle(eventbridge_envelope(entry))["reason"] == "missing X-Hub-Signature-256"


# ---------------------------------------------------------------- the response template


@pytest.mark.parametrize(
    ("event", "status"),
    [("ping", 200), ("Not An Event", 502)],  # the template blanks it: an empty DetailType
)
def test_put_events_answer_through_the_response_template(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, event: str, status: int
) -> None:
    for key, value in moto_server.client_env(REGION).items():
        monkeypatch.setenv(key, value)
    events = boto3.client("events", region_name=REGION)
    bus = f"vtl-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    request = vtl.render_request(BODY, github_headers(BODY, event=event), event_bus_name=bus)
    answer = events.put_events(Entries=vtl.put_events_entries(request))
    answer.pop("ResponseMetadata")

    returned_status, returned_body = vtl.render_response(answer)
    assert returned_status == status
    if status == 200:
        assert answer["FailedEntryCount"] == 0
        assert json.loads(returned_body) == {"id": answer["Entries"][0]["EventId"]}
    else:
        assert answer["FailedEntryCount"] == 1
        assert json.loads(returned_body) == {"message": "the event bus did not accept the delivery"}


# ---------------------------------------------------------------- the whole fleet


def test_a_rendered_queued_job_launches_one_runner_and_a_forged_one_nothing(fleet: Fleet) -> None:
    payload = job_payload(labels=["self-hosted"], job_name="Bäckerei \"CI\" 'nightly' \\ 日本 😀")
    body = json.dumps(payload, ensure_ascii=False, indent=1).encode()
    forged = fleet.invoke(lambda_event(body, github_headers(body, "workflow_job", secret=SECRET)))
    assert forged == {"result": "refused", "reason": "signature does not match"}
    assert fleet.tasks() == []

    genuine = github_headers(body, "workflow_job", secret=WEBHOOK_SECRET)
    assert fleet.invoke(lambda_event(body, genuine))["result"] == "launched"
    assert len(fleet.tasks()) == 1
    record = fleet.record(payload["workflow_job"]["id"])
    assert record is not None
    assert record["job_name"] == "Bäckerei \"CI\" 'nightly' \\ 日本 😀"


# ---------------------------------------------------------------- local mode


def test_local_mode_renders_the_module_template_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_server, "webhook_bus", "local-bus")
    body = HARD_BODIES["non-ascii"]
    entry = webhook_server.github_event(body, dict(github_headers(body)))
    assert (entry["EventBusName"], entry["DetailType"]) == ("local-bus", "ping")
    assert base64.b64decode(json.loads(entry["Detail"])["body"]) == body

    # a change to the .vtl file is a change to local mode: no Python copy in between
    changed = tmp_path / "webhook-request.vtl"
    changed.write_text(vtl.REQUEST_TEMPLATE.read_text().replace('"$event",', '"x-$event",'))
    monkeypatch.setattr(vtl, "REQUEST_TEMPLATE", changed)
    assert webhook_server.github_event(body, dict(github_headers(body)))["DetailType"] == "x-ping"


class HandlerRouter:
    """The router surface the webhook endpoint uses, delivering to the handler's route()."""

    def __init__(self) -> None:
        self.rules: list = []

    def envelope(self, entry: dict[str, Any]) -> dict[str, Any]:
        return eventbridge_envelope(entry)

    def custom_bus(self) -> str:
        return BUS

    def deliver(self, event: dict[str, Any], bus: str) -> list[dict[str, Any]]:
        assert bus == BUS
        return [handle(event)]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(webhook_server, "webhook_bus", BUS)
    server = webhook_server.WebhookServer(("127.0.0.1", 0), HandlerRouter())  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def post(port: int, body: bytes, headers: list[tuple[str, str]]) -> tuple[int, dict]:
    """POST /webhook with exactly these headers, duplicates included."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/webhook")
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("values", "result"),
    [
        ((GENUINE,), {"result": "pong"}),
        ((FORGED,), {"result": "refused", "reason": "signature does not match"}),
        ((GENUINE, FORGED), {"result": "refused", "reason": "signature does not match"}),
        ((), {"result": "refused", "reason": "missing X-Hub-Signature-256"}),
    ],
    ids=["genuine", "forged", "duplicated", "missing"],
)
def test_the_local_webhook_endpoint_verifies_over_http(
    endpoint: int, values: tuple, result: dict
) -> None:
    status, reply = post(endpoint, BODY, replace(github_headers(BODY), SIG, *values))
    assert status == 202
    assert reply["results"] == [result]
