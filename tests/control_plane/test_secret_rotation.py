"""Webhook secret rotation: a rotated secret is read again on a mismatch (at most once per
window), and the previous secret is accepted for its grace period (docs/security.md)."""

from __future__ import annotations

import time

import pytest
from control_plane import parameters
from control_plane.parameters import REFRESH_INTERVAL, TtlCache

from tests.control_plane.harness import WEBHOOK_SECRET, Fleet, job_payload

NEW_SECRET = "whsec-rotated-9f3e2a7c41d0b865"
PING = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'


def ping(fleet: Fleet, secret: str) -> dict:
    return fleet.deliver(PING, event="ping", secret=secret)


def put_secret(fleet: Fleet, name: str, value: str) -> None:
    fleet.client("ssm").put_parameter(
        Name=f"/{fleet.prefix}/secrets/{name}", Value=value, Type="SecureString", Overwrite=True
    )


def use_previous(fleet: Fleet, monkeypatch: pytest.MonkeyPatch, grace_seconds: int) -> None:
    """The Lambda's environment with webhook_secret_previous set, as the module sets it."""
    monkeypatch.setenv(
        "WEBHOOK_SECRET_PREVIOUS_PARAM", f"/{fleet.prefix}/secrets/webhook-secret-previous"
    )
    monkeypatch.setenv("WEBHOOK_SECRET_PREVIOUS_GRACE_SECONDS", str(grace_seconds))


def ssm_reads(fleet: Fleet) -> list[str]:
    """The parameters the Lambda has read, as seen at the edge (SSM goes through the proxy)."""
    return [r["body"]["Name"] for r in fleet.ecs_proxy.requests("GetParameter")]


@pytest.fixture
def ssm_through_proxy(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fleet.ecs_proxy.url)
    return fleet


def test_a_secret_rotated_while_the_old_one_is_cached_is_read_again(fleet: Fleet) -> None:
    assert ping(fleet, WEBHOOK_SECRET) == {"result": "pong"}  # cached now
    put_secret(fleet, "webhook-secret", NEW_SECRET)

    assert ping(fleet, NEW_SECRET) == {"result": "pong"}
    assert ping(fleet, NEW_SECRET) == {"result": "pong"}
    # without webhook_secret_previous, the old secret is refused at once
    assert ping(fleet, WEBHOOK_SECRET)["reason"] == "signature does not match"


def test_forged_signatures_read_the_secret_again_at_most_once_per_window(
    ssm_through_proxy: Fleet,
) -> None:
    fleet = ssm_through_proxy
    webhook_secret = f"/{fleet.prefix}/secrets/webhook-secret"
    assert ping(fleet, WEBHOOK_SECRET) == {"result": "pong"}
    assert ssm_reads(fleet) == [webhook_secret]

    for attempt in range(20):
        assert ping(fleet, f"forged-{attempt}-0123456789") == {
            "result": "refused",
            "reason": "signature does not match",
        }
    assert ssm_reads(fleet) == [webhook_secret] * 2  # one forced read for the twenty
    assert ping(fleet, WEBHOOK_SECRET) == {"result": "pong"}
    assert len(ssm_reads(fleet)) == 2


def test_both_secrets_are_accepted_in_the_grace_period_and_the_previous_not_after(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    grace = 3
    use_previous(fleet, monkeypatch, grace)
    put_secret(fleet, "webhook-secret-previous", WEBHOOK_SECRET)
    put_secret(fleet, "webhook-secret", NEW_SECRET)
    written = (
        fleet.client("ssm")
        .get_parameter(Name=f"/{fleet.prefix}/secrets/webhook-secret-previous")["Parameter"][
            "LastModifiedDate"
        ]
        .timestamp()
    )

    assert ping(fleet, NEW_SECRET) == {"result": "pong"}
    assert ping(fleet, WEBHOOK_SECRET) == {"result": "pong"}
    assert time.time() < written + grace, "the deliveries took longer than the grace period"
    assert ping(fleet, "neither-of-the-two-secrets")["reason"] == "signature does not match"

    time.sleep(max(0.0, written + grace - time.time()) + 0.2)
    assert ping(fleet, WEBHOOK_SECRET)["reason"] == "signature does not match"
    assert ping(fleet, NEW_SECRET) == {"result": "pong"}


def test_a_job_signed_with_the_previous_secret_is_launched(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    use_previous(fleet, monkeypatch, 3600)
    put_secret(fleet, "webhook-secret-previous", WEBHOOK_SECRET)
    put_secret(fleet, "webhook-secret", NEW_SECRET)

    assert fleet.deliver(job_payload(), secret=WEBHOOK_SECRET)["result"] == "launched"
    assert len(fleet.tasks()) == 1
    assert '"msg":"signed with the previous webhook secret"' in capsys.readouterr().out


def test_a_previous_secret_parameter_already_deleted_is_no_previous_secret(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an apply that removes webhook_secret_previous may delete the parameter first
    use_previous(fleet, monkeypatch, 3600)
    assert ping(fleet, WEBHOOK_SECRET) == {"result": "pong"}


def test_the_refresh_window_of_the_cache() -> None:
    now = [1000.0]
    cache = TtlCache(900, clock=lambda: now[0])
    loads = iter(range(1, 100))
    assert cache.get("s", lambda: next(loads)) == 1
    assert cache.refresh("s", lambda: next(loads)) == 2
    now[0] += REFRESH_INTERVAL - 1
    assert cache.refresh("s", lambda: next(loads)) is None
    assert cache.get("s", lambda: next(loads)) == 2  # the refreshed value is cached
    now[0] += 1
    assert cache.refresh("s", lambda: next(loads)) == 3
    assert parameters.REFRESH_INTERVAL == 30.0  # as documented in docs/security.md
