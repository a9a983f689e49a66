"""Cluster allowlist, settings, retry backoff and the overall outcome rule."""

from __future__ import annotations

import pytest

from scaler.domain.clusters import ClusterRef, is_allowed
from scaler.domain.outcomes import Overall, PoolOutcome, PoolResult, overall_of
from scaler.domain.planner import Action
from scaler.service_layer.retry import RetryPolicy
from scaler.settings import SETTINGS, Settings, SettingsError

SUB = "00000000-0000-0000-0000-000000000000"
OTHER = "11111111-2222-3333-4444-555555555555"
DEFAULT = ClusterRef(SUB, "rg-demo", "aks-demo")


@pytest.mark.parametrize(
    ("allowlist", "cluster", "allowed"),
    [
        ((), DEFAULT, True),
        ((), ClusterRef(SUB, "RG-DEMO", "aks-demo"), True),  # ARM names are case-insensitive
        ((), ClusterRef(SUB, "rg-demo", "aks-other"), False),
        ((), ClusterRef("11111111-1111-1111-1111-111111111111", "rg-demo", "aks-demo"), False),
        (("rg-demo/*",), ClusterRef(SUB, "rg-demo", "aks-other"), True),
        (("rg-demo/*",), ClusterRef(SUB, "rg-prod", "aks-demo"), False),
        (("*/aks-prod",), ClusterRef(SUB, "rg-x", "aks-prod"), True),
        (("rg-*/aks-demo",), ClusterRef(SUB, "rg-demo", "aks-demo"), False),  # * is a whole segment
        (("rg-a/one", "rg-b/two"), ClusterRef(SUB, "rg-b", "two"), True),
        (("rg-a/one", "rg-b/two"), ClusterRef(SUB, "rg-a", "two"), False),
        # Two-part entries mean the app's own subscription; other subscriptions need three parts.
        (("rg-demo/*",), ClusterRef(OTHER, "rg-demo", "aks-demo"), False),
        ((f"{OTHER}/rg-demo/aks-demo",), ClusterRef(OTHER, "rg-demo", "aks-demo"), True),
        ((f"{OTHER}/rg-demo/aks-demo",), ClusterRef(SUB, "rg-demo", "aks-demo"), False),
        (("*/rg-demo/aks-demo",), ClusterRef(OTHER, "RG-Demo", "aks-demo"), True),
        # Only ASCII folds: the Kelvin sign is not "k", whatever str.lower() thinks.
        (("rg-k8s/*",), ClusterRef(SUB, "rg-\u212a8s", "aks"), False),
        (("rg-k8s/*",), ClusterRef(SUB, "RG-K8S", "aks"), True),
    ],
)
def test_allowlist(allowlist: tuple[str, ...], cluster: ClusterRef, allowed: bool) -> None:
    assert is_allowed(cluster, allowlist, DEFAULT, SUB) is allowed


def test_no_default_and_no_allowlist_allows_nothing() -> None:
    assert not is_allowed(DEFAULT, (), None, SUB)


def test_two_part_entries_match_nothing_without_a_home_subscription() -> None:
    assert not is_allowed(DEFAULT, ("rg-demo/*",), None, "")
    assert is_allowed(DEFAULT, (f"{SUB}/rg-demo/*",), None, "")


def test_settings_defaults_and_parsing() -> None:
    settings = Settings.from_env({"SCALER_ALLOWED_CLUSTERS": " rg-a/one, */two ,"})
    assert settings.allowed_clusters == ("rg-a/one", "*/two")
    assert settings.max_count == 100 and settings.arm_endpoint == "https://management.azure.com"
    assert settings.default_cluster is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCALER_MAX_COUNT": "lots"}, "SCALER_MAX_COUNT must be a whole number, not 'lots'"),
        ({"SCALER_MAX_COUNT": "0"}, "SCALER_MAX_COUNT must be at least 1, not 0"),
        (
            {"SCALER_MAX_COUNT": "1001"},
            "SCALER_MAX_COUNT must be at most 1000 (the AKS limit per pool), not 1001",
        ),
        (
            {"SCALER_ARM_ENDPOINT": "http://127.0.0.1:8443"},
            "SCALER_ARM_ENDPOINT must be an https:// URL (bearer tokens never travel over plain "
            "http), not 'http://127.0.0.1:8443'",
        ),
        (
            {"SCALER_ALLOWED_CLUSTERS": "aks-prod"},
            "SCALER_ALLOWED_CLUSTERS entry 'aks-prod' must look like resourceGroup/cluster or "
            "subscriptionId/resourceGroup/cluster",
        ),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == message


def test_every_setting_has_help() -> None:
    assert all(spec.help for spec in SETTINGS)
    assert len({spec.name for spec in SETTINGS}) == len(SETTINGS)


def test_retry_delay_doubles_is_capped_and_never_undercuts_retry_after() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=15, max_seconds=900)
    assert [policy.delay(n, None) for n in range(1, 9)] == [15, 30, 60, 120, 240, 480, 900, 900]
    assert policy.delay(1, 17) == 17
    assert policy.delay(3, 17) == 60
    assert policy.delay(8, 3600) == 3600


def _pool(result: PoolResult) -> PoolOutcome:
    return PoolOutcome("p", {"count": 1}, Action.SCALE, result)


@pytest.mark.parametrize(
    ("results", "overall"),
    [
        ([], Overall.UNCHANGED),
        ([PoolResult.UNCHANGED, PoolResult.UNCHANGED], Overall.UNCHANGED),
        ([PoolResult.UNCHANGED, PoolResult.STARTED], Overall.APPLIED),
        ([PoolResult.STARTED, PoolResult.DEFERRED], Overall.DEFERRED),
        ([PoolResult.FAILED, PoolResult.DEFERRED], Overall.DEFERRED),
        ([PoolResult.STARTED, PoolResult.FAILED], Overall.REJECTED),
        ([PoolResult.REFUSED, PoolResult.NOT_ATTEMPTED], Overall.REJECTED),
        ([PoolResult.WOULD_CHANGE, PoolResult.UNCHANGED], Overall.DRY_RUN),
    ],
)
def test_overall_outcome(results: list[PoolResult], overall: Overall) -> None:
    assert overall_of(_pool(r) for r in results) is overall
