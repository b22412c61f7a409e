"""The redaction guard: registered secrets never reach a log line or a stored reason, in any
form, even where their JSON encoding differs from their text (a PEM key's line breaks, quotes
and backslashes, non-ASCII characters)."""

from __future__ import annotations

import json

import pytest
from control_plane import log
from control_plane.state import StateStore
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.control_plane.harness import Fleet

QUOTED = 'k3y"with\\back\'slash and "quotes"\\n-not-a-newline'
NON_ASCII = "contraseña-секрет-密码-🔑-Straße"
WINDOW = 12  # any run of this many characters of a secret counts as a leak


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # -----BEGIN RSA PRIVATE KEY-----
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def secrets(pem: str) -> list[str]:
    for value in (pem, QUOTED, NON_ASCII):
        log.register_secret(value)
    return [pem, QUOTED, NON_ASCII]


def assert_no_leak(text: str, secrets: list[str]) -> None:
    """No run of WINDOW characters of any secret line, raw, JSON-escaped (with or without
    \\u escapes) or repr-escaped, occurs in `text`. PEM armour lines are not secret."""
    for secret in secrets:
        for form in (
            secret,
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            repr(secret)[1:-1],
        ):
            for line in form.splitlines():
                if line.startswith("-----"):
                    continue
                for start in range(max(len(line) - WINDOW + 1, 1)):
                    assert line[start : start + WINDOW] not in text, (secret[:20], form[:20])


def logged(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict]]:
    out = capsys.readouterr().out
    return out, [json.loads(line) for line in out.splitlines()]


def test_pem_key_is_masked_whole_and_line_by_line(
    secrets: list[str], pem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = pem.splitlines()[1:-1]
    log.info(f"loaded key {pem}", key=pem)
    log.warning("one line of the key", line=body[3], last=body[-1])
    log.info("with other line breaks", key=pem.replace("\n", "\r\n"))
    log.info("-----", armour="-----BEGIN RSA PRIVATE KEY-----")  # not secret: kept

    out, lines = logged(capsys)
    assert_no_leak(out, secrets)
    assert lines[0]["msg"] == "loaded key ***"
    assert lines[0]["key"] == "***"
    assert lines[1]["line"] == "***"
    assert lines[3] | {"time": None} == {
        "time": None,
        "level": "info",
        "msg": "-----",
        "armour": "-----BEGIN RSA PRIVATE KEY-----",
    }


def test_quotes_and_backslashes_are_masked(
    secrets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    log.info(f"token {QUOTED} used", token=QUOTED, echoed=f"body: {json.dumps(QUOTED)}")

    out, lines = logged(capsys)
    assert_no_leak(out, secrets)
    assert lines[0]["msg"] == "token *** used"
    assert lines[0]["token"] == "***"
    assert lines[0]["echoed"] == 'body: "***"'  # already JSON-encoded upstream: masked too


def test_non_ascii_secrets_are_masked(
    secrets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    log.error(f"password {NON_ASCII}!", password=NON_ASCII)

    out, lines = logged(capsys)
    assert_no_leak(out, secrets)
    assert lines[0]["msg"] == "password ***!"
    assert lines[0]["password"] == "***"


def test_nested_values_and_bound_fields_are_masked(
    secrets: list[str], pem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with log.bound(context={"auth": f"Bearer {QUOTED}"}):
        log.info(
            "nested",
            request={
                "headers": [("X-Key", pem.splitlines()[2])],
                "meta": {NON_ASCII: [1, NON_ASCII]},
            },
            items=[QUOTED, {"deep": (pem, 42, None, True)}],
        )

    out, lines = logged(capsys)
    assert_no_leak(out, secrets)
    line = lines[0]
    assert line["context"] == {"auth": "Bearer ***"}
    assert line["request"] == {"headers": [["X-Key", "***"]], "meta": {"***": [1, "***"]}}
    assert line["items"] == ["***", {"deep": ["***", 42, None, True]}]


def test_exception_text_is_masked(secrets: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise ValueError(f"rejected {QUOTED} / {NON_ASCII}")
    except ValueError as exc:
        log.error(f"failed: {exc}", error=exc, errors=[exc], quoted=KeyError(QUOTED))

    out, lines = logged(capsys)
    assert_no_leak(out, secrets)
    assert lines[0]["msg"] == "failed: rejected *** / ***"
    assert lines[0]["error"] == lines[0]["errors"][0] == "rejected *** / ***"
    assert lines[0]["quoted"] == "'***'"  # KeyError's text is the repr of its key


def test_redact_masks_text_for_other_sinks(secrets: list[str], pem: str) -> None:
    text = f"a {pem} b {pem.splitlines()[4]} c {QUOTED} d {NON_ASCII} e"
    assert log.redact(text) == "a *** b *** c *** d *** e"
    assert log.redact("nothing secret here: -----") == "nothing secret here: -----"


def test_failure_reasons_are_masked_in_the_state_table(
    fleet: Fleet, secrets: list[str], pem: str
) -> None:
    """Every write of a reason (rejection, released lease, status moves, recovery) masks it,
    before the 500-character cut (which would otherwise keep the start of a long key)."""
    store = StateStore(f"{fleet.prefix}-state", fleet.client("dynamodb"))
    reason = f"launch attempt failed: {pem} {QUOTED} {NON_ASCII}"
    masked = "launch attempt failed: *** *** ***"

    store.create_rejected(1001, {"job_id": 1001}, reason)

    assert store.claim(1002, {"job_id": 1002}, "owner-a", 60).may_launch
    assert store.release(1002, "owner-a", reason)
    released = fleet.record(1002)
    assert store.claim(1002, {"job_id": 1002}, "owner-b", 60).may_launch
    assert store.await_build(1002, "owner-b", reason, {}, first=True)
    assert store.transition(1002, "failed", reason=reason)

    for job_id, reopen in ((1003, True), (1004, False)):
        assert store.claim(job_id, {"job_id": job_id}, "owner-c", 60).may_launch
        assert store.record_task(job_id, "owner-c", f"arn:task/{job_id}", starting=True)
        assert store.transition(job_id, "stopped", reason=reason)
        if reopen:
            assert store.reopen_for_relaunch(
                job_id,
                task_arn=f"arn:task/{job_id}",
                done=0,
                runner_name=f"runner-{job_id}-2",
                jit_object=f"jit/runner-{job_id}-2/{job_id:040d}.env",
                owner="owner-d",
                lease_seconds=60,
                reason=reason,
            )
        else:
            assert store.fail_interrupted(job_id, f"arn:task/{job_id}", reason)

    records = [released, *(fleet.record(job_id) for job_id in (1001, 1002, 1003, 1004))]
    assert_no_leak(json.dumps(records, default=str, ensure_ascii=False), secrets)
    for record in records:
        assert record["reason"] == masked
        assert all(e["reason"] == masked for e in record.get("history", []) if "reason" in e)
    assert sum("reason" in e for r in records[1:] for e in r["history"]) == 7
