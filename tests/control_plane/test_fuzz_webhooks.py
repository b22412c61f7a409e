"""Bad input (issue 7): 1,000 mutated webhook events through the real handler.

Hypothesis starts from GitHub's official `workflow_job` payloads (tests/fixtures/github) and
the EventBridge events the module builds from them (harness.webhook, the mapping template's
twin), and damages them: bad or missing signatures, truncated or non-JSON bodies, wrong
types and out-of-range values (the types come from GitHub's schema), missing fields, huge
and unicode labels, foreign repositories, other actions and event types, malformed
envelopes, non-base64 bodies, and replays of jobs already launched.

Every case is invalid in something the control plane decides with (the `kind` says what),
so none may launch a runner; most also carry damage in fields the control plane ignores,
which must not break anything either. The bodies of the signature cases are otherwise
launchable jobs: only the signature stands between them and a runner.

For each case: the handler returns (an exception would mean "retry": never right for bad
input), nothing is launched (no RunTask through the fault proxy, no JIT config asked of the
GitHub stand-in), every log line is one JSON object and holds no secret. At the end ECS lists
only the tasks of the valid jobs delivered first, and GitHub only their runners.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from control_plane import signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_mode import send_job
from tests.conftest import REPO_ROOT
from tests.control_plane.harness import (
    EXTRA_LABELS,
    PAT,
    REPO,
    WEBHOOK_SECRET,
    Fleet,
    webhook,
)

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "github"
QUEUED_FIXTURES = ("queued", "queued.with-deployment")
OTHER_FIXTURES = (
    "in_progress",
    "in_progress.with-queued-steps",
    "completed.success.with-organization",
    "completed.failure.with-organization",
    "waiting",
)
GOOD_LABELS = (("self-hosted",), ("self-hosted", "class:medium"), ("self-hosted", "linux", "x64"))
CLASSES = ("small", "medium", "large")
SERVED = {"self-hosted", *EXTRA_LABELS}
# fields of workflow_job / repository the control plane decides with; damage elsewhere is cosmetic
DECISIVE_JOB_FIELDS = ("id", "run_id", "run_attempt", "labels")
EXAMPLES = 1000
ALLOWED_RESULTS = {"refused", "ignored", "rejected", "duplicate", "pong", "unchanged", "moved"}
# JSON tokens Python's json module accepts but no integer field may hold
ODD_NUMBERS = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.5", "-0", "2.0e1")
UNICODE = ("ünïcødé", "🚀", "\u202ename", "\x00", "\ud83d", "名前", "a\nb", "\u00a0", "'\"\\")

MISSING = (
    *("workflow_job", "repository", "action", "workflow_job.id", "workflow_job.labels"),
    *("repository.full_name", "workflow_job=null", "repository=null", "workflow_job=[]"),
)
ENVELOPE_DAMAGE = (
    *("detail", "detail string", "body not base64", "urlsafe base64", "body type"),
    *("field type", "no body", "source", "not an object"),
)

_job_ids = itertools.count(8_000_000_001)


# --------------------------------------------------------------------------- fixtures


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES / "webhooks" / "workflow_job" / f"{name}.payload.json").read_text()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(_fixture_text(name))


@cache
def job_schema_types() -> dict[str, frozenset[str]]:
    """JSON types of each workflow_job property, from GitHub's schema."""
    schema = json.loads((FIXTURES / "schemas" / "common" / "workflow-job.schema.json").read_text())
    types: dict[str, frozenset[str]] = {}
    for name, spec in schema["properties"].items():
        declared = spec.get("type") or [alt.get("type") for alt in spec.get("oneOf", [])]
        types[name] = frozenset([declared] if isinstance(declared, str) else declared)
    return types


def launchable(job_id: int, labels: tuple[str, ...], name: str = "queued") -> dict[str, Any]:
    """A queued job this fleet would launch a runner for (the seeded jobs prove it)."""
    payload = fixture(name)
    send_job.set_repository(payload, REPO)
    payload["action"] = "queued"
    payload["workflow_job"].update(
        id=job_id, run_id=job_id // 10, run_attempt=1, labels=list(labels), status="queued"
    )
    return payload


# --------------------------------------------------------------------------- strategies

JSON_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(st.text(max_size=12), st.sampled_from(UNICODE)),
    "integer": st.integers(min_value=-(2**70), max_value=2**70),
    "number": st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    "object": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
}


def wrong_type(declared: frozenset[str]) -> st.SearchStrategy[Any]:
    """A JSON value of a type the schema does not allow for the field."""
    allowed = set(declared) | ({"integer"} if "number" in declared else set())
    return st.one_of(*(strategy for name, strategy in JSON_TYPES.items() if name not in allowed))


def is_foreign(label: str) -> bool:
    """Whether a label makes a job not this fleet's (labels.select's rule)."""
    lower = label.strip().lower()
    return bool(lower) and lower not in SERVED and not lower.startswith(("class:", "image:"))


# labels up to the limit (512 characters) and beyond, up to what fits in an EventBridge event
huge_sizes = st.one_of(st.integers(65, 512), st.integers(513, 180_000))
foreign_labels = st.one_of(
    st.just("ubuntu-latest"),  # the fixture's own label
    st.sampled_from(UNICODE).filter(is_foreign),
    st.text(min_size=1, max_size=40).filter(is_foreign),
    huge_sizes.map(lambda n: "x" * n),
)
unknown_classes = st.one_of(
    st.text(max_size=30), st.sampled_from(UNICODE), huge_sizes.map(lambda n: "c" * n)
).filter(lambda name: name.strip().lower() not in CLASSES)


@st.composite
def cosmetic_damage(draw: st.DrawFn, payload: dict[str, Any]) -> list[str]:
    """Damage in fields the control plane ignores: wrong types, unicode, deletions, bloat."""
    done = []
    job = payload.get("workflow_job")
    types = job_schema_types()
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(("job", "job", "repository", "top")))
        if target == "job" and isinstance(job, dict):
            name = draw(st.sampled_from(sorted(set(types) - set(DECISIVE_JOB_FIELDS))))
            how = draw(st.sampled_from(("type", "unicode", "delete", "bloat")))
            if how == "type":
                job[name] = draw(wrong_type(types[name]))
            elif how == "unicode":
                job[name] = draw(st.sampled_from(UNICODE))
            elif how == "delete":
                job.pop(name, None)
            else:
                job[name] = "y" * draw(st.integers(1_000, 60_000))
            done.append(f"{how}:workflow_job.{name}")
        elif target == "repository" and isinstance(payload.get("repository"), dict):
            name = draw(st.sampled_from(("id", "name", "owner", "private", "html_url", "topics")))
            payload["repository"][name] = draw(JSON_TYPES[draw(st.sampled_from(list(JSON_TYPES)))])
            done.append(f"repository.{name}")
        else:
            name = draw(st.sampled_from(("sender", "installation", "organization", "extra")))
            payload[name] = draw(st.one_of(st.none(), st.text(max_size=8), st.integers()))
            done.append(name)
    return done


@dataclass
class Case:
    kind: str
    event: Any
    detail: str = ""
    job_id: int | None = None  # a job whose record must not exist afterwards
    damage: list[str] = field(default_factory=list)


def signed_event(body: bytes, event: str = "workflow_job", **kwargs: Any) -> dict[str, Any]:
    return webhook(body, event=event, **kwargs)


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@st.composite
def bad_signature(draw: st.DrawFn) -> Case:
    """An otherwise launchable job whose signature does not prove it came from GitHub."""
    job_id = next(_job_ids)
    body = body_of(launchable(job_id, draw(st.sampled_from(GOOD_LABELS))))
    how = draw(
        st.sampled_from(
            ("missing", "wrong secret", "other body", "sha1", "malformed", "uppercase", "empty")
        )
    )
    if how == "missing":
        event = signed_event(body, secret=None)
    elif how == "wrong secret":
        secret = draw(st.text(min_size=1, max_size=20).filter(lambda s: s != WEBHOOK_SECRET))
        event = signed_event(body, secret=secret)
    elif how == "other body":  # signed, then changed in transit
        changed = body_of(launchable(job_id, ("self-hosted", "class:large")))
        event = signed_event(body, signature_header=signature.sign(WEBHOOK_SECRET, changed))
    else:
        event = signed_event(body)
        good = event["detail"]["signature"]
        event["detail"]["signature"] = {  # straight into the detail: the template would drop it
            "sha1": "sha1=" + good[7:47],
            "malformed": draw(st.one_of(st.text(max_size=80), st.just(good[:-1]))),
            "uppercase": "SHA256=" + good[7:],
            "empty": "",
        }[how]
    return Case("bad signature", event, how, job_id=job_id)


@st.composite
def not_json(draw: st.DrawFn) -> Case:
    text = json.dumps(launchable(next(_job_ids), GOOD_LABELS[1]))
    how = draw(st.sampled_from(("truncated", "bytes", "text", "deep array", "deep object")))
    if how == "truncated":
        body = text[: draw(st.integers(0, len(text) - 1))].encode()
    elif how == "bytes":
        body = draw(st.binary(max_size=200)) + b"\xff\xfe"  # never valid UTF-8 JSON
    elif how == "text":
        body = ("{" + draw(st.text(max_size=60))).encode("utf-8", "surrogatepass")
    elif how == "deep array":
        body = b"[" * draw(st.integers(1_000, 100_000))
    else:
        body = b'{"a":' * draw(st.integers(1_000, 50_000))
    return Case("not json", signed_event(body), how)


@st.composite
def not_an_object(draw: st.DrawFn) -> Case:
    value = draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=10),
            st.lists(st.integers(), max_size=3),
            st.just([launchable(next(_job_ids), GOOD_LABELS[0])]),
        )
    )
    return Case("not an object", signed_event(body_of(value)), type(value).__name__)


@st.composite
def missing_field(draw: st.DrawFn) -> Case:
    payload = launchable(next(_job_ids), draw(st.sampled_from(GOOD_LABELS)))
    path = draw(st.sampled_from(MISSING))
    if "=" in path:
        name, value = path.split("=")
        payload[name] = json.loads(value)
    elif "." in path:
        parent, name = path.split(".")
        del payload[parent][name]
    else:
        del payload[path]
    damage = draw(cosmetic_damage(payload))
    return Case("missing field", signed_event(body_of(payload)), path, damage=damage)


@st.composite
def wrong_decisive_type(draw: st.DrawFn) -> Case:
    """A field the control plane decides with, of a type or range the schema rules out."""
    job_id = next(_job_ids)
    payload = launchable(job_id, draw(st.sampled_from(GOOD_LABELS)))
    job = payload["workflow_job"]
    types = job_schema_types()
    name = draw(st.sampled_from(("id", "run_id", "run_attempt", "labels", "full_name", "action")))
    raw = None
    if name in ("id", "run_id", "run_attempt"):
        how = draw(st.sampled_from(("type", "range", "numeric string", "odd number")))
        if how == "type":  # null run_id / run_attempt mean "not given": 0 and 1
            job[name] = draw(wrong_type(types[name] | {"null"} if name != "id" else types[name]))
        elif how == "range":
            low = 0 if name == "run_id" else 1  # run_id 0 is read as "not given"
            job[name] = draw(st.one_of(st.integers(max_value=low - 1), st.just(2**63)))
        elif how == "numeric string":
            job[name] = str(draw(st.integers(1, 10**12)))
        else:
            raw = draw(st.sampled_from(ODD_NUMBERS).filter(lambda n: n != "-0" or name != "run_id"))
            job[name] = "@@ODD@@"
    elif name == "labels":
        how = "element" if draw(st.booleans()) else "type"
        if how == "type":
            job["labels"] = draw(wrong_type(frozenset({"array"})) | st.just("self-hosted"))
        else:
            odd = draw(wrong_type(frozenset({"string"})))
            job["labels"] = ["self-hosted", odd] if draw(st.booleans()) else [odd]
    elif name == "full_name":
        how = "type"
        payload["repository"]["full_name"] = draw(
            wrong_type(frozenset({"string"})) | st.sampled_from(("", "Codertocat", "/"))
        )
    else:
        how = "type"
        payload["action"] = draw(wrong_type(frozenset({"string"})) | st.just(["queued"]))
    damage = draw(cosmetic_damage(payload))
    body = body_of(payload)
    if raw is not None:
        body = body.replace(b'"@@ODD@@"', raw.encode())
    return Case("wrong type", signed_event(body), f"{name}:{how}", job_id=job_id, damage=damage)


@st.composite
def bad_labels(draw: st.DrawFn) -> Case:
    job_id = next(_job_ids)
    how = draw(
        st.sampled_from(
            ("foreign", "unknown class", "two classes", "two images", "none", "blank", "many")
        )
    )
    if how == "foreign":
        labels = [*draw(st.sampled_from(GOOD_LABELS)), draw(foreign_labels)]
    elif how == "unknown class":
        labels = ["self-hosted", "class:" + draw(unknown_classes)]
    elif how == "two classes":
        first, second = draw(st.permutations(CLASSES))[:2]
        labels = ["self-hosted", f"class:{first}", f"CLASS:{second}"]
    elif how == "two images":
        image = draw(st.text(min_size=1, max_size=20).filter(lambda i: i.strip().lower() != "a/b"))
        labels = ["self-hosted", f"image:{image}", "image:a/b"]
    elif how == "none":
        labels = []
    elif how == "blank":
        labels = [draw(st.sampled_from(("", " ", "\t", "\u00a0\n")))]
    else:  # more labels than a runner can have: foreign ones, or the same one over and over
        count = draw(st.integers(100, 5_000))
        same = draw(st.booleans())
        labels = ["self-hosted", *("self-hosted" if same else f"l{i}" for i in range(count))]
    labels = draw(st.permutations(labels))
    payload = launchable(job_id, tuple(labels))
    damage = draw(cosmetic_damage(payload))
    return Case("labels", signed_event(body_of(payload)), how, job_id=job_id, damage=damage)


@st.composite
def foreign_repository(draw: st.DrawFn) -> Case:
    owner = draw(st.sampled_from(("Codertocat", "octo-org", "🚀", "other")))
    repo = draw(st.one_of(st.sampled_from(("Hello-World2", "x", "Hello-World/x")), st.text()))
    full_name = f"{owner}/{repo}"
    if full_name.lower() == REPO.lower():
        full_name = "octo-org/octo-repo"
    payload = launchable(next(_job_ids), draw(st.sampled_from(GOOD_LABELS)))
    payload["repository"]["full_name"] = full_name
    damage = draw(cosmetic_damage(payload))
    return Case("repository", signed_event(body_of(payload)), "out of scope", damage=damage)


@st.composite
def other_action(draw: st.DrawFn, prefix: str) -> Case:
    job_id = next(_job_ids)
    name = draw(st.sampled_from(QUEUED_FIXTURES + OTHER_FIXTURES))
    payload = launchable(job_id, draw(st.sampled_from(GOOD_LABELS)), name)
    action = draw(
        st.one_of(
            st.sampled_from(("in_progress", "completed", "waiting", "QUEUED", "queued ", "")),
            st.text(max_size=15),
        ).filter(lambda a: a != "queued")
    )
    payload["action"] = action
    if action in ("in_progress", "completed"):  # a runner this fleet never started
        payload["workflow_job"]["runner_name"] = draw(
            st.one_of(
                st.just(f"{prefix}-{job_id}"),
                st.just(f"{prefix}-{job_id}-x"),
                st.sampled_from(UNICODE),
                wrong_type(frozenset({"string", "null"})),
            )
        )
        payload["workflow_job"]["conclusion"] = draw(
            st.one_of(st.sampled_from(("success", "failure", None)), JSON_TYPES["number"])
        )
    damage = draw(cosmetic_damage(payload))
    return Case("action", signed_event(body_of(payload)), repr(action), damage=damage)


@st.composite
def other_event_type(draw: st.DrawFn) -> Case:
    """A launchable queued job, correctly signed, sent as another event type."""
    job_id = next(_job_ids)
    body = body_of(launchable(job_id, draw(st.sampled_from(GOOD_LABELS))))
    github_event = draw(
        st.one_of(
            st.sampled_from(("ping", "workflow_run", "check_run", "push", "installation")),
            st.sampled_from(("WORKFLOW_JOB", "workflow-job", "workflow_job ", "", " ")),
            st.text(max_size=20).filter(lambda e: e != "workflow_job"),
        )
    )
    event = signed_event(body, event=github_event)
    if draw(st.booleans()):  # the envelope's detail-type disagrees too
        event["detail-type"] = github_event
    return Case("event type", event, repr(github_event), job_id=job_id)


@st.composite
def malformed_envelope(draw: st.DrawFn) -> Case:
    job_id = next(_job_ids)
    event = signed_event(body_of(launchable(job_id, draw(st.sampled_from(GOOD_LABELS)))))
    detail = event["detail"]
    how = draw(st.sampled_from(ENVELOPE_DAMAGE))
    if how == "detail":
        event["detail"] = draw(wrong_type(frozenset({"object", "string"})))
        if draw(st.booleans()):
            del event["detail"]
    elif how == "detail string":
        event["detail"] = draw(
            st.sampled_from((json.dumps(detail)[:-1], "[]", "null", "", json.dumps([detail])))
        )
    elif how == "body not base64":
        encoded = detail["body"]
        cut = draw(st.integers(0, len(encoded)))
        junk = draw(st.sampled_from(("!", "*", " ", "\n", "é", "-", "_", "==x", "%", "\x00")))
        detail["body"] = encoded[:cut] + junk + encoded[cut:]
    elif how == "urlsafe base64":  # another alphabet than the template's
        raw = base64.b64decode(detail["body"]) + b"\xfb\xff\xbf" * 3  # bytes that give + and /
        detail["body"] = base64.urlsafe_b64encode(raw).decode()
    elif how == "body type":
        detail["body"] = draw(wrong_type(frozenset({"string"})))
    elif how == "field type":
        name = draw(st.sampled_from(("signature", "event", "delivery")))
        detail[name] = draw(wrong_type(frozenset({"string"})))
    elif how == "no body":
        del detail["body"]
    elif how == "source":
        event["source"] = draw(
            st.one_of(
                st.sampled_from(("aws.ecs", "aws.events", "aws-runner-fleet.github ", "")),
                wrong_type(frozenset({"string"})),
            )
        )
        if draw(st.booleans()):
            del event["source"]
    else:
        event = draw(st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
    return Case("envelope", event, how, job_id=job_id)


@st.composite
def replay(draw: st.DrawFn, seeded: list[dict[str, Any]]) -> Case:
    """A job already launched, delivered again: as is, re-signed, or changed."""
    original = draw(st.sampled_from(seeded))
    how = draw(st.sampled_from(("same delivery", "new delivery", "other labels", "other fixture")))
    if how == "same delivery":
        event = copy.deepcopy(original["event"])
    else:
        payload = copy.deepcopy(original["payload"])
        if how == "other labels":
            payload["workflow_job"]["labels"] = list(draw(st.sampled_from(GOOD_LABELS)))
        elif how == "other fixture":
            job = payload["workflow_job"]
            payload = launchable(job["id"], tuple(job["labels"]), "queued.with-deployment")
        damage = draw(cosmetic_damage(payload)) if how != "new delivery" else []
        for name in DECISIVE_JOB_FIELDS[:3]:  # the same job and attempt
            payload["workflow_job"][name] = original["payload"]["workflow_job"][name]
        event = signed_event(body_of(payload))
        return Case("replay", event, how, damage=damage)
    return Case("replay", event, how)


def cases(seeded: list[dict[str, Any]], prefix: str) -> st.SearchStrategy[Case]:
    # The cheap cases (refused before anything is read from AWS) are a minority: most cases
    # carry a valid signature and reach the parsing, selection and state-table code.
    return st.one_of(
        bad_signature(),
        not_json(),
        not_an_object(),
        missing_field(),
        wrong_decisive_type(),
        wrong_decisive_type(),
        bad_labels(),
        bad_labels(),
        foreign_repository(),
        other_action(prefix),
        other_event_type(),
        malformed_envelope(),
        replay(seeded),
    )


# --------------------------------------------------------------------------- the test


def secrets_of(fleet: Fleet, app_key: Any) -> list[str]:
    """Every secret the handler holds: webhook secret, PAT, App key, the JIT configs and the
    runner credentials inside them."""
    found = [WEBHOOK_SECRET, PAT, app_key.private_pem.splitlines()[1]]
    for runner in fleet.github.runners():
        encoded = runner["_jit"]
        found.append(encoded)
        inner = json.loads(base64.b64decode(encoded))
        credentials = json.loads(base64.b64decode(inner[".credentials"]))
        found.append(credentials["Data"]["token"])
    return found


def invoke_capturing(fleet: Fleet, event: Any) -> tuple[Any, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = fleet.invoke(event)
    return result, out.getvalue().splitlines() + err.getvalue().splitlines()


def test_bad_input_launches_nothing_raises_nothing_and_logs_no_secret(
    fleet: Fleet, app_key: Any
) -> None:
    # Valid jobs first: they prove the base payloads launch, and give replays their target.
    seeded = []
    logs: list[str] = []
    for labels in GOOD_LABELS[:2]:
        payload = launchable(next(_job_ids), labels)
        event = webhook(payload)
        result, lines = invoke_capturing(fleet, copy.deepcopy(event))
        assert result["result"] == "launched", result
        seeded.append({"payload": payload, "event": event, "task_arn": result["task_arn"]})
        logs += lines
    secrets = secrets_of(fleet, app_key)
    assert len(secrets) == 3 + 2 * len(seeded)
    seen: Counter[tuple[str, str]] = Counter()  # (kind, result)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(seeded, fleet.prefix))
    def feed(case: Case) -> None:
        run_tasks, jit_requests = len(fleet.run_task_calls()), len(fleet.jit_requests())
        try:
            result, lines = invoke_capturing(fleet, case.event)
        except Exception as exc:
            raise AssertionError(f"{case.kind} ({case.detail}) raised {exc!r}") from exc
        where = f"{case.kind} ({case.detail}; damage {case.damage}) → {result}"
        assert isinstance(result, dict), where
        assert result.get("result") in ALLOWED_RESULTS, where
        assert len(fleet.run_task_calls()) == run_tasks, f"RunTask called: {where}"
        assert len(fleet.jit_requests()) == jit_requests, f"JIT config requested: {where}"
        if case.job_id is not None and case.kind in ("bad signature", "event type", "envelope"):
            assert fleet.record(case.job_id) is None, f"recorded: {where}"
        if case.kind == "replay" and not case.damage:
            assert result["result"] == "duplicate", where
        for line in lines:
            assert isinstance(json.loads(line), dict), f"not a JSON log line: {line[:200]}"
            for secret in secrets:
                assert secret not in line, f"a secret was logged: {where}"
        seen[case.kind, result["result"]] += 1

    feed()

    # what ran: every kind, mostly past the signature check
    kinds = Counter(kind for (kind, _), count in seen.items() for _ in range(count))
    results = Counter(result for (_, result), count in seen.items() for _ in range(count))
    print(f"fuzzed {kinds.total()} events: {dict(kinds)}; results {dict(results)}")
    assert kinds.total() >= EXAMPLES
    assert min(kinds.values()) >= 30 and len(kinds) == 11, kinds
    assert kinds["bad signature"] + kinds["envelope"] < 0.35 * kinds.total(), kinds
    assert results["rejected"] >= 30 and seen["replay", "duplicate"] >= 30, results

    # what exists afterwards: only the seeded jobs' tasks and runners
    assert fleet.tasks() == sorted(s["task_arn"] for s in seeded)
    assert len(fleet.github.runners()) == len(seeded)
    for line in logs:
        assert not [secret for secret in secrets if secret in line]


# --------------------------------------------------------------------------- what it found


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "8000000001"}, "workflow_job.id is not an integer"),  # was launched as int("...")
        ({"id": True}, "workflow_job.id is not an integer"),  # was job 1
        ({"id": 0}, "workflow_job.id is not an integer"),
        ({"id": 2**64}, "workflow_job.id is not an integer"),  # was a DynamoDB error, retried
        ({"run_attempt": 0}, "workflow_job.run_attempt is not an integer"),  # was attempt 1
        ({"run_attempt": "2"}, "workflow_job.run_attempt is not an integer"),
        ({"runner_name": 5}, "workflow_job.runner_name is not a string"),  # was a TypeError
        ({"workflow_name": "\ud83d"}, "workflow_job text is not valid Unicode"),  # DynamoDB 500
        ({"labels": ["self-hosted", "class:" + "c" * 150_000]}, "workflow_job.labels: more than"),
        ({"labels": ["self-hosted"] * 101}, "workflow_job.labels: more than"),
    ],
)
def test_what_the_fuzzer_found_is_refused(fleet: Fleet, change: dict, reason: str) -> None:
    job_id = next(_job_ids)
    payload = launchable(job_id, GOOD_LABELS[1])
    payload["workflow_job"].update(change)
    result = fleet.invoke(webhook(payload))
    assert result["result"] == "refused" and result["reason"].startswith(reason), result
    assert fleet.record(job_id) is None and fleet.record(1) is None
    assert fleet.tasks() == [] and fleet.jit_requests() == []


@pytest.mark.parametrize(
    "event",
    [
        None,
        ["not", "an", "object"],
        webhook(b"[" * 100_000),  # json.loads raised RecursionError
    ],
)
def test_what_the_fuzzer_found_is_not_an_error(fleet: Fleet, event: object) -> None:
    result = fleet.invoke(event)
    assert result["result"] in ("ignored", "refused"), result
    assert fleet.records() == [] and fleet.tasks() == []
