"""Transient failures never lose an intent: it is re-enqueued with a delay and applied later;
when the retry budget is spent it is parked in the poison queue with the reason recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

import function_app
from local.functions_host import LocalFunctionsHost, QueueSettings
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE
from tests.app_under_test import App

INTENT = '{"id": "retry-me", "pools": {"batch": 7}}'


def redeliver(app: App, timeout: float = 10) -> dict:
    """Wait for the re-enqueued intent to become visible and hand it to the function again."""
    (message,) = app.take(INTENTS_QUEUE, timeout=timeout)
    app.deliver(json.dumps(message), message_id="m-retry")
    return message


@pytest.mark.parametrize(
    ("fault", "code", "delay"),
    [
        ({"kind": "409", "method": "PUT"}, "OperationNotAllowed", 1),
        ({"kind": "500", "method": "PUT"}, "InternalServerError", 1),
        ({"kind": "500", "method": "GET"}, "InternalServerError", 1),
        ({"kind": "reset", "method": "PUT"}, "ConnectionFailed", 1),
        # MSAL replays a failed token answer for 5 s, so token failures wait at least that.
        ({"kind": "token_500"}, "TokenUnavailable", 5),
    ],
    ids=["409-busy", "500-on-write", "500-on-read", "connection-reset", "token-endpoint"],
)
def test_transient_failures_are_retried_until_applied(
    app: App, settings_override: Callable[..., None], fault: dict, code: str, delay: int
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    # Enough failures to beat azure-core's own quick reconnects; the queue owns the backoff.
    app.emulator.set_faults([{**fault, "times": 6}])
    app.deliver(INTENT)

    deferred = app.only_result()
    assert deferred["outcome"] == "deferred" and deferred["final"] is False
    problems = [deferred["error"]] + [p["error"] for p in deferred["pools"]]
    assert code in {p["code"] for p in problems if p}
    assert deferred["retry_in_seconds"] == delay
    assert app.pool("batch")["count"] == 2

    app.emulator.clear_faults()
    message = redeliver(app)
    assert message["id"] == "retry-me" and message["_retry"] == {"attempt": 2}
    applied = app.only_result()
    assert applied["outcome"] == "applied" and applied["attempt"] == 2
    assert app.pool("batch")["count"] == 7


def test_429_retry_after_is_honoured(app: App, settings_override: Callable[..., None]) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_faults([{"kind": "429", "method": "PUT", "retry_after": 3}])
    app.deliver(INTENT)

    deferred = app.only_result()
    assert deferred["retry_in_seconds"] == 3
    assert deferred["pools"][0]["error"]["code"] == "SubscriptionRequestsThrottled"
    assert app.take(INTENTS_QUEUE, timeout=1.5) == []  # still invisible: not before Retry-After
    redeliver(app, timeout=5)
    assert app.only_result()["outcome"] == "applied"


def test_a_busy_pool_defers_without_a_write(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Scaling")
    app.deliver(INTENT)

    deferred = app.only_result()
    assert deferred["outcome"] == "deferred"
    assert deferred["pools"][0]["error"]["code"] == "PoolBusy"
    assert app.emulator.writes() == []

    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Succeeded")
    redeliver(app)
    assert app.only_result()["outcome"] == "applied"


def test_spent_retries_park_the_intent_with_the_reason(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_MAX_ATTEMPTS="2")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 100}])
    app.deliver(INTENT)
    assert app.only_result()["outcome"] == "deferred"

    redeliver(app)
    parked = app.only_result()
    assert parked["outcome"] == "poisoned" and parked["final"] is True
    assert parked["error"]["code"] == "RetriesExhausted"
    assert "gave up after 2 attempts" in parked["error"]["message"]
    assert "InternalServerError" in parked["error"]["message"]
    (poisoned,) = app.take(POISON_QUEUE)
    assert poisoned["id"] == "retry-me" and poisoned["pools"] == {"batch": {"count": 7}}
    assert app.take(INTENTS_QUEUE) == []
    assert app.pool("batch")["count"] == 2


def test_a_stale_etag_rereads_and_replans(app: App) -> None:
    app.emulator.set_faults([{"kind": "412", "method": "PUT", "times": 1}])
    app.deliver(INTENT)

    assert app.only_result()["outcome"] == "applied"
    first, second = app.emulator.writes()
    assert (first["status"], second["status"]) == (412, 200)
    assert len(app.lists()) == 2  # one re-read after the race, no more
    assert app.pool("batch")["count"] == 7


def test_a_real_concurrent_writer_makes_the_plan_start_over(app: App) -> None:
    """Another writer changes the pool between our read and write: If-Match catches it and
    the re-plan sees the pool is already where we wanted it."""
    app.emulator.set_faults([{"kind": "412", "method": "PUT", "times": 1}])
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", count=2)
    app.deliver('{"pools": {"batch": 2}}')
    assert app.only_result()["outcome"] == "unchanged"
    assert app.emulator.writes() == []


def test_an_expired_intent_is_not_retried(app: App, settings_override: Callable[..., None]) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="2")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 100}])
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    app.deliver(json.dumps({"id": "short-lived", "pools": {"batch": 7}, "expires_at": expires}))
    assert app.only_result()["outcome"] == "deferred"

    redeliver(app)
    rejected = app.only_result()
    assert rejected["outcome"] == "rejected" and rejected["intent_id"] == "short-lived"
    assert rejected["error"]["field"] == "expires_at"


def test_the_local_host_retries_a_failing_function_then_poisons_it(app: App) -> None:
    """When storage itself fails the function raises; the host (here its local stand-in, with
    host.json's semantics) retries delivery and after maxDequeueCount moves it to -poison."""
    with app.queue(RESULTS_QUEUE) as results:
        results.delete_queue()  # publishing the outcome now fails
    try:
        with app.stack.queue_service() as queues:
            queues.get_queue_client(INTENTS_QUEUE).send_message(INTENT)
            settings = QueueSettings(visibility_timeout_seconds=1, max_dequeue_count=2)
            host = LocalFunctionsHost(function_app.app, queues, settings)
            deadline = time.monotonic() + 15
            while not app.take(POISON_QUEUE) and time.monotonic() < deadline:
                host.drain(INTENTS_QUEUE)
                time.sleep(0.3)
            else:
                assert time.monotonic() < deadline, "the message never reached the poison queue"
    finally:
        with app.queue(RESULTS_QUEUE) as results:
            results.create_queue()
    assert app.take(INTENTS_QUEUE) == []


@pytest.mark.parametrize(
    ("kind", "code"), [("403", "AuthorizationFailed"), ("400", "InvalidParameter")]
)
def test_a_permanent_refusal_from_arm_is_rejected_at_once(app: App, kind: str, code: str) -> None:
    app.emulator.set_faults([{"kind": kind, "method": "PUT", "times": 1}])
    app.deliver(INTENT)

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["pools"][0]["outcome"] == "failed"
    assert outcome["pools"][0]["error"]["code"] == code
    assert app.take(INTENTS_QUEUE) == []  # not retried
    assert len(app.emulator.writes()) == 1
