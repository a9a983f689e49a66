"""The queue triggers end to end: function_app → core → the AKS emulator over HTTPS, with the
real ManagedIdentityCredential against the emulator's token endpoint, Azurite queues and the
desired-state table.

`scale_intents` only validates and records an intent and queues a reconcile; `scale_reconcile`
(delivered by `App.settle`) reads the cluster once, resolves, writes with If-Match and publishes
each intent's one final outcome. Rejections at parse time and dry runs are published at once."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from scaler import bootstrap
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RECONCILE_QUEUE
from tests.app_under_test import App

BATCH_ETAG = "2b7d9e61-0c3a-4e8f-9d12-6a5b4c3e2f11"  # from the emulator's seed


def send(app: App, body: str, message_id: str = "m-1") -> int:
    """Deliver an intent, then every reconcile it asked for; returns how many reconciles ran."""
    app.deliver(body, message_id=message_id)
    return app.settle()


def queued_reconciles(app: App) -> int:
    """Messages on scale-reconcile, visible or not (a delayed wake-up counts too)."""
    with app.queue(RECONCILE_QUEUE) as queue:
        return queue.get_queue_properties().approximate_message_count


def test_applies_a_change_with_one_read_one_if_match_write(app: App) -> None:
    app.deliver('{"id": "scale-1", "pools": {"batch": 6}, "reason": "batch window"}')
    # The intent function only records and asks for a reconcile: no ARM call, no outcome yet.
    assert app.arm_requests() == [] and app.results() == []
    assert queued_reconciles(app) == 1

    assert app.settle() == 1
    outcome = app.only_result()
    assert outcome["intent_id"] == "scale-1" and outcome["outcome"] == "applied"
    assert outcome["final"] is True and outcome["reason"] == "batch window"
    assert outcome["message_id"] == "m-1" and outcome["attempt"] == 1
    assert outcome["cluster"].endswith(
        "/resourceGroups/rg-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo"
    )
    (pool,) = outcome["pools"]
    assert pool["pool"] == "batch" and pool["action"] == "scale" and pool["outcome"] == "started"
    assert pool["before"]["count"] == 2 and pool["before"]["autoscale"] is False
    assert pool["before"]["power"] == "Running" and pool["requested"] == {"count": 6}
    assert pool["after"]["count"] == 6 and pool["after"]["provisioning_state"] == "Scaling"
    assert pool["error"] is None
    assert pool["desired"] == {"count": 6}
    assert pool["why"]["source"] == "intent" and pool["why"]["id"] == "scale-1"

    assert len(app.lists()) == 1
    (write,) = app.emulator.writes()
    assert write["if_match"] == BATCH_ETAG and write["status"] == 200
    assert app.pool("batch")["count"] == 6
    assert queued_reconciles(app) == 0  # a plain intent with no end queues no wake-up


def test_a_pool_already_as_asked_gets_no_write(app: App) -> None:
    send(app, '{"pools": {"batch": 2, "web": {"min": 2, "max": 10}, "gpu": {"power": "Stopped"}}}')

    outcome = app.only_result()
    assert outcome["outcome"] == "unchanged" and outcome["final"] is True
    assert [p["outcome"] for p in outcome["pools"]] == ["unchanged"] * 3
    assert app.emulator.writes() == []
    assert len(app.lists()) == 1


def test_multi_pool_intent_writes_only_the_changed_pools(app: App) -> None:
    send(
        app,
        '{"pools": {"batch": 2, "web": {"min": 1, "max": 5}, "gpu": {"power": "Running"},'
        ' "spot": {"power": "Stopped"}}}',
    )

    outcome = app.only_result()
    assert outcome["outcome"] == "applied"
    assert {p["pool"]: p["action"] for p in outcome["pools"]} == {
        "batch": "none",
        "web": "autoscale",
        "gpu": "start",
        "spot": "stop",
    }
    written = sorted(w["path"].rsplit("/", 1)[-1] for w in app.emulator.writes())
    assert written == ["gpu", "spot", "web"]
    assert all(w["if_match"] for w in app.emulator.writes())
    assert len(app.lists()) == 1  # one read for the whole cluster, not one per pool
    assert app.pool("web")["minCount"] == 1 and app.pool("web")["maxCount"] == 5
    assert app.pool("web")["count"] == 4  # inside the new bounds: left alone
    assert app.pool("spot")["powerState"]["code"] == "Stopped"
    assert app.pool("gpu")["powerState"]["code"] == "Running"


def test_a_burst_for_one_pool_costs_one_read_one_write_and_one_outcome_each(app: App) -> None:
    for n, count in enumerate((3, 8, 4, 5, 7)):
        app.deliver(json.dumps({"id": f"burst-{n}", "pools": {"batch": count}}), message_id=f"m{n}")
    assert app.arm_requests() == []
    app.settle()

    outcomes = {o["intent_id"]: o for o in app.results()}
    assert sorted(outcomes) == [f"burst-{n}" for n in range(5)]  # one each, none twice
    assert all(o["final"] for o in outcomes.values())
    assert outcomes["burst-4"]["outcome"] == "applied"
    for n in range(4):
        older = outcomes[f"burst-{n}"]
        assert older["outcome"] == "superseded", older
        assert older["pools"][0]["why"]["id"] == "burst-4"
    assert len(app.lists()) == 1
    (write,) = app.emulator.writes()
    assert write["status"] == 200 and app.pool("batch")["count"] == 7


def test_a_redelivered_intent_gets_no_second_outcome_and_no_second_write(app: App) -> None:
    intent = '{"id": "once", "pools": {"batch": 5}}'
    send(app, intent, message_id="m-1")
    assert app.only_result()["outcome"] == "applied"
    app.emulator.wait_until_settled()

    send(app, intent, message_id="m-1")  # the host delivered the same message again
    send(app, intent, message_id="m-2")  # the producer sent the same intent twice
    assert app.results() == []
    assert len(app.emulator.writes()) == 1


def test_an_intent_without_id_is_keyed_by_its_message(app: App) -> None:
    send(app, '{"pools": {"batch": 5}}', message_id="msg-7")
    app.emulator.wait_until_settled()
    send(app, '{"pools": {"batch": 5}}', message_id="msg-7")  # redelivered

    (outcome,) = app.results()
    assert outcome["intent_id"] == "msg-7" and outcome["outcome"] == "applied"
    assert len(app.emulator.writes()) == 1


def test_dry_run_reads_but_never_writes_and_records_nothing(app: App) -> None:
    app.deliver('{"id": "plan-9", "pools": {"batch": 9}, "dry_run": true}')

    outcome = app.only_result()  # published by the intent function itself
    assert outcome["outcome"] == "dry_run" and outcome["final"] is True
    assert outcome["pools"][0]["outcome"] == "would_change"
    assert outcome["pools"][0]["requested"] == {"count": 9}
    assert queued_reconciles(app) == 0
    assert app.emulator.writes() == [] and len(app.lists()) == 1
    assert app.pool("batch")["count"] == 2

    # Nothing was recorded: the same id, sent for real, is a new intent and is applied.
    send(app, '{"id": "plan-9", "pools": {"batch": 9}}', message_id="m-2")
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 9


@pytest.mark.parametrize(
    "body",
    [
        '{"pools": {"batch": 5}}',
        base64.b64encode(b'{"pools": {"batch": 5}}').decode(),
        '{"batch": 5}',  # the seed project's shorthand
    ],
    ids=["plain", "base64", "seed-shorthand"],
)
def test_message_encodings_and_the_seed_shorthand(app: App, body: str) -> None:
    send(app, body)
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 5


@pytest.mark.parametrize(
    ("body", "code", "field", "message"),
    [
        ("not json", "InvalidIntent", None, "message is not JSON (Expecting value at position 0)"),
        (
            '{"pools": {"batch": -1}}',
            "InvalidIntent",
            "pools.batch",
            "pools.batch: must not be negative, got -1",
        ),
        (
            '{"pools": {"batch": 500}}',
            "InvalidIntent",
            "pools.batch",
            "pools.batch: 500 is above the limit of 100 (SCALER_MAX_COUNT)",
        ),
        (
            '{"pools": {"batch": 1}, "expires_at": "2001-01-01T00:00:00Z"}',
            "InvalidIntent",
            "expires_at",
            None,
        ),
        (  # a producer clock far ahead would otherwise outrank every later intent
            '{"pools": {"batch": 1}, "issued_at": "2099-01-01T00:00:00Z"}',
            "InvalidIntent",
            "issued_at",
            None,
        ),
        (
            '{"pools": {"batch": 1}, "resource_group": "rg-prod", "cluster": "aks-prod"}',
            "ClusterNotAllowed",
            "cluster",
            "cluster rg-prod/aks-prod is not in SCALER_ALLOWED_CLUSTERS",
        ),
    ],
    ids=["not-json", "negative", "above-limit", "expired", "issued-in-2099", "not-allowed"],
)
def test_invalid_or_disallowed_intents_never_reach_arm(
    app: App, body: str, code: str, field: str | None, message: str | None
) -> None:
    app.deliver(body)

    outcome = app.only_result()  # at once, by the intent function
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] == code
    assert outcome["error"].get("field") == field
    if message:
        assert outcome["error"]["message"] == message
    assert "hold" not in outcome and "lease" not in outcome
    assert queued_reconciles(app) == 0  # nothing recorded, nothing to reconcile
    assert app.arm_requests() == []


def test_an_id_already_used_for_other_pools_is_refused_not_dropped(app: App) -> None:
    app.deliver('{"id": "job-1", "pools": {"batch": 5}}', message_id="m-1")
    app.deliver('{"id": "job-1", "pools": {"web": {"min": 1, "max": 2}}}', message_id="m-2")

    duplicate = app.only_result()
    assert duplicate["outcome"] == "rejected" and duplicate["message_id"] == "m-2"
    assert duplicate["error"]["code"] == "DuplicateId" and duplicate["error"]["field"] == "id"
    app.settle()
    first = app.only_result()
    assert first["intent_id"] == "job-1" and first["message_id"] == "m-1"
    assert first["outcome"] == "applied"
    assert [w["path"].rsplit("/", 1)[-1] for w in app.emulator.writes()] == ["batch"]


@pytest.mark.parametrize(
    ("pools", "code"),
    [
        ('{"system": 0}', "SystemPoolMinimum"),
        ('{"system": {"power": "Stopped"}}', "SystemPoolStop"),
        ('{"web": 3}', "AutoscalerEnabled"),
        ('{"gpu": 3}', "PoolStopped"),
        ('{"ghost": 3}', "PoolNotFound"),
    ],
)
def test_aks_rules_are_refused_before_any_write(app: App, pools: str, code: str) -> None:
    # batch is valid, but one refused pool rejects the whole intent: all or nothing.
    refused_pool = json.loads(pools).popitem()[0]
    send(app, f'{{"id": "mixed", "pools": {{"batch": 4, {pools[1:]}}}')

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] == code
    assert outcome["error"]["field"] == f"pools.{refused_pool}"
    by_pool = {p["pool"]: p for p in outcome["pools"]}
    assert sorted(by_pool) == sorted(["batch", refused_pool])
    refused = by_pool[refused_pool]
    assert refused["outcome"] == "refused" and refused["error"]["code"] == code
    assert by_pool["batch"]["outcome"] == "not_attempted"
    assert app.emulator.writes() == []
    assert app.pool("batch")["count"] == 2

    # A rejected intent leaves no source behind: a later intent for another pool is the only
    # write, and batch stays as it was.
    send(app, '{"id": "later", "pools": {"spot": 2}}', message_id="m-2")
    assert app.only_result()["outcome"] == "applied"
    assert [w["path"].rsplit("/", 1)[-1] for w in app.emulator.writes()] == ["spot"]
    assert app.pool("batch")["count"] == 2


def test_a_missing_cluster_is_rejected_not_retried(app: App) -> None:
    send(app, '{"pools": {"batch": 1}, "cluster": "aks-missing"}')

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] == "ResourceNotFound"
    assert len(app.lists()) == 1  # read once, not again
    assert queued_reconciles(app) == 0
    assert app.take(INTENTS_QUEUE) == [] and app.take(POISON_QUEUE) == []


def test_clients_and_token_are_reused_across_messages(app: App) -> None:
    for n, count in enumerate((3, 4, 5)):
        send(app, json.dumps({"pools": {"spot": count}}), message_id=f"m-{n}")
        app.emulator.wait_until_settled()
    assert bootstrap.intake() is bootstrap.intake()
    assert bootstrap.reconciler() is bootstrap.reconciler()
    token_requests = [r for r in app.emulator.requests_log() if r["path"].startswith("/msi")]
    assert len(token_requests) == 1
    assert [r["outcome"] for r in app.results()] == ["applied"] * 3
    assert app.pool("spot")["count"] == 5


def test_logs_carry_the_correlation_id_and_no_secrets(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    send(app, '{"id": "corr-7", "pools": {"batch": 3}}')
    app.deliver('{"id": "corr-8", "pools": {"batch": -3}}', message_id="m-2")

    records = [r for r in caplog.records if r.name == "scaler" and hasattr(r, "outcome")]
    assert [getattr(r, "correlation_id", None) for r in records] == ["corr-7", "corr-8"]
    logged = [json.loads(r.outcome) for r in records]  # type: ignore[attr-defined]
    assert [o["outcome"] for o in logged] == ["applied", "rejected"]
    assert logged[0]["pools"][0]["pool"] == "batch"
    # The token the app really holds (its credential caches it), the identity endpoint's secret
    # header and the storage key: none may appear in a log line or an outcome.
    token = bootstrap.credential().get_token("https://management.azure.com/.default").token
    secrets = [token, app.stack.settings["IDENTITY_HEADER"], "AccountKey="]
    everything = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    results = app.results()
    assert len(results) == 2
    everything += json.dumps(results)
    for secret in secrets:
        assert secret not in everything


def test_a_handled_intent_leaves_no_message_behind(app: App) -> None:
    send(app, '{"id": "tidy", "pools": {"batch": 4}}')
    assert app.only_result()["outcome"] == "applied"
    assert queued_reconciles(app) == 0
    assert app.take(INTENTS_QUEUE) == [] and app.take(POISON_QUEUE) == []
