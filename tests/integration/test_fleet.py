"""A fleet through function_app.py against Azurite and the AKS emulator: a tick over clusters in
three subscriptions, some picked by tag through Resource Graph; a tagged cluster outside the
allowlist is never read or written; 429s from Resource Manager and from AKS are deferred and
applied later, with nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.app_under_test import App

pytestmark = pytest.mark.integration

TAGS = {"team": "data"}
# Clusters aks-s{i}-g0-c{k}: subscription i+1, resource group rg-fleet-s{i}-g0.
TAGGED = ["aks-s1-g0-c1", "aks-s2-g0-c0", "aks-s2-g0-c2"]
OUTSIDE = "aks-s2-g0-c2"  # tagged, but the allowlist leaves it out


def sub(index: int) -> str:
    return f"00000000-0000-0000-0000-{index + 1:012d}"


def named(index: int, cluster: str) -> str:
    return f"""
[[clusters]]
subscription_id = "{sub(index)}"
resource_group = "rg-fleet-s{index}-g0"
cluster = "{cluster}"
[clusters.pools.batch]
outside = 4
"""


SCHEDULE = (
    'timezone = "UTC"\n'
    + "".join(named(0, f"aks-s0-g0-c{k}") for k in range(3))
    + named(1, "aks-s1-g0-c0")
    + """
[[clusters]]
select = { tag = "team=data" }
[clusters.pools.batch]
outside = 3
"""
)


@pytest.fixture
def fleet(app: App, tmp_path: Path, settings_override: Callable[..., None]) -> App:
    app.emulator.seed_fleet(
        subscriptions=3,
        resource_groups=1,
        clusters_per_resource_group=3,
        cluster_tags={name: TAGS for name in TAGGED},
    )
    path = tmp_path / "schedule.toml"
    path.write_text(SCHEDULE)
    allowed = ",".join(
        [
            f"{sub(0)}/*/*",
            f"{sub(1)}/rg-fleet-s1-g0/*",
            f"{sub(2)}/rg-fleet-s2-g0/aks-s2-g0-c0",
            f"{sub(2)}/rg-fleet-s2-g0/aks-s2-g0-c1",
        ]
    )
    settings_override(SCALER_SCHEDULE_FILE=str(path), SCALER_ALLOWED_CLUSTERS=allowed)
    app.emulator.clear_requests()
    return app


def batch(app: App, cluster: str) -> int:
    group = cluster.rsplit("-", 1)[0].replace("aks-", "rg-fleet-")
    return int(app.emulator.pool(group, cluster, "batch")["count"])


def kinds(app: App) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for request in app.arm_requests():
        found.setdefault(request["kind"], []).append(request)
    return found


def test_a_tick_over_three_subscriptions_converges_named_and_tagged_clusters(fleet: App) -> None:
    fleet.tick()
    assert [batch(fleet, f"aks-s0-g0-c{k}") for k in range(3)] == [4, 4, 4]
    assert batch(fleet, "aks-s1-g0-c0") == 4
    assert batch(fleet, "aks-s1-g0-c1") == 3 and batch(fleet, "aks-s2-g0-c0") == 3
    seen = kinds(fleet)
    # Subscription 1 (three clusters): one listing, no per-cluster read; the others read their own.
    (listing,) = seen["ListManagedClusters"]
    assert sub(0) in listing["path"]
    reads = sorted(
        r["path"].split("/managedClusters/")[1].split("/")[0] for r in seen["ListAgentPools"]
    )
    assert reads == ["aks-s1-g0-c0", "aks-s1-g0-c1", "aks-s2-g0-c0"]
    assert len(seen["ResourceGraphQuery"]) == 1
    assert all(w["if_match"] for w in seen["PutAgentPool"]) and len(seen["PutAgentPool"]) == 6


def test_a_tagged_cluster_outside_the_allowlist_is_never_read_or_written(fleet: App) -> None:
    fleet.tick()
    assert batch(fleet, OUTSIDE) == 2
    assert not [r for r in fleet.arm_requests() if OUTSIDE in r["path"]]
    assert not [o for o in fleet.results() if OUTSIDE in (o.get("cluster") or "")]


def test_resource_manager_429s_on_writes_are_deferred_then_applied(fleet: App) -> None:
    # Resource Manager's own write bucket: two writes, then one every 2 s (the app only learns
    # this from the emulator's headers and 429s).
    fleet.emulator.set_limits({"arm_writes": {"burst": 2, "refill_per_second": 0.5}})
    fleet.tick()
    fleet.settle(timeout=60, quiet=5)
    assert [batch(fleet, f"aks-s0-g0-c{k}") for k in range(3)] == [4, 4, 4]
    assert batch(fleet, "aks-s1-g0-c0") == 4
    outcomes = fleet.results()
    assert any(o.get("throttled") for o in outcomes), outcomes
    assert not [o for o in outcomes if o["outcome"] in ("failed", "poisoned", "rejected")]


def test_aks_429s_on_pool_reads_are_deferred_then_applied(fleet: App) -> None:
    # AKS's "other APIs" bucket of subscription 2: one LIST agentPools, then one every 2 s.
    fleet.emulator.set_limits({"aks_other": {"burst": 1, "refill_per_second": 0.5}})
    fleet.tick()
    fleet.settle(timeout=60, quiet=5)
    assert batch(fleet, "aks-s1-g0-c0") == 4 and batch(fleet, "aks-s1-g0-c1") == 3
    throttled = [r for r in fleet.arm_requests() if r["status"] == 429]
    assert throttled and {r["kind"] for r in throttled} <= {"ListAgentPools"}
    assert not [o for o in fleet.results() if o["outcome"] in ("failed", "poisoned", "rejected")]
