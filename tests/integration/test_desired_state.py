"""Issue 9's holes, each through function_app.py against Azurite and the AKS emulator: a burst
costs one write, a refused hold leaves nothing behind, ids cannot be taken over, a fast clock
cannot own a pool, a short hold survives a transient failure, leases share a pool."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scaler.settings import STATE_TABLE
from tests.app_under_test import App


def send(app: App, document: dict[str, Any], message_id: str) -> None:
    app.deliver(json.dumps(document), message_id=message_id)


def finals(app: App, results: list[dict[str, Any]], intent_id: str) -> list[dict[str, Any]]:
    return [r for r in results if r["intent_id"] == intent_id and r["final"]]


def puts(app: App) -> list[dict[str, Any]]:
    return [r for r in app.arm_requests() if r["method"] == "PUT"]


def test_a_burst_of_intents_for_one_pool_costs_one_read_and_one_write(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_COALESCE_SECONDS="1")
    app.emulator.clear_requests()
    for n in range(40):
        send(app, {"id": f"burst-{n}", "pools": {"batch": 3 + n % 5}}, f"m-{n}")
    app.settle(timeout=20, quiet=2.5)
    results = app.take("scale-results", timeout=5, count=40)
    assert app.pool("batch")["count"] == 3 + 39 % 5
    assert len(puts(app)) == 1
    assert len(app.lists()) <= 3
    for n in range(40):
        assert len(finals(app, results, f"burst-{n}")) == 1, n
    assert finals(app, results, "burst-39")[0]["outcome"] == "applied"


def test_an_intent_refused_by_arm_leaves_no_hold_and_no_state_behind(
    app: App, tmp_path: Path, settings_override: Callable[..., None]
) -> None:
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(
        'timezone = "UTC"\n[[clusters]]\nresource_group = "rg-demo"\ncluster = "aks-demo"\n'
        "[clusters.pools.batch]\noutside = 4\n"
    )
    settings_override(SCALER_SCHEDULE_FILE=str(schedule))
    app.emulator.set_faults([{"kind": "403", "method": "PUT", "times": 1}])
    send(app, {"id": "held", "pools": {"batch": 9}, "hold": "PT2H"}, "m-held")
    app.settle()
    (refused,) = [r for r in app.results() if r["intent_id"] == "held"]
    assert refused["outcome"] == "rejected"
    assert refused["error"]["code"] == "AuthorizationFailed"
    assert "hold" not in refused, "a hold is reported only when it was recorded"
    # The schedule is not kept off the pool, and nothing later writes the refused 9.
    app.emulator.wait_until_settled()
    app.settle()
    assert app.pool("batch")["count"] == 4
    send(app, {"id": "older", "pools": {"batch": 5}, "issued_at": "2026-01-01T00:00:00Z"}, "m-o")
    app.settle()
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 5


def test_one_message_delivered_twice_has_one_final_outcome(app: App) -> None:
    body = json.dumps({"pools": {"batch": 6}})  # no id: keyed by the queue message id
    app.deliver(body, message_id="msg-twice")
    app.deliver(body, message_id="msg-twice", dequeue_count=2)
    app.settle()
    results = app.take("scale-results", timeout=2)
    assert [r["outcome"] for r in results] == ["applied"]
    assert results[0]["intent_id"] == "msg-twice"


def test_an_issued_at_in_the_future_cannot_own_a_pool(app: App) -> None:
    send(app, {"id": "2099", "pools": {"batch": 9}, "issued_at": "2099-01-01T00:00:00Z"}, "m-1")
    (refused,) = app.results()
    assert refused["outcome"] == "rejected" and refused["error"]["field"] == "issued_at"
    send(app, {"id": "today", "pools": {"batch": 3}}, "m-2")
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 3


def test_a_short_hold_is_applied_after_a_transient_failure(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1")
    app.emulator.set_faults([{"kind": "500", "method": "PUT", "times": 1}])
    send(app, {"id": "short", "pools": {"batch": 8}, "hold": "PT3S"}, "m-short")
    app.settle(timeout=10, quiet=2.5)
    results = app.take("scale-results", timeout=2, count=2)
    assert [r["outcome"] for r in results] == ["deferred", "applied"]
    assert results[-1]["hold"]["until"]
    assert app.pool("batch")["count"] == 8


def test_an_id_cannot_be_taken_over_by_a_dry_run_or_another_cluster(app: App) -> None:
    send(app, {"id": "shared", "pools": {"batch": 5}, "dry_run": True}, "m-dry")
    forbidden = {
        "id": "shared",
        "resource_group": "rg-other",
        "cluster": "aks-x",
        "pools": {"batch": 5},
    }
    send(app, forbidden, "m-forbidden")
    (dry, forbidden) = app.take("scale-results", timeout=2, count=2)
    assert dry["outcome"] == "dry_run"
    assert forbidden["outcome"] == "rejected"
    send(app, {"id": "shared", "pools": {"batch": 5}}, "m-real")
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 5
    send(app, {"id": "shared", "pools": {"web": {"min": 1, "max": 3}}}, "m-again")
    duplicate = app.only_result()
    assert duplicate["outcome"] == "rejected" and duplicate["error"]["code"] == "DuplicateId"


def test_two_pipelines_share_a_pool_with_leases(app: App) -> None:
    send(app, {"id": "pipeline-a", "pools": {"batch": 4}, "lease": "PT2H"}, "m-a")
    send(app, {"id": "pipeline-b", "pools": {"batch": 4}, "lease": "PT2H"}, "m-b")
    app.settle()
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 8
    send(app, {"release": "pipeline-a"}, "m-release-a")
    app.settle()
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 4, "B's nodes stay while B still runs"
    send(app, {"release": "pipeline-b"}, "m-release-b")
    app.settle()
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 2, "back to the size before the first lease"
    results = app.take("scale-results", timeout=2, count=4)
    assert {r["intent_id"]: r["outcome"] for r in results}["pipeline-a"] == "applied"


def test_sources_live_in_one_partition_per_cluster(app: App) -> None:
    send(app, {"id": "recorded", "pools": {"batch": 3}, "hold": "PT1H"}, "m-rec")
    app.settle()
    with app.stack.table_service() as tables:
        rows = list(tables.get_table_client(STATE_TABLE).list_entities())
    partitions = {r["PartitionKey"] for r in rows if r["RowKey"].startswith("source|")}
    assert partitions == {"00000000-0000-0000-0000-000000000000|rg-demo|aks-demo"}
    (row,) = [r for r in rows if r["RowKey"] == "source|recorded"]
    assert row["Kind"] == "hold" and row["Status"] == "final" and row["Active"] is True
