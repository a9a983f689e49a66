"""Issue 13's findings, through the real function against Azurite and the AKS emulator.

Items 1 and 6: what the function raised on (so the host retried, poisoned and published
nothing) or refused with a misleading reason is now rejected at parse time, with the outcome
published at once, naming the field or what the text looked like; the encodings common
producers use by default are accepted. Item 5: after a 401 from Resource Manager the gateway
asks the identity endpoint for a new token instead of replaying the refused one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.mgmt.containerservice import ContainerServiceClient

from local.aks_emulator import start_server
from local.aks_emulator.auth import TokenIssuer
from local.aks_emulator.server import RunningEmulator
from local.stack import LOCAL_CLIENT_ID, LOCAL_SUBSCRIPTION
from scaler.adapters.aks import AksGateway
from scaler.domain.clusters import ClusterRef
from scaler.settings import RESULTS_QUEUE
from tests.app_under_test import App

pytestmark = pytest.mark.integration

ARM_SCOPE = "https://management.azure.com/.default"
# Rejections are published by the intent function itself, at once; a little slack for Azurite.
RESULT_TIMEOUT = 10


def rejection(app: App, body: str | bytes) -> dict[str, Any]:
    app.deliver(body)  # must not raise: a raise means retries, poison and no outcome
    (outcome,) = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT)
    assert outcome["outcome"] == "rejected", outcome
    assert outcome["error"]["code"] == "InvalidIntent"
    assert app.arm_requests() == []
    return outcome


# -- item 1: timestamps and durations that overflowed ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"issued_at": "9999-12-31T23:00:00Z", "hold": "PT2H"},
            "issued_at: '9999-12-31T23:00:00Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        ({"hold": "P9999999999D"}, "hold: a hold lasts at most 31 days"),
        (
            {"issued_at": "0001-01-01T00:30:00+01:00"},
            "issued_at: '0001-01-01T00:30:00+01:00' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"expires_at": "9999-12-31T23:59:59-01:00"},
            "expires_at: '9999-12-31T23:59:59-01:00' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"hold_until": "1600-12-31T23:59:59Z"},
            "hold_until: '1600-12-31T23:59:59Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
    ],
    ids=[
        "issued-9999-plus-hold",
        "hold-P9999999999D",
        "issued-year-1",
        "expires-9999",
        "hold-1600",
    ],
)
def test_out_of_range_times_are_rejected_not_raised(
    app: App, extra: dict[str, str], message: str
) -> None:
    outcome = rejection(app, json.dumps({"id": "overflow", "pools": {"userpool1": 3}, **extra}))
    assert outcome["error"]["message"] == message


# -- item 6: encodings ----------------------------------------------------------------------

INTENT = {"id": "encoded", "pools": {"batch": 5}, "dry_run": True, "reason": "encoding " * 20}
RAW = json.dumps(INTENT).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf" + RAW,
        base64.encodebytes(RAW),  # 76 columns, LF: Python, and coreutils base64's layout
        base64.encodebytes(RAW).replace(b"\n", b"\r\n"),
        base64.b64encode(RAW).rstrip(b"="),
    ],
    ids=["utf8-bom", "base64-wrapped-lf", "base64-wrapped-crlf", "base64-unpadded"],
)
def test_common_producer_encodings_are_accepted(app: App, body: bytes) -> None:
    assert body != RAW and (b"\n" in body or not body.endswith(b"="))
    app.deliver(body)
    published = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT)
    assert [o for o in published if o["outcome"] == "rejected"] == []
    # Where the intent function publishes the outcome itself, it is this dry run's.
    for outcome in published:
        assert outcome["intent_id"] == "encoded" and outcome["outcome"] == "dry_run"
    assert app.emulator.writes() == []


def _base64url_intent() -> bytes:
    document = {"id": "url-safe", "pools": {"batch": 5}, "reason": "~~~???>>>"}
    encoded = base64.urlsafe_b64encode(json.dumps(document).encode())
    assert b"-" in encoded or b"_" in encoded
    return encoded


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _base64url_intent(),
            "message looks like base64url (it has - or _); use the standard base64 alphabet (+ and /)",
        ),
        (
            base64.b64encode(base64.b64encode(RAW)),
            "message is base64 of base64 of JSON; encode the JSON once",
        ),
        (
            json.dumps(INTENT).encode("utf-16"),
            "message is not UTF-8 text (bad byte at 0; it starts with a UTF-16 byte-order mark)",
        ),
    ],
    ids=["base64url", "double-base64", "utf-16"],
)
def test_refused_encodings_say_what_was_detected(app: App, body: bytes, message: str) -> None:
    assert rejection(app, body)["error"]["message"] == message


# -- item 5: a 401 gets a new token ---------------------------------------------------------


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """An emulator of our own, in this process, so a test can make it forget its tokens."""
    with start_server(operation_seconds=0) as running:
        # azure-identity reads the identity settings when the credential is built; requests
        # reads REQUESTS_CA_BUNDLE on every call.
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


def revoke_every_token(running: RunningEmulator) -> None:
    """Resource Manager stops accepting the tokens issued so far (as after a revocation): each
    one, still unexpired in the client's cache, is now answered with 401."""
    emulator = running.emulator
    with emulator.lock:
        emulator.tokens = TokenIssuer(emulator.tokens.identity_header)


def token_requests(running: RunningEmulator) -> int:
    with running.emulator.lock:
        return sum(1 for r in running.emulator.requests if r["path"].startswith("/msi/token"))


def arm_statuses(running: RunningEmulator) -> list[int | None]:
    with running.emulator.lock:
        return [r["status"] for r in running.emulator.requests if r["path"].startswith("/sub")]


def test_the_refused_token_comes_back_from_the_credential_cache(
    emulator: RunningEmulator,
) -> None:
    """Why the gateway must act: on its own, azure-core drops its token on a 401, but the
    credential hands the same cached token back, so every retry is refused again."""
    client = ContainerServiceClient(
        ManagedIdentityCredential(client_id=LOCAL_CLIENT_ID),
        LOCAL_SUBSCRIPTION,
        base_url=emulator.arm_endpoint,
        credential_scopes=[ARM_SCOPE],
        retry_total=0,
    )
    with client:
        list(client.agent_pools.list("rg-demo", "aks-demo"))
        revoke_every_token(emulator)
        for _ in range(2):
            with pytest.raises(Exception, match="InvalidAuthenticationToken"):
                list(client.agent_pools.list("rg-demo", "aks-demo"))
    assert token_requests(emulator) == 1
    assert arm_statuses(emulator) == [200, 401, 401]


def test_after_a_401_the_gateway_retries_with_a_new_token(emulator: RunningEmulator) -> None:
    gateway = AksGateway(
        ManagedIdentityCredential(client_id=LOCAL_CLIENT_ID), emulator.arm_endpoint, ARM_SCOPE
    )
    cluster = ClusterRef(LOCAL_SUBSCRIPTION, "rg-demo", "aks-demo")
    try:
        assert gateway.list_pools(cluster)
        assert token_requests(emulator) == 1
        revoke_every_token(emulator)

        with pytest.raises(Exception) as refused:
            gateway.list_pools(cluster)
        error: Any = refused.value
        assert error.code == "InvalidAuthenticationToken" and error.transient
        assert token_requests(emulator) == 1  # the cached token was tried, and refused

        # The retry (the queue's, in the app) asks the identity endpoint again and succeeds:
        # only a token issued after the revocation is accepted.
        assert gateway.list_pools(cluster)
        assert token_requests(emulator) == 2
        # From then on the new token is cached as usual.
        assert gateway.list_pools(cluster)
        assert token_requests(emulator) == 2
        assert arm_statuses(emulator) == [200, 401, 200, 200]
    finally:
        gateway.close()
