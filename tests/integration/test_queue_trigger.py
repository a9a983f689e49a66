"""The queue trigger end to end: function_app → core → the AKS emulator over HTTPS, with the
real ManagedIdentityCredential against the emulator's token endpoint and Azurite queues."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from scaler import bootstrap
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE
from tests.app_under_test import App

BATCH_ETAG = "2b7d9e61-0c3a-4e8f-9d12-6a5b4c3e2f11"  # from the emulator's seed


def test_applies_a_change_with_one_read_one_if_match_write(app: App) -> None:
    app.deliver('{"id": "scale-1", "pools": {"batch": 6}, "reason": "batch window"}')

    outcome = app.only_result()
    assert outcome["intent_id"] == "scale-1" and outcome["outcome"] == "applied"
    assert outcome["final"] is True and outcome["reason"] == "batch window"
    assert outcome["cluster"].endswith(
        "/resourceGroups/rg-demo/providers/Microsoft.ContainerService/managedClusters/aks-demo"
    )
    (pool,) = outcome["pools"]
    assert pool["pool"] == "batch" and pool["action"] == "scale" and pool["outcome"] == "started"
    assert pool["before"]["count"] == 2 and pool["before"]["autoscale"] is False
    assert pool["before"]["power"] == "Running" and pool["requested"] == {"count": 6}
    assert pool["after"]["count"] == 6 and pool["after"]["provisioning_state"] == "Scaling"
    assert pool["error"] is None

    assert len(app.lists()) == 1
    (write,) = app.emulator.writes()
    assert write["if_match"] == BATCH_ETAG and write["status"] == 200
    assert app.pool("batch")["count"] == 6


def test_a_pool_already_as_asked_gets_no_write(app: App) -> None:
    app.deliver(
        '{"pools": {"batch": 2, "web": {"min": 2, "max": 10}, "gpu": {"power": "Stopped"}}}'
    )

    outcome = app.only_result()
    assert outcome["outcome"] == "unchanged"
    assert [p["outcome"] for p in outcome["pools"]] == ["unchanged"] * 3
    assert app.emulator.writes() == []
    assert len(app.lists()) == 1


def test_multi_pool_intent_writes_only_the_changed_pools(app: App) -> None:
    app.deliver(
        '{"pools": {"batch": 2, "web": {"min": 1, "max": 5}, "gpu": {"power": "Running"},'
        ' "spot": {"power": "Stopped"}}}'
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
    assert len(app.lists()) == 1
    assert app.pool("web")["minCount"] == 1 and app.pool("web")["maxCount"] == 5
    assert app.pool("web")["count"] == 4  # inside the new bounds: left alone
    assert app.pool("spot")["powerState"]["code"] == "Stopped"
    assert app.pool("gpu")["powerState"]["code"] == "Running"


def test_dry_run_reads_but_never_writes(app: App) -> None:
    app.deliver('{"pools": {"batch": 9}, "dry_run": true}')

    outcome = app.only_result()
    assert outcome["outcome"] == "dry_run"
    assert outcome["pools"][0]["outcome"] == "would_change"
    assert app.emulator.writes() == [] and len(app.lists()) == 1
    assert app.pool("batch")["count"] == 2


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
    app.deliver(body)
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 5


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("not json", "InvalidIntent", "message is not JSON (Expecting value at position 0)"),
        ('{"pools": {"batch": -1}}', "InvalidIntent", "pools.batch: must not be negative, got -1"),
        (
            '{"pools": {"batch": 500}}',
            "InvalidIntent",
            "pools.batch: 500 is above the limit of 100 (SCALER_MAX_COUNT)",
        ),
        ('{"pools": {"batch": 1}, "expires_at": "2001-01-01T00:00:00Z"}', "InvalidIntent", None),
        (
            '{"pools": {"batch": 1}, "resource_group": "rg-prod", "cluster": "aks-prod"}',
            "ClusterNotAllowed",
            "cluster rg-prod/aks-prod is not in SCALER_ALLOWED_CLUSTERS",
        ),
    ],
)
def test_invalid_or_disallowed_intents_never_reach_arm(
    app: App, body: str, code: str, message: str | None
) -> None:
    app.deliver(body)

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] == code
    if message:
        assert outcome["error"]["message"] == message
    assert app.arm_requests() == []


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
    app.deliver(f'{{"pools": {{"batch": 4, {pools[1:]}}}')

    outcome = app.only_result()
    assert outcome["outcome"] == "rejected"
    by_pool = {p["pool"]: p for p in outcome["pools"]}
    refused = next(p for name, p in by_pool.items() if name != "batch")
    assert refused["outcome"] == "refused" and refused["error"]["code"] == code
    assert by_pool["batch"]["outcome"] == "not_attempted"
    assert app.emulator.writes() == []


def test_a_missing_cluster_is_rejected_not_retried(app: App) -> None:
    app.deliver('{"pools": {"batch": 1}, "cluster": "aks-missing"}')
    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["error"]["code"] == "ResourceNotFound"
    assert app.take(INTENTS_QUEUE) == []


def test_clients_and_token_are_reused_across_messages(app: App) -> None:
    for count in (3, 4, 5):
        app.deliver(json.dumps({"pools": {"spot": count}}))
        app.emulator.wait_until_settled()
    assert bootstrap.scale_service() is bootstrap.scale_service()
    token_requests = [r for r in app.emulator.requests_log() if r["path"].startswith("/msi")]
    assert len(token_requests) == 1
    assert [r["outcome"] for r in app.results()] == ["applied"] * 3


def test_logs_carry_the_correlation_id_and_no_secrets(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app.deliver('{"id": "corr-7", "pools": {"batch": 3}}')
    app.deliver('{"id": "corr-8", "pools": {"batch": -3}}')

    records = [r for r in caplog.records if r.name == "scaler" and hasattr(r, "outcome")]
    assert [getattr(r, "correlation_id", None) for r in records] == ["corr-7", "corr-8"]
    assert json.loads(records[0].outcome)["pools"][0]["pool"] == "batch"  # type: ignore[attr-defined]
    # The token the app really holds (its credential caches it), the identity endpoint's secret
    # header and the storage key: none may appear in a log line or an outcome.
    token = bootstrap.credential().get_token("https://management.azure.com/.default").token
    secrets = [token, app.stack.settings["IDENTITY_HEADER"], "AccountKey="]
    everything = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    everything += json.dumps(app.results())
    for secret in secrets:
        assert secret not in everything


def test_poison_queue_starts_empty(app: App) -> None:
    assert app.take(POISON_QUEUE) == []
