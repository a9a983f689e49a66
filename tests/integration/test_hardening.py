"""Issue 13's findings, through the real function against Azurite and the AKS emulator.

Items 1 and 6: what the function raised on (so the host retried, poisoned and published
nothing) or refused with a misleading reason is now rejected at parse time, with the outcome
published at once, naming the field or what the text looked like; the encodings common
producers use by default are accepted. Item 2: an outcome too large for Table storage or a queue
message is cut (with a marker), never raised on or dropped. Item 4: while `scale-results`
cannot be written, redeliveries pile up no copies, and the outcome arrives once it can. Item 5:
after a 401 from Resource Manager the gateway asks the identity endpoint for a new token
instead of replaying the refused one.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
from scaler.settings import INTENTS_QUEUE, RECONCILE_QUEUE, RESULTS_QUEUE, STATE_TABLE
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


# -- item 2: outcomes too large to record or publish ----------------------------------------

SEED = Path(__file__).resolve().parents[2] / "local" / "aks_emulator" / "seed.json"
# 1,000 emoji: 4 UTF-8 bytes, 2 UTF-16 units and 12 characters of escaped JSON each.
EMOJI_REASON = "\N{GRINNING FACE}" * 1000
QUEUE_MESSAGE_BYTES = 64 * 1024
TABLE_STRING_CHARS = 32 * 1024  # UTF-16 code units per string property
TABLE_ENTITY_BYTES = 64 * 1024  # what issue 13 asks bookkeeping to stay under


def raw_messages(app: App, name: str, timeout: float, count: int) -> list[str]:
    """A queue's messages as written (text, so their size can be measured), deleted."""
    deadline = time.monotonic() + timeout
    texts: list[str] = []
    with app.queue(name) as client:
        while True:
            for message in client.receive_messages(max_messages=32):
                client.delete_message(message)
                texts.append(str(message.content))
            if len(texts) >= count or time.monotonic() >= deadline:
                return texts
            time.sleep(0.2)


def state_rows(app: App) -> list[dict[str, Any]]:
    with app.stack.table_service() as tables:
        return list(tables.get_table_client(STATE_TABLE).list_entities())


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_rows_fit_table_limits(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        size = 0
        for name, value in row.items():
            if isinstance(value, str):
                assert utf16_units(value) < TABLE_STRING_CHARS, (row["RowKey"], name)
                size += 2 * utf16_units(value)
            else:
                size += 8
        assert size < TABLE_ENTITY_BYTES, row["RowKey"]


def test_an_intent_with_99_unknown_pools_and_a_huge_reason_is_rejected_once(app: App) -> None:
    pools = {"batch": 3, **{f"nope{n:02d}": 1 for n in range(99)}}
    document = {"id": "too-large", "pools": pools, "reason": EMOJI_REASON}
    assert len(json.dumps(document)) > 13_000  # issue 13: 13.9 KB
    app.deliver(json.dumps(document), message_id="m-large")  # must not raise
    app.settle()  # nor may the reconcile

    (text,) = raw_messages(app, RESULTS_QUEUE, timeout=RESULT_TIMEOUT, count=1)
    assert raw_messages(app, RESULTS_QUEUE, timeout=1, count=1) == [], "exactly one outcome"
    assert len(text.encode()) < QUEUE_MESSAGE_BYTES
    outcome = json.loads(text)
    assert (outcome["intent_id"], outcome["outcome"], outcome["final"]) == (
        "too-large",
        "rejected",
        True,
    )
    # One error for the intent (not 99), naming the problem and an unknown pool.
    assert outcome["error"]["code"] == "PoolNotFound"
    assert "nope" in outcome["error"]["message"]
    assert outcome["error"]["field"].startswith("pools.nope")
    # All or nothing: the known pool of a refused intent is not written either.
    assert app.pool("batch")["count"] == 2
    assert [w for w in app.emulator.writes() if w["status"] == 200] == []

    rows = state_rows(app)
    (row,) = [r for r in rows if r["RowKey"] == "source|too-large"]
    assert "Outcome" in row, "the rejection is recorded (a redelivery must not reprocess it)"
    assert json.loads(row["Outcome"])["outcome"] == "rejected"
    assert_rows_fit_table_limits(rows)


def many_pools_seed(count: int) -> dict[str, Any]:
    """The emulator's start-up seed with `count` more user pools in aks-demo."""
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    (demo,) = [c for c in seed["clusters"] if c["name"] == "aks-demo"]
    (batch,) = [p for p in demo["agentPools"] if p["name"] == "batch"]
    for n in range(count):
        extra = copy.deepcopy(batch)
        extra["name"] = f"pool{n:02d}"
        extra["properties"]["eTag"] = f"00000000-0000-0000-0000-{n:012d}"
        extra["properties"]["count"] = 1
        demo["agentPools"].append(extra)
    return seed


def test_an_outcome_with_many_pools_is_cut_with_a_marker_not_dropped(app: App) -> None:
    app.emulator.reset(many_pools_seed(100))
    pools = {f"pool{n:02d}": 2 for n in range(100)}
    document = {"id": "many", "pools": pools, "reason": EMOJI_REASON}
    app.deliver(json.dumps(document), message_id="m-many")
    app.settle()

    (text,) = raw_messages(app, RESULTS_QUEUE, timeout=RESULT_TIMEOUT, count=1)
    assert len(text.encode()) < QUEUE_MESSAGE_BYTES
    outcome = json.loads(text)
    assert (outcome["intent_id"], outcome["outcome"], outcome["final"]) == ("many", "applied", True)
    assert outcome["truncated"], "a cut outcome says so"
    shown = outcome["pools"]
    assert shown, "the per-pool results are cut, not all dropped"
    assert {p["pool"] for p in shown} <= set(pools)
    assert all(p["outcome"] == "started" for p in shown)
    if len(shown) < len(pools):
        assert str(len(shown)) in outcome["truncated"]
    assert app.pool("pool99")["count"] == 2

    rows = state_rows(app)
    (row,) = [r for r in rows if r["RowKey"] == "source|many"]
    assert json.loads(row["Outcome"])["truncated"]
    assert_rows_fit_table_limits(rows)


# -- item 4: scale-results cannot be written ------------------------------------------------


def message_count(app: App, name: str) -> int:
    """Messages in a queue, the invisible (delayed, or being processed) ones included."""
    with app.queue(name) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


@contextlib.contextmanager
def results_queue_gone(app: App) -> Iterator[None]:
    with app.queue(RESULTS_QUEUE) as client:
        client.delete_queue()
        try:
            yield
        finally:
            client.create_queue()


def deliveries(deliver: Callable[[int], None], times: int = 3) -> int:
    """Deliver one message `times` times as the host does after each raise; how many raised."""
    raised = 0
    for dequeue_count in range(1, times + 1):
        try:
            deliver(dequeue_count)
        except Exception:
            raised += 1
        else:
            break  # it succeeded: the host deletes the message
    return raised


def test_a_deferred_intent_piles_up_no_copies_while_results_cannot_be_written(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 1}])
    body = json.dumps({"id": "no-results", "pools": {"batch": 7}})
    with results_queue_gone(app):
        # The intent function only records the source and asks for one reconcile.
        assert deliveries(lambda n: app.deliver(body, dequeue_count=n, message_id="m-nr")) == 0
        assert message_count(app, RECONCILE_QUEUE) == 1
        with app.queue(RECONCILE_QUEUE) as client:
            (request,) = client.receive_messages(max_messages=1, visibility_timeout=120)

        def reconcile(n: int) -> None:
            app.call("scale_reconcile", request.content, n, request.id)

        # The first delivery meets the 500 (deferred), then cannot publish; the host retries.
        raised = deliveries(reconcile)
        assert raised >= 1, "an outcome that cannot be published must not be dropped silently"
        # No copies: nothing goes back to scale-intents, and besides the message being
        # delivered, at most one wake-up is queued for the retry.
        assert message_count(app, INTENTS_QUEUE) == 0
        assert message_count(app, RECONCILE_QUEUE) <= 2
        assert len(app.emulator.writes()) <= 2
    # The queue is back: the host's next delivery and the wake-ups publish what is owed.
    if raised == 3:
        reconcile(4)
    with app.queue(RECONCILE_QUEUE) as client:
        client.delete_message(request)
    app.settle(timeout=15, quiet=2.5)
    results = app.take(RESULTS_QUEUE, timeout=2)
    finals = [r for r in results if r["intent_id"] == "no-results" and r["final"]]
    assert [r["outcome"] for r in finals] == ["applied"], results
    assert len({r["outcome_id"] for r in results}) == len(results), "no outcome twice"
    assert app.pool("batch")["count"] == 7
    assert message_count(app, INTENTS_QUEUE) == 0


def test_a_rejection_that_cannot_be_published_is_published_once_when_it_can(app: App) -> None:
    body = json.dumps({"id": "refused", "pools": {"batch": -1}})
    with results_queue_gone(app):
        raised = deliveries(lambda n: app.deliver(body, dequeue_count=n, message_id="m-r"))
        assert message_count(app, INTENTS_QUEUE) == 0
        assert message_count(app, RECONCILE_QUEUE) <= 1
    if raised == 3:  # the host's next delivery
        app.deliver(body, dequeue_count=4, message_id="m-r")
    app.settle()
    (outcome,) = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT)
    assert (outcome["intent_id"], outcome["outcome"]) == ("refused", "rejected")
    assert app.take(RESULTS_QUEUE, timeout=1) == []


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


# -- items 3, 7, 8 through the function ---------------------------------------------------------


@pytest.fixture
def console_output() -> Iterator[io.StringIO]:
    """The local run's console handler on the `scaler` logger, writing to a buffer."""
    from rich.console import Console

    from local.console import OutcomeConsole

    buffer = io.StringIO()
    handler = OutcomeConsole(Console(file=buffer, width=10_000, color_system=None))
    logger = logging.getLogger("scaler")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_untrusted_text_reaches_the_console_inert_and_never_raises_into_the_function(
    app: App, console_output: io.StringIO
) -> None:
    hostile = {"[/nope]": 1, "a\nrejected intent=forged": 2, "\x1b[2J[blink]x[/blink]": 3}
    for n, key in enumerate(hostile):
        app.deliver(json.dumps({"id": f"hostile-{n}", "pools": {key: 1}}), message_id=f"m-{n}")
    outcomes = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT, count=3)
    assert [o["outcome"] for o in outcomes] == ["rejected"] * 3
    lines = console_output.getvalue().splitlines()
    assert len(lines) == 3, lines  # one line per outcome: the newline forged none
    assert not any(line.startswith("rejected intent=forged") for line in lines)
    assert "\x1b" not in console_output.getvalue()
    assert "[/nope]" in lines[0] and "\\x1b[2J[blink]" in lines[2]


def test_a_producer_set_retry_count_cannot_poison_its_intent(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 1}])
    body = {"id": "r8", "pools": {"batch": 4}, "_retry": {"attempt": 8}}
    app.deliver(json.dumps(body), message_id="m-r8")
    app.settle(timeout=10, quiet=2.5)
    outcomes = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT, count=2)
    assert [o["outcome"] for o in outcomes] == ["deferred", "applied"]
    assert app.pool("batch")["count"] == 4


@pytest.mark.parametrize(
    ("retry", "field"),
    [({"attempt": 9}, "_retry.attempt"), ({"attempt": 1, "forged": True}, "_retry")],
)
def test_a_malformed_retry_field_is_rejected_naming_it(
    app: App, retry: dict[str, Any], field: str
) -> None:
    outcome = rejection(app, json.dumps({"pools": {"batch": 4}, "_retry": retry}))
    assert outcome["error"]["field"] == field


def test_minus_zero_is_the_count_zero(app: App) -> None:
    app.deliver('{"id": "minus-zero", "pools": {"batch": -0}}', message_id="m-0")
    app.settle()
    (outcome,) = app.take(RESULTS_QUEUE, timeout=RESULT_TIMEOUT)
    assert outcome["outcome"] == "applied"
    assert outcome["pools"][0]["requested"] == {"count": 0}
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 0
