"""The module's API Gateway mapping templates, rendered by a real Velocity engine.

modules/control-plane/templates/webhook-request.vtl and webhook-response.vtl are rendered
here with airspeed-ext (the Velocity engine LocalStack uses for API Gateway), with the
`$input`, `$util` and `$context` variables API Gateway documents
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html),
so local mode and the tests run the template the module deploys, not a copy of it.
Terraform's templatefile() step (api.tf) comes first: `templatefile`.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed
from control_plane.webhook_event import SOURCE

TEMPLATES = Path(__file__).resolve().parent.parent / "modules" / "control-plane" / "templates"
REQUEST_TEMPLATE = TEMPLATES / "webhook-request.vtl"
RESPONSE_TEMPLATE = TEMPLATES / "webhook-response.vtl"
EVENT_SOURCE = SOURCE  # api.tf passes local.event_source, the source the Lambda routes on

Headers = Mapping[str, str] | Iterable[tuple[str, str]]

# --------------------------------------------------------------------------- Terraform


_TF_SEQUENCE = re.compile(r"\$\$\{|%%\{|\$\{([^}]*)\}|%\{")


def templatefile(text: str, variables: Mapping[str, str]) -> str:
    """Terraform's templatefile() for what it must do to a .vtl file: `${name}` → the variable,
    `$${` / `%%{` → `${` / `%{`. An unknown `${...}` or any `%{` directive is an error (as
    Terraform fails on an unknown variable), so a VTL `${x}` cannot slip through unnoticed."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("$${", "%%{"):
            return token[1:]
        name = (match.group(1) or "").strip()
        if token.startswith("%{") or name not in variables:
            raise ValueError(f"templatefile(): {token!r} is not one of {sorted(variables)}")
        return variables[name]

    return _TF_SEQUENCE.sub(substitute, text)


# --------------------------------------------------------------------------- $input


_PATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]")


def json_path(document: Any, path: str) -> Any:
    """The value at a definite JSONPath (`$`, `.name`, `['name']`, `[0]`), or None if absent.
    The templates need no more; anything else is refused rather than guessed."""
    if not path.startswith("$"):
        raise ValueError(f"unsupported JSONPath {path!r}")
    value, position = document, 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if not step:
            raise ValueError(f"unsupported JSONPath {path!r}")
        position = step.end()
        name, index, quoted = step.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return None
            value = value[int(index)]
        elif isinstance(value, dict):
            value = value.get(name if name is not None else quoted)
        else:
            return None
    return value


class Input:
    """`$input`: the payload (`body`, `json`, `path`) and the method request's parameters."""

    def __init__(
        self,
        body: str,
        headers: Headers = (),
        querystring: Mapping[str, str] | None = None,
        path: Mapping[str, str] | None = None,
    ) -> None:
        self.body = body
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        # One value per header, the last one sent (as in the `headers` map of a REST API's
        # proxy event); a duplicated header can only change which value the template checks.
        header = dict(pairs)
        self._params = {
            "path": dict(path or {}),
            "querystring": dict(querystring or {}),
            "header": header,
        }

    def params(self, name: str | None = None) -> Any:
        """All parameters, or one "from the path, query string, or header value (searched in
        that order)"; header names are case-insensitive, as in HTTP. Absent: ""."""
        if name is None:
            return self._params
        for kind in ("path", "querystring"):
            if name in self._params[kind]:
                return self._params[kind][name]
        wanted = name.lower()
        found = [v for k, v in self._params["header"].items() if k.lower() == wanted]
        return found[-1] if found else ""

    def _document(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def path(self, path: str) -> Any:
        """The JSONPath's value as an object (numbers stay numbers: `$failed > 0`)."""
        return json_path(self._document(), path)

    def json(self, path: str = "$") -> str:
        """The JSONPath's value as a JSON string."""
        return json.dumps(json_path(self._document(), path), ensure_ascii=False)


# --------------------------------------------------------------------------- $util


_JS_ESCAPES = {
    "'": "\\'",
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


class Util:
    """`$util`, with Java's semantics: strings are UTF-8 for base64 and URL encoding."""

    def base64Encode(self, text: str) -> str:
        return base64.b64encode(str(text).encode("utf-8")).decode("ascii")

    def base64Decode(self, text: str) -> str:
        return base64.b64decode(str(text)).decode("utf-8", errors="replace")

    def escapeJavaScript(self, text: str) -> str:
        """JavaScript string rules (Apache Commons' escapeJavaScript): `'` → `\\'` (not valid
        JSON, as the docs warn), `/` → `\\/`, and every UTF-16 unit outside printable ASCII
        → `\\uXXXX`."""
        data = str(text).encode("utf-16-be", errors="surrogatepass")
        out = []
        for unit in (chr(int.from_bytes(data[i : i + 2])) for i in range(0, len(data), 2)):
            if unit in _JS_ESCAPES:
                out.append(_JS_ESCAPES[unit])
            elif unit < " " or unit > "\x7f":
                out.append(f"\\u{ord(unit):04X}")
            else:
                out.append(unit)
        return "".join(out)

    def urlEncode(self, text: str) -> str:
        # java.net.URLEncoder: keeps letters, digits and . - * _, a space is "+"
        return quote_plus(str(text), safe="*").replace("~", "%7E")

    def urlDecode(self, text: str) -> str:
        return unquote_plus(str(text))

    def parseJson(self, text: str) -> Any:
        return json.loads(text)


# --------------------------------------------------------------------------- $context


def context_variables(
    request_id: str | None = None, *, source_ip: str = "127.0.0.1", user_agent: str = ""
) -> dict[str, Any]:
    """`$context` of a request to POST /webhook on stage v1 (the module's names)."""
    now = datetime.now(UTC)
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "httpMethod": "POST",
        "resourcePath": "/webhook",
        "path": "/v1/webhook",
        "stage": "v1",
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "requestOverride": {"header": {}, "path": {}, "querystring": {}},
        "responseOverride": {"header": {}},
    }


# --------------------------------------------------------------------------- rendering


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Renders VTL text; a template error raises (API Gateway answers 500 then)."""
    return airspeed.Template(template).merge(dict(variables))


def render_request(
    body: bytes,
    headers: Headers,
    *,
    event_bus_name: str,
    querystring: Mapping[str, str] | None = None,
    context: dict[str, Any] | None = None,
    template: Path | None = None,
) -> str:
    """The integration request API Gateway sends to events:PutEvents for one webhook request.

    `$input.body` is the payload as a (Java) string decoded from UTF-8; an invalid sequence
    becomes U+FFFD, so such a body fails the signature rather than pass altered.
    """
    text = templatefile(
        (template or REQUEST_TEMPLATE).read_text(encoding="utf-8"),
        {"event_bus_name": event_bus_name, "event_source": EVENT_SOURCE},
    )
    request = Input(body.decode("utf-8", errors="replace"), headers, querystring)
    return render(
        text,
        {
            "input": request,
            "util": Util(),
            "context": context or context_variables(user_agent=request.params("User-Agent")),
            "stageVariables": {},
        },
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def put_events_entries(request: str) -> list[dict[str, Any]]:
    """The entries of a PutEvents request body (JSON, as the AWS integration sends it);
    raises ValueError where EventBridge would answer a ValidationException."""
    parsed = json.loads(request, parse_constant=_not_json)
    entries = parsed.get("Entries") if isinstance(parsed, dict) else None
    if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
        raise ValueError("a PutEvents request has 1 to 10 Entries")
    if not all(isinstance(entry, dict) for entry in entries):
        raise ValueError("a PutEvents entry is an object")
    return entries


def put_events_entry(body: bytes, headers: Headers, event_bus_name: str = "local") -> dict:
    """The one PutEvents entry API Gateway sends for a webhook request (the module's template)."""
    (entry,) = put_events_entries(render_request(body, headers, event_bus_name=event_bus_name))
    return entry


def render_response(
    put_events_response: Mapping[str, Any],
    *,
    context: dict[str, Any] | None = None,
    template: Path | None = None,
) -> tuple[int, str]:
    """(status, body) API Gateway answers for a 200 response of PutEvents: 200 unless the
    template set `$context.responseOverride.status`."""
    context = context or context_variables()
    body = render(
        (template or RESPONSE_TEMPLATE).read_text(encoding="utf-8"),
        {
            "input": Input(json.dumps(dict(put_events_response))),
            "util": Util(),
            "context": context,
            "stageVariables": {},
        },
    )
    return int(context["responseOverride"].get("status") or 200), body
