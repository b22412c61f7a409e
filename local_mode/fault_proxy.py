"""An HTTP proxy in front of the AWS emulator that injects AWS faults, for tests and benchmarks.

    python -m local_mode.fault_proxy --upstream http://127.0.0.1:5000 --port 5001

or `FaultProxy(upstream).start()` in a test. Point one service at it with boto3's
`AWS_ENDPOINT_URL_<SERVICE>` (e.g. AWS_ENDPOINT_URL_ECS) and every other call still goes
straight to the emulator. Requests pass through untouched, except those a fault rule matches:
the rule's canned answer is returned instead (the emulator never sees the request).

A rule matches the JSON-protocol operation (`X-Amz-Target` ends with `.RunTask`) and,
optionally, a substring of the request body; it applies `count` times. With `after`, the
request reaches the emulator first and only the answer is replaced (a lost response).
Helpers build the faults ECS really produces: throttling (HTTP 400 ThrottlingException), a
server error, and a Fargate Spot capacity shortage (HTTP 200, no task, the reason in
`failures`).

moto ignores RunTask's `clientToken`; AWS answers a repeated token with the first call's
tasks. The proxy does that for the emulator (`emulate_client_token`, on by default), so a
retry after a lost response behaves as it would on AWS.

Control API: POST /_faults (a rule or a list), GET /_requests, POST /_reset. Recorded
requests keep the operation, the parsed body and the answer's status, in memory only; the
proxy never logs a body.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

LOG = logging.getLogger("local_mode.fault_proxy")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}
SPOT_CAPACITY_REASON = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)


@dataclass
class Rule:
    operation: str  # e.g. "RunTask" (the X-Amz-Target suffix)
    status: int
    body: dict[str, Any]
    remaining: int = 1
    body_contains: str | None = None
    after: bool = False

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Rule:
        return cls(
            operation=str(spec["operation"]),
            status=int(spec.get("status", 400)),
            body=dict(spec.get("body") or {}),
            remaining=int(spec.get("count", 1)),
            body_contains=spec.get("body_contains"),
            after=bool(spec.get("after", False)),
        )


def throttling(operation: str, count: int = 1) -> dict[str, Any]:
    """The answer AWS gives a throttled JSON-protocol call."""
    return {
        "operation": operation,
        "status": 400,
        "count": count,
        "body": {"__type": "ThrottlingException", "message": "Rate exceeded"},
    }


def server_error(operation: str, count: int = 1) -> dict[str, Any]:
    return {
        "operation": operation,
        "status": 500,
        "count": count,
        "body": {"__type": "ServerException", "message": "Service unavailable. Try again later."},
    }


def lost_response(operation: str, count: int = 1) -> dict[str, Any]:
    """The call reaches the emulator, but the caller gets a 500 instead of its answer."""
    return {**server_error(operation, count), "after": True}


def spot_capacity_shortage(count: int = 1) -> dict[str, Any]:
    """RunTask on FARGATE_SPOT without capacity: HTTP 200, no task, a failure with the reason."""
    return {
        "operation": "RunTask",
        "status": 200,
        "count": count,
        "body_contains": '"FARGATE_SPOT"',
        "body": {"tasks": [], "failures": [{"reason": SPOT_CAPACITY_REASON}]},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _control(self, body: bytes) -> bool:
        path = self.path.split("?")[0]
        proxy = self.server.proxy
        if path == "/_faults" and self.command == "POST":
            specs = json.loads(body or b"[]")
            for spec in specs if isinstance(specs, list) else [specs]:
                proxy.add(spec)
            self._json(201, {"rules": len(proxy.rules)})
        elif path == "/_requests" and self.command == "GET":
            self._json(200, {"requests": proxy.requests()})
        elif path == "/_reset" and self.command == "POST":
            proxy.reset()
            self._json(200, {"reset": True})
        else:
            return False
        return True

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_") and self._control(body):
            return
        proxy = self.server.proxy
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1] if target else ""
        if not target and not body.startswith(b"Action="):  # a REST (S3) request
            operation = f"S3 {self.command}"
        rule = proxy.take(operation, body)
        if rule is None or rule.after:
            token = proxy.client_token(operation, body)
            answer = proxy.answered(token)
            if answer is None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    upstream = proxy.session().request(
                        self.command,
                        proxy.upstream + self.path,
                        data=body,
                        headers=headers,
                        timeout=60,
                        allow_redirects=False,
                    )
                except requests.RequestException as exc:
                    self._json(502, {"message": f"upstream unreachable: {type(exc).__name__}"})
                    return
                kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = (upstream.status_code, upstream.content, kept)
                proxy.remember(token, answer)
            if rule is None:
                proxy.record(operation, body, answer[0], injected=False, path=self.path)
                self._reply(*answer)
                return
        proxy.record(operation, body, rule.status, injected=True, path=self.path)
        self._reply(
            rule.status,
            json.dumps(rule.body).encode(),
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())},
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        emulate_client_token: bool = True,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.emulate_client_token = emulate_client_token
        self._answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.server = _Server((host, port), _Handler)
        self.server.proxy = self
        self.url = "http://{}:{}".format(*self.server.server_address[:2])
        self.rules: list[Rule] = []
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def add(self, spec: dict[str, Any]) -> None:
        with self._lock:
            self.rules.append(Rule.from_json(spec))

    def take(self, operation: str, body: bytes) -> Rule | None:
        text = body.decode("utf-8", "replace")
        with self._lock:
            for rule in self.rules:
                if (
                    rule.remaining > 0
                    and rule.operation == operation
                    and (rule.body_contains is None or rule.body_contains in text)
                ):
                    rule.remaining -= 1
                    return rule
        return None

    def client_token(self, operation: str, body: bytes) -> str | None:
        """RunTask's clientToken, when the proxy answers repeated tokens itself."""
        if not self.emulate_client_token or operation != "RunTask":
            return None
        try:
            request = json.loads(body)
            token = request.get("clientToken")
        except (ValueError, AttributeError):
            return None
        # ECS keeps tokens per cluster
        return f"{request.get('cluster', 'default')}|{token}" if token else None

    def answered(self, token: str | None) -> tuple[int, bytes, dict[str, str]] | None:
        with self._lock:
            return self._answers.get(token) if token else None

    def remember(self, token: str | None, answer: tuple[int, bytes, dict[str, str]]) -> None:
        if token and answer[0] == 200:
            with self._lock:
                self._answers[token] = answer

    def record(
        self, operation: str, body: bytes, status: int, injected: bool, path: str = ""
    ) -> None:
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None  # a query-protocol (form) or S3 body: the operation and path matter
        with self._lock:
            self._requests.append(
                {
                    "operation": operation,
                    "body": parsed,
                    "status": status,
                    "injected": injected,
                    "path": path,
                }
            )

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._requests if operation is None or r["operation"] == operation]

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self._requests.clear()
            self._answers.clear()

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fault-injecting proxy for the AWS emulator")
    parser.add_argument("--upstream", required=True, help="the emulator's URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
    proxy = FaultProxy(args.upstream, args.host, args.port)
    LOG.info("fault proxy on %s → %s", proxy.url, proxy.upstream)
    with contextlib.suppress(KeyboardInterrupt):
        proxy.server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
