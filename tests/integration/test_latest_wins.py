"""Latest intent wins per pool, duplicates change nothing, holds are recorded — all in real
Azurite tables, with writes counted by the emulator."""

from __future__ import annotations

import json
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from scaler.settings import INTENTS_QUEUE, STATE_TABLE
from tests.app_under_test import App


def intent(intent_id: str, minute: int, count: int, **extra: Any) -> str:
    return json.dumps(
        {
            "id": intent_id,
            "pools": {"batch": count},
            "issued_at": f"2026-11-23T12:{minute:02d}:00Z",
            **extra,
        }
    )


def test_an_older_intent_is_stale_and_not_applied(app: App) -> None:
    app.deliver(intent("newer", 30, 5))
    app.emulator.wait_until_settled()
    app.deliver(intent("older", 10, 3))

    first, second = app.results()
    assert first["outcome"] == "applied"
    assert second["intent_id"] == "older" and second["outcome"] == "stale" and second["final"]
    assert second["pools"][0]["outcome"] == "stale"
    assert (
        "intent newer issued at 2026-11-23T12:30:00+00:00" in second["pools"][0]["error"]["message"]
    )
    assert len(app.emulator.writes()) == 1
    assert app.pool("batch")["count"] == 5


def test_stale_pools_are_skipped_and_fresh_ones_applied(app: App) -> None:
    app.deliver(intent("newer", 30, 5))
    app.emulator.wait_until_settled()
    app.deliver(
        json.dumps(
            {"id": "mixed", "issued_at": "2026-11-23T12:10:00Z", "pools": {"batch": 3, "spot": 2}}
        )
    )
    mixed = app.results()[-1]
    assert mixed["outcome"] == "applied"
    assert {p["pool"]: p["outcome"] for p in mixed["pools"]} == {
        "batch": "stale",
        "spot": "started",
    }
    assert app.pool("batch")["count"] == 5 and app.pool("spot")["count"] == 2


def test_duplicate_delivery_never_writes_or_reports_twice(app: App) -> None:
    body = intent("once", 0, 4)
    app.deliver(body, message_id="m-1")
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", count=9)  # someone moved it since
    app.deliver(body, message_id="m-1-again")

    (outcome,) = app.results()
    assert outcome["outcome"] == "applied" and outcome["message_id"] == "m-1"
    assert len(app.emulator.writes()) == 1
    assert app.pool("batch")["count"] == 9


def test_a_burst_on_a_busy_pool_ends_with_one_write_for_the_first_and_one_for_the_last(
    app: App, settings_override: Any
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_operation_seconds(3600)  # the first write keeps the pool busy
    for minute in range(10):
        app.deliver(intent(f"burst-{minute}", minute, minute + 3))
    outcomes = app.results()
    assert outcomes[0]["outcome"] == "applied"
    assert {o["outcome"] for o in outcomes[1:]} == {"deferred"}

    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Succeeded")
    retries = app.take(INTENTS_QUEUE, timeout=10, count=9)
    assert len(retries) == 9
    for message in retries:
        app.deliver(json.dumps(message))
    final = {o["intent_id"]: o["outcome"] for o in app.results()}
    assert final == {**{f"burst-{m}": "stale" for m in range(1, 9)}, "burst-9": "applied"}
    assert len(app.emulator.writes()) == 2
    assert app.pool("batch")["count"] == 12


def test_a_hold_is_recorded_per_pool_and_reported(app: App) -> None:
    app.deliver(json.dumps({"id": "hold-1", "pools": {"batch": 10, "spot": 1}, "hold": "PT3H"}))

    outcome = app.only_result()
    assert outcome["outcome"] == "applied"
    until = outcome["hold"]["until"]
    assert outcome["hold"]["set_at"] < until
    with TableClient.from_connection_string(
        app.stack.azurite.connection_string, STATE_TABLE
    ) as table:
        rows = {row["RowKey"]: row for row in table.query_entities("RowKey ge 'pool|'")}
    assert set(rows) == {"pool|batch", "pool|spot"}
    assert rows["pool|batch"]["IntentId"] == "hold-1"
    assert rows["pool|batch"]["HoldUntil"].isoformat() == until


def test_a_final_outcome_recorded_but_not_published_is_published_on_redelivery(app: App) -> None:
    """The process died after recording the final outcome and before publishing it: the next
    delivery publishes the recorded document as it was, and does no new work."""
    app.deliver(intent("crashy", 0, 4))
    (first,) = app.results()
    with TableClient.from_connection_string(
        app.stack.azurite.connection_string, STATE_TABLE
    ) as table:  # as if the process had died before publishing
        table.update_entity(
            {"PartitionKey": "intent|crashy", "RowKey": "", "Published": False},
            mode=UpdateMode.MERGE,
        )
    app.emulator.clear_requests()

    app.deliver(intent("crashy", 0, 4), message_id="m-redelivered")
    assert app.results() == [first]  # the identical document, outcome_id included
    assert first["outcome_id"] == "crashy@m-1"
    assert app.arm_requests() == []
    app.deliver(intent("crashy", 0, 4), message_id="m-third")
    assert app.results() == []  # published now: nothing more


def test_two_deliveries_of_one_intent_at_once_give_one_final_outcome_and_one_write(
    app: App,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = intent("twice", 0, 7)
    for _ in range(3):  # a race: repeat so that both orders and overlaps get their turn
        app.emulator.reset()
        with TableClient.from_connection_string(
            app.stack.azurite.connection_string, STATE_TABLE
        ) as table:
            for row in table.list_entities():
                table.delete_entity(row)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda m: app.deliver(body, message_id=m), ["m-a", "m-b"]))
        outcomes = app.results()
        finals = [o for o in outcomes if o["final"]]
        assert len(finals) == 1 and finals[0]["outcome"] in {"applied", "unchanged"}
        assert all(o.get("duplicate") for o in outcomes if not o["final"])
        assert len([w for w in app.emulator.writes() if w["status"] == 200]) == 1
        assert app.pool("batch")["count"] == 7
