"""Transient failures never lose an intent. The reconcile publishes `deferred` once (the first
deferral), queues itself again on scale-reconcile with a delay (backoff from
SCALER_RETRY_BASE_SECONDS, never sooner than Retry-After) and applies the intent later; when
SCALER_MAX_ATTEMPTS is spent the intent is parked in scale-intents-poison with a `poisoned`
outcome. Permanent refusals are rejected at once and leave nothing behind."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import function_app
from local.functions_host import LocalFunctionsHost, QueueSettings
from scaler import bootstrap
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RECONCILE_QUEUE, RESULTS_QUEUE, STATE_TABLE
from tests.app_under_test import App

INTENT = '{"id": "retry-me", "pools": {"batch": 7}}'


def reconcile_now(app: App) -> int:
    """Deliver the reconcile messages visible now (not delayed ones; every delay in these tests
    is at least a second)."""
    return app.settle(timeout=5, quiet=0.3)


def queued_reconciles(app: App) -> tuple[int, int]:
    """(visible, all) messages on scale-reconcile; a delayed one is counted but not visible."""
    with app.queue(RECONCILE_QUEUE) as queue:
        total = queue.get_queue_properties().approximate_message_count
        return len(queue.peek_messages(max_messages=32)), total


def seconds_until_visible(app: App, since: float, timeout: float = 15) -> float:
    """Wait until a reconcile message is visible; how long after `since` (monotonic) that was."""
    deadline = time.monotonic() + timeout
    with app.queue(RECONCILE_QUEUE) as queue:
        while time.monotonic() < deadline:
            if queue.peek_messages():
                return time.monotonic() - since
            time.sleep(0.1)
    raise AssertionError(f"no reconcile message became visible within {timeout} s")


def outcomes_of(results: list[dict[str, Any]], intent_id: str) -> list[str]:
    return [r["outcome"] for r in results if r["intent_id"] == intent_id]


@pytest.mark.parametrize(
    ("fault", "code", "delay"),
    [
        ({"kind": "409", "method": "PUT"}, "OperationNotAllowed", 2),
        ({"kind": "500", "method": "PUT"}, "InternalServerError", 2),
        ({"kind": "500", "method": "GET"}, "InternalServerError", 2),
        ({"kind": "reset", "method": "PUT"}, "ConnectionFailed", 2),
        # MSAL replays a failed token answer for 5 s, so token failures wait at least that.
        ({"kind": "token_500"}, "TokenUnavailable", 5),
    ],
    ids=["409-busy", "500-on-write", "500-on-read", "connection-reset", "token-endpoint"],
)
def test_transient_failures_are_retried_until_applied(
    app: App, settings_override: Callable[..., None], fault: dict, code: str, delay: int
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="2")
    # Enough failures to beat azure-core's own quick reconnects; the reconcile owns the backoff.
    app.emulator.set_faults([{**fault, "times": 6}])
    app.deliver(INTENT)
    started = time.monotonic()
    assert reconcile_now(app) == 1

    deferred = app.only_result()
    assert deferred["intent_id"] == "retry-me"
    assert deferred["outcome"] == "deferred" and deferred["final"] is False
    assert deferred["attempt"] == 1
    problems = [deferred["error"]] + [p["error"] for p in deferred["pools"]]
    assert code in {p["code"] for p in problems if p}
    assert deferred["retry_in_seconds"] == delay
    assert app.pool("batch")["count"] == 2
    # The intent is not re-enqueued: the reconcile queued itself again, invisible for `delay`.
    assert app.take(INTENTS_QUEUE) == []
    assert queued_reconciles(app) == (0, 1)

    app.emulator.clear_faults()
    assert seconds_until_visible(app, started) >= delay - 1  # queue visibility is per second
    assert reconcile_now(app) == 1
    applied = app.only_result()
    assert applied["outcome"] == "applied" and applied["final"] is True
    assert applied["attempt"] == 2
    assert app.pool("batch")["count"] == 7
    assert queued_reconciles(app) == (0, 0)  # done: no further wake-up


def test_a_deferral_is_published_once_however_many_retries(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_MAX_ATTEMPTS="5")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 3}])
    app.deliver(INTENT)
    assert app.settle(timeout=20, quiet=5) == 4  # backoff 1 s, 2 s, 4 s, then applied

    results = app.results()
    assert outcomes_of(results, "retry-me") == ["deferred", "applied"]
    assert [r["attempt"] for r in results] == [1, 4]
    assert [w["status"] for w in app.emulator.writes()] == [500, 500, 500, 200]
    assert len(app.lists()) == 4  # one read per reconcile
    assert app.pool("batch")["count"] == 7


def test_429_retry_after_is_honoured(app: App, settings_override: Callable[..., None]) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_faults([{"kind": "429", "method": "PUT", "retry_after": 3}])
    app.deliver(INTENT)
    started = time.monotonic()
    reconcile_now(app)

    deferred = app.only_result()
    assert deferred["outcome"] == "deferred" and deferred["retry_in_seconds"] == 3
    assert deferred["pools"][0]["error"]["code"] == "SubscriptionRequestsThrottled"
    assert seconds_until_visible(app, started, timeout=6) >= 2  # not before Retry-After
    reconcile_now(app)
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 7


def test_a_busy_pool_is_not_written_and_looked_at_again_when_its_operation_ends(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_OPERATION_SECONDS="3")
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Scaling")
    app.deliver(INTENT)
    started = time.monotonic()
    reconcile_now(app)

    deferred = app.only_result()
    assert deferred["outcome"] == "deferred" and deferred["final"] is False
    assert deferred["pools"][0]["error"]["code"] == "PoolBusy"
    assert app.emulator.writes() == []
    assert len(app.lists()) == 1
    # Not re-read in a loop: the next reconcile waits for the operation's expected end.
    assert seconds_until_visible(app, started) >= 3 - 1
    assert len(app.lists()) == 1

    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Succeeded")
    reconcile_now(app)
    applied = app.only_result()
    assert applied["outcome"] == "applied" and applied["attempt"] == 2
    assert len(app.lists()) == 2 and len(app.emulator.writes()) == 1
    assert app.pool("batch")["count"] == 7


def test_a_busy_pools_deferred_outcome_says_when_it_is_looked_at_again(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_OPERATION_SECONDS="4")
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Scaling")
    app.deliver(INTENT)
    started = time.monotonic()
    reconcile_now(app)
    deferred = app.only_result()
    assert deferred["retry_in_seconds"] == 4  # the operation's expected end, not the backoff
    waited = seconds_until_visible(app, started)
    assert deferred["retry_in_seconds"] - 1 <= waited <= deferred["retry_in_seconds"] + 1


def test_spent_retries_park_the_intent_with_the_reason(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_MAX_ATTEMPTS="3")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 100}])
    app.deliver(INTENT)
    app.settle(timeout=20, quiet=5)

    deferred, parked = app.results()
    assert deferred["outcome"] == "deferred" and deferred["attempt"] == 1
    assert parked["intent_id"] == "retry-me"
    assert parked["outcome"] == "poisoned" and parked["final"] is True
    assert parked["attempt"] == 3
    assert parked["error"]["code"] == "RetriesExhausted"
    assert "gave up after 3 attempts" in parked["error"]["message"]
    assert "InternalServerError" in parked["error"]["message"]
    (poisoned,) = app.take(POISON_QUEUE)
    assert poisoned["id"] == "retry-me" and poisoned["pools"] == {"batch": {"count": 7}}
    assert [w["status"] for w in app.emulator.writes()] == [500] * 3  # one write per attempt
    assert app.take(INTENTS_QUEUE) == []
    assert queued_reconciles(app)[1] == 0  # nothing keeps retrying
    assert app.pool("batch")["count"] == 2

    # A parked intent leaves no source behind: the next intent decides, and 7 never returns.
    app.emulator.clear_faults()
    app.deliver('{"id": "after", "pools": {"spot": 2}}', message_id="m-2")
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    assert app.emulator.writes()[-1]["path"].endswith("/spot")
    assert app.pool("batch")["count"] == 2


def test_a_stale_etag_rereads_and_replans(app: App) -> None:
    app.emulator.set_faults([{"kind": "412", "method": "PUT", "times": 1}])
    app.deliver(INTENT)
    app.settle()

    assert app.only_result()["outcome"] == "applied"
    first, second = app.emulator.writes()
    assert (first["status"], second["status"]) == (412, 200)
    assert len(app.lists()) == 2  # one re-read after the race, no more
    assert app.pool("batch")["count"] == 7


@pytest.mark.parametrize(
    ("theirs", "outcome", "statuses"),
    [(7, "unchanged", [412]), (3, "applied", [412, 200])],
    ids=["they-wrote-ours", "they-wrote-another"],
)
def test_a_real_concurrent_writer_makes_the_plan_start_over(
    app: App, monkeypatch: pytest.MonkeyPatch, theirs: int, outcome: str, statuses: list[int]
) -> None:
    """Another writer changes the pool between our read and our write: If-Match catches it,
    and the re-plan starts from what the pool now is."""
    gateway = bootstrap.reconciler()._clusters
    read = gateway.list_pools

    def read_then_someone_writes(cluster: Any) -> Any:
        pools = read(cluster)
        if len(app.lists()) == 1:
            app.emulator.force_pool("rg-demo", "aks-demo", "batch", count=theirs)
        return pools

    monkeypatch.setattr(gateway, "list_pools", read_then_someone_writes)
    app.deliver(INTENT)
    app.settle()

    result = app.only_result()
    assert result["outcome"] == outcome and result["final"] is True
    assert [w["status"] for w in app.emulator.writes()] == statuses
    assert len(app.lists()) == 2
    assert app.pool("batch")["count"] == 7


def test_an_expired_intent_is_not_retried(app: App, settings_override: Callable[..., None]) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="3")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 100}])
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    app.deliver(json.dumps({"id": "short-lived", "pools": {"batch": 7}, "expires_at": expires}))
    reconcile_now(app)
    assert app.only_result()["outcome"] == "deferred"

    app.settle(timeout=10, quiet=4)
    rejected = app.only_result()
    assert rejected["outcome"] == "rejected" and rejected["intent_id"] == "short-lived"
    assert rejected["final"] is True
    assert rejected["error"]["code"] == "Expired" and rejected["error"]["field"] == "expires_at"
    assert len(app.emulator.writes()) == 1  # the expired intent never reached ARM again
    assert app.take(POISON_QUEUE) == []
    assert app.pool("batch")["count"] == 2


def test_the_local_host_retries_a_failing_intent_function_then_poisons_it(app: App) -> None:
    """When storage itself fails the function raises; the host (here its local stand-in, with
    host.json's semantics) retries delivery and after maxDequeueCount moves it to -poison."""
    with app.stack.table_service() as tables:
        tables.delete_table(STATE_TABLE)  # recording the intent now fails
    try:
        with app.stack.queue_service() as queues:
            queues.get_queue_client(INTENTS_QUEUE).send_message(INTENT)
            settings = QueueSettings(visibility_timeout_seconds=1, max_dequeue_count=2)
            host = LocalFunctionsHost(function_app.app, queues, settings)
            deadline = time.monotonic() + 15
            while not (parked := app.take(POISON_QUEUE)) and time.monotonic() < deadline:
                host.drain(INTENTS_QUEUE)
                time.sleep(0.3)
    finally:
        with app.stack.table_service() as tables:
            tables.create_table_if_not_exists(STATE_TABLE)
    assert parked, "the message never reached the poison queue"
    assert parked[0]["id"] == "retry-me"
    assert app.take(INTENTS_QUEUE) == []
    assert app.results() == [] and app.arm_requests() == []


def test_an_outcome_that_could_not_be_published_is_published_on_redelivery(app: App) -> None:
    """The reconcile records the outcome before publishing it: if publishing fails, the host's
    redelivery of the reconcile message publishes it (once) without writing the pool again."""
    app.deliver(INTENT)
    with app.queue(RECONCILE_QUEUE) as queue:
        (message,) = queue.receive_messages(max_messages=1, visibility_timeout=60)
        queue.delete_message(message)
    with app.queue(RESULTS_QUEUE) as results:
        results.delete_queue()
    try:
        with pytest.raises(Exception):  # noqa: B017 - whatever the storage SDK raises
            app.call("scale_reconcile", message.content, 1, message.id)
    finally:
        with app.queue(RESULTS_QUEUE) as results:
            results.create_queue()
    assert len(app.emulator.writes()) == 1

    app.call("scale_reconcile", message.content, 2, message.id)  # the host's redelivery
    app.settle()
    applied = app.only_result()
    assert applied["intent_id"] == "retry-me" and applied["outcome"] == "applied"
    assert len(app.emulator.writes()) == 1
    assert app.pool("batch")["count"] == 7


@pytest.mark.parametrize(
    ("kind", "code"), [("403", "AuthorizationFailed"), ("400", "InvalidParameter")]
)
def test_a_permanent_refusal_from_arm_is_rejected_at_once(app: App, kind: str, code: str) -> None:
    app.emulator.set_faults([{"kind": kind, "method": "PUT", "times": 1}])
    app.deliver('{"id": "refused", "pools": {"batch": 7}, "hold": "PT1H"}')
    app.settle()

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] == code and outcome["error"]["field"] == "pools.batch"
    assert "hold" not in outcome  # a refused hold is not recorded, so not reported
    assert app.take(INTENTS_QUEUE) == [] and app.take(POISON_QUEUE) == []  # not retried
    assert len(app.emulator.writes()) == 1
    assert app.pool("batch")["count"] == 2

    # The refused hold left nothing behind: a later plain intent is applied, not superseded.
    app.deliver('{"id": "later", "pools": {"batch": 3}}', message_id="m-2")
    app.settle()
    later = app.only_result()
    assert later["outcome"] == "applied"
    assert later["pools"][0]["why"]["source"] == "intent"
    assert app.pool("batch")["count"] == 3


def test_a_refusal_from_arm_reports_the_failed_pool(app: App) -> None:
    app.emulator.set_faults([{"kind": "403", "method": "PUT", "times": 1}])
    app.deliver(INTENT)
    app.settle()
    outcome = app.only_result()
    (pool,) = outcome["pools"]
    assert pool["pool"] == "batch" and pool["outcome"] == "failed"
    assert pool["error"]["code"] == "AuthorizationFailed"
    assert pool["before"]["count"] == 2
