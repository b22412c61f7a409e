"""The local webhook endpoint: what API Gateway → EventBridge → Lambda do, in one process.

POST /webhook   GitHub's request. The raw body and headers go through the module's own
                API Gateway request mapping template (webhook-request.vtl, rendered by a
                Velocity engine: local_mode/vtl.py), the PutEvents entry it renders is routed
                like EventBridge routes it (the rules on the fleet's custom bus that target the
                Lambda, matched with their patterns), and the real handler runs in this process
                with a Lambda-like context. 202 when the event was accepted, 500 when the
                handler raised (or the template failed).
POST /events    An EventBridge event as AWS services emit it (e.g. "ECS Task State Change"
                from the runner simulator, since moto emits none); routed over the default bus.
GET  /health    200 with what this endpoint serves.

moto cannot run the Lambda behind a PutEvents target, hence this stand-in. The handler's
environment is the applied function's configuration in the emulator
(`lambda get_function_configuration` → Environment), plus AWS_ENDPOINT_URL and the
emulator's credentials, so the code runs with exactly what Terraform configured.
A scheduler thread fires the "Scheduled Event"s of rate() rules that target the Lambda.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from requests.structures import CaseInsensitiveDict

LOG = logging.getLogger("local_mode.webhook_server")
REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = REPO_ROOT / "lambda"
DEFAULT_BUS = "default"
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
MOTO_ACCOUNT = "123456789012"  # the emulator's account


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def eventbridge_envelope(
    entry: Mapping[str, Any], *, account: str = MOTO_ACCOUNT, region: str = "us-east-1"
) -> dict:
    """An event as EventBridge hands it to a target, from a PutEvents entry (Source,
    DetailType, Detail as JSON text) or an event's own fields (source, detail-type, detail);
    a new id and the current time unless the entry has them."""
    detail = entry.get("detail", entry.get("Detail", {}))
    if isinstance(detail, str):
        detail = json.loads(detail)
    return {
        "version": "0",
        "id": entry.get("id") or str(uuid.uuid4()),
        "detail-type": entry.get("detail-type", entry.get("DetailType", "")),
        "source": entry.get("source", entry.get("Source", "")),
        "account": entry.get("account") or account,
        "time": entry.get("time") or utc_now(),
        "region": entry.get("region") or region,
        "resources": list(entry.get("resources", entry.get("Resources", [])) or []),
        "detail": detail,
    }


# --------------------------------------------------------------------------- Lambda runtime


@dataclass
class FakeLambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or (
            f"{datetime.now(UTC):%Y/%m/%d}/[{self.function_version}]{uuid.uuid4().hex}"
        )
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def import_handler(handler: str) -> Callable[[dict, Any], Any]:
    """Imports "module.path.function" the way the Lambda runtime would from the package.

    The zip's root may be the package's parent (handler "control_plane.handler.lambda_handler")
    or the package itself (handler "handler.lambda_handler"); both resolve from the source tree.
    """
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"bad Lambda handler {handler!r}")
    for path in (LAMBDA_SRC / "control_plane", LAMBDA_SRC):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


class LambdaRuntime:
    """Runs the applied Lambda's handler in this process with the applied configuration."""

    def __init__(
        self,
        function_name: str,
        aws_endpoint_url: str,
        region: str,
        concurrency: int = 1,
        handler_override: str | None = None,
    ) -> None:
        self.aws_endpoint_url = aws_endpoint_url
        self.region = region
        client = boto3.client("lambda", endpoint_url=aws_endpoint_url, region_name=region)
        config = client.get_function_configuration(FunctionName=function_name)
        self.function_name = config["FunctionName"]
        self.function_arn = config["FunctionArn"]
        self.version = config.get("Version", "$LATEST")
        self.memory = int(config.get("MemorySize", 128))
        self.timeout = int(config.get("Timeout", 3))
        self.handler_name = handler_override or config["Handler"]
        self.environment = dict(config.get("Environment", {}).get("Variables", {}))
        self.role_arn = config["Role"]
        self._apply_environment()
        self.handler = import_handler(self.handler_name)
        # One "execution environment" per slot: Lambda never runs two events at once in one.
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self.invocations = 0

    def _role_credentials(self) -> dict[str, str]:
        """The function's execution role session, as Lambda gives the function: resource
        policies that name the role (the JIT config bucket's) then see the real caller."""
        sts = boto3.client("sts", endpoint_url=self.aws_endpoint_url, region_name=self.region)
        credentials = sts.assume_role(
            RoleArn=self.role_arn, RoleSessionName=self.function_name[:64]
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def _apply_environment(self) -> None:
        env = {
            **self.environment,
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            **self._role_credentials(),
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
        }
        os.environ.update(env)

    def invoke(self, event: dict) -> Any:
        context = FakeLambdaContext(
            function_name=self.function_name,
            function_version=self.version,
            invoked_function_arn=self.function_arn,
            memory_limit_in_mb=self.memory,
            timeout_seconds=self.timeout,
        )
        with self._slots:
            self.invocations += 1
            started = time.monotonic()
            LOG.info(
                "START RequestId: %s %s/%s",
                context.aws_request_id,
                event.get("source"),
                event.get("detail-type"),
            )
            try:
                return self.handler(event, context)
            finally:
                LOG.info(
                    "END RequestId: %s Duration: %.1f ms",
                    context.aws_request_id,
                    (time.monotonic() - started) * 1000,
                )


# --------------------------------------------------------------------------- EventBridge routing


def pattern_matches(pattern: str | None, event: dict) -> bool:
    """EventBridge pattern matching, using the matcher moto's EventBridge uses."""
    from moto.events.models import EventPattern, EventPatternParser

    return EventPattern(pattern, EventPatternParser(pattern).parse()).matches_event(event)


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def rate_seconds(expression: str) -> int | None:
    match = _RATE.match(expression.strip())
    if not match:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]


@dataclass
class Rule:
    name: str
    bus: str
    pattern: str | None
    schedule: str | None


class EventRouter:
    """Delivers events to the Lambda through the rules that target it, like EventBridge."""

    def __init__(
        self,
        runtime: LambdaRuntime,
        aws_endpoint_url: str,
        region: str,
        webhook_bus: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.webhook_bus = webhook_bus
        self.events = boto3.client("events", endpoint_url=aws_endpoint_url, region_name=region)
        self.account = runtime.function_arn.split(":")[4]
        self.region = region
        self.rules = self.load_rules()
        if not any(rule.bus != DEFAULT_BUS for rule in self.rules):
            LOG.warning("no rule on a custom bus targets %s", runtime.function_arn)

    def load_rules(self) -> list[Rule]:
        rules = []
        for bus in self.events.list_event_buses().get("EventBuses", []):
            for page in self.events.get_paginator("list_rules").paginate(EventBusName=bus["Name"]):
                for rule in page.get("Rules", []):
                    if rule.get("State", "ENABLED") != "ENABLED":
                        continue
                    targets = self.events.list_targets_by_rule(
                        Rule=rule["Name"], EventBusName=bus["Name"]
                    ).get("Targets", [])
                    if any(self._is_our_lambda(t["Arn"]) for t in targets):
                        rules.append(
                            Rule(
                                name=rule["Name"],
                                bus=bus["Name"],
                                pattern=rule.get("EventPattern"),
                                schedule=rule.get("ScheduleExpression"),
                            )
                        )
        for rule in rules:
            LOG.info("rule %s on bus %s → %s", rule.name, rule.bus, self.runtime.function_name)
        return rules

    def _is_our_lambda(self, arn: str) -> bool:
        ours = self.runtime.function_arn
        return arn == ours or arn.split(":function:")[-1].split(":")[0] == (
            self.runtime.function_name
        )

    def envelope(self, entry: Mapping[str, Any]) -> dict:
        """The event as EventBridge hands it to a target (PutEvents entry → envelope)."""
        return eventbridge_envelope(entry, account=self.account, region=self.region)

    def matching_rules(self, event: dict, bus: str) -> list[Rule]:
        def is_bus(rule: Rule) -> bool:
            return rule.bus == bus or (bus != DEFAULT_BUS and rule.bus.endswith(f"/{bus}"))

        return [
            rule
            for rule in self.rules
            if rule.pattern and is_bus(rule) and pattern_matches(rule.pattern, event)
        ]

    def custom_bus(self) -> str:
        """The bus API Gateway puts webhook events on (the module's output, else inferred)."""
        if self.webhook_bus:
            return self.webhook_bus
        buses = {rule.bus for rule in self.rules if rule.bus != DEFAULT_BUS}
        return sorted(buses)[0] if buses else DEFAULT_BUS

    def deliver(self, event: dict, bus: str) -> list[Any]:
        """Invokes the Lambda once per matching rule; raises what the handler raised."""
        rules = self.matching_rules(event, bus)
        if not rules:
            LOG.warning(
                "no rule on bus %s matches %s/%s: not delivered",
                bus,
                event.get("source"),
                event.get("detail-type"),
            )
        return [self.runtime.invoke(event) for _ in rules]

    def schedules(self) -> list[tuple[Rule, int]]:
        found = []
        for rule in self.rules:
            seconds = rate_seconds(rule.schedule) if rule.schedule else None
            if seconds:
                found.append((rule, seconds))
        return found

    def scheduled_event(self, rule: Rule) -> dict:
        arn = f"arn:aws:events:{self.region}:{self.account}:rule/{rule.name}"
        return self.envelope(
            {
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "resources": [arn],
                "detail": {},
            }
        )


def run_schedules(router: EventRouter, stop: threading.Event) -> None:
    due = {rule.name: time.monotonic() + seconds for rule, seconds in router.schedules()}
    while not stop.wait(1.0):
        for rule, seconds in router.schedules():
            if time.monotonic() >= due.get(rule.name, 0):
                due[rule.name] = time.monotonic() + seconds
                try:
                    router.runtime.invoke(router.scheduled_event(rule))
                except Exception:
                    LOG.exception("scheduled invocation of %s failed", rule.name)


# --------------------------------------------------------------------------- HTTP


# The request template's `event_bus_name` (Terraform passes the bus the module creates);
# main() sets it to the router's webhook bus. A module setting, not an argument, keeps
# github_event(body, headers) the seam tests replace.
webhook_bus = ""


def github_event(body: bytes, headers: Mapping[str, str]) -> dict:
    """The PutEvents entry API Gateway sends for the raw webhook request: the module's request
    mapping template rendered by a Velocity engine (local_mode/vtl.py), parsed as JSON."""
    if str(LAMBDA_SRC) not in sys.path:
        sys.path.insert(0, str(LAMBDA_SRC))
    from local_mode import vtl

    return vtl.put_events_entry(body, headers, event_bus_name=webhook_bus)


class Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(413, {"message": "Request Too Long"})
            return None
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/health", "/"):
            self._reply(
                200,
                {
                    "status": "ok",
                    "function": self.server.router.runtime.function_name,
                    "invocations": self.server.router.runtime.invocations,
                    "rules": [f"{r.bus}/{r.name}" for r in self.server.router.rules],
                },
            )
        else:
            self._reply(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        body = self._body()
        if body is None:
            return
        if path == "/webhook":
            self._webhook(body)
        elif path == "/events":
            self._aws_event(body)
        else:
            self._reply(404, {"message": "Missing Authentication Token"})

    def _webhook(self, body: bytes) -> None:
        router = self.server.router
        # API Gateway treats header names case-insensitively; so does this mapping.
        headers = CaseInsensitiveDict(self.headers.items())
        try:
            entry = github_event(body, headers)
            event = router.envelope(entry)
            results = router.deliver(event, entry.get("EventBusName") or router.custom_bus())
        except Exception as exc:
            LOG.error("handler failed:\n%s", traceback.format_exc())
            self._reply(500, {"message": "Internal server error", "error": repr(exc)})
            return
        reply = {
            "id": event["id"],
            "delivery": headers.get("X-GitHub-Delivery", ""),
            "invocations": len(results),
        }
        if _jsonable(results):
            reply["results"] = results
        self._reply(202, reply)

    def _aws_event(self, body: bytes) -> None:
        router = self.server.router
        try:
            entry = json.loads(body or b"{}")
            event = router.envelope(entry)
            results = router.deliver(event, DEFAULT_BUS)
        except Exception as exc:
            LOG.error("handler failed:\n%s", traceback.format_exc())
            self._reply(500, {"message": "Internal server error", "error": repr(exc)})
            return
        self._reply(202, {"id": event["id"], "invocations": len(results)})


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], router: EventRouter) -> None:
        super().__init__(address, Handler)
        self.router = router


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--aws-endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--handler", default=None, help="override the configured handler")
    parser.add_argument("--event-bus", default=None, help="bus of the webhook events")
    parser.add_argument("--no-schedules", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)

    runtime = LambdaRuntime(
        args.function_name,
        args.aws_endpoint_url,
        args.region,
        concurrency=args.concurrency,
        handler_override=args.handler,
    )
    router = EventRouter(runtime, args.aws_endpoint_url, args.region, webhook_bus=args.event_bus)
    global webhook_bus
    webhook_bus = router.custom_bus()
    server = WebhookServer((args.host, args.port), router)
    stop = threading.Event()
    if not args.no_schedules:
        threading.Thread(target=run_schedules, args=(router, stop), daemon=True).start()
    LOG.info("listening on http://%s:%d (function %s)", args.host, args.port, args.function_name)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
