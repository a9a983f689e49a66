"""Generated seeds: many clusters in several subscriptions, for fleet tests and benchmarks.

Names are unique across subscriptions (the control API's `pools` view is keyed by
`rg/cluster` without the subscription), and everything but the eTags is deterministic.
"""

from __future__ import annotations

import copy
from typing import Any

# Pool templates, used in turn: the first pool of every cluster is the System pool.
POOL_TEMPLATES: list[dict[str, Any]] = [
    {"mode": "System", "count": 3, "vmSize": "Standard_D4ds_v5", "enableAutoScaling": False},
    {"mode": "User", "count": 2, "vmSize": "Standard_D8ds_v5", "enableAutoScaling": False},
    {
        "mode": "User",
        "count": 2,
        "vmSize": "Standard_D4ds_v5",
        "enableAutoScaling": True,
        "minCount": 1,
        "maxCount": 5,
    },
    {
        "mode": "User",
        "count": 0,
        "vmSize": "Standard_NC4as_T4_v3",
        "enableAutoScaling": False,
        "powerState": {"code": "Stopped"},
    },
]
POOL_NAMES = ["system", "batch", "web", "gpu"]
FLEET_KEYS = {
    "subscriptions",
    "resource_groups",
    "clusters_per_resource_group",
    "pools_per_cluster",
    "location",
    "keep_seed",
}


def subscription_id(index: int) -> str:
    """`00000000-0000-0000-0000-00000000000N`-style ids: index 0 is the default seed's one."""
    return f"00000000-0000-0000-0000-{index:012d}"


def fleet_seed(
    subscriptions: int = 2,
    resource_groups: int = 2,
    clusters_per_resource_group: int = 5,
    pools_per_cluster: int = 3,
    location: str = "westeurope",
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A seed with `subscriptions x resource_groups x clusters_per_resource_group` clusters.

    Subscription i is `subscription_id(i + 1)` (so none clashes with the default seed's), its
    resource groups are `rg-fleet-s{i}-g{j}` and their clusters `aks-s{i}-g{j}-c{k}`. Pools
    follow POOL_TEMPLATES in turn (system, batch, web, gpu, then batch-2, ...). `base` (a seed)
    contributes its clusters first, e.g. the default seed to keep `rg-demo`.
    """
    for name, value in (
        ("subscriptions", subscriptions),
        ("resource_groups", resource_groups),
        ("clusters_per_resource_group", clusters_per_resource_group),
        ("pools_per_cluster", pools_per_cluster),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1")
    clusters: list[dict[str, Any]] = []
    default_sub = "00000000-0000-0000-0000-000000000000"
    if base is not None:
        default_sub = base.get("subscriptionId", default_sub)
        for entry in base.get("clusters", []):
            entry = copy.deepcopy(entry)
            entry.setdefault("subscriptionId", default_sub)
            clusters.append(entry)
    for s in range(subscriptions):
        for g in range(resource_groups):
            for c in range(clusters_per_resource_group):
                name = f"aks-s{s}-g{g}-c{c}"
                clusters.append(
                    {
                        "subscriptionId": subscription_id(s + 1),
                        "resourceGroup": f"rg-fleet-s{s}-g{g}",
                        "name": name,
                        "location": location,
                        "properties": {
                            "kubernetesVersion": "1.33.3",
                            "currentKubernetesVersion": "1.33.3",
                            "dnsPrefix": name,
                        },
                        "agentPools": [_pool(p) for p in range(pools_per_cluster)],
                    }
                )
    return {"subscriptionId": default_sub, "clusters": clusters}


def _pool(index: int) -> dict[str, Any]:
    if index == 0:
        which, name = 0, POOL_NAMES[0]
    else:  # after the System pool the User templates repeat: batch, web, gpu, batch-2, ...
        turn, rest = divmod(index - 1, len(POOL_TEMPLATES) - 1)
        which = rest + 1
        name = POOL_NAMES[which] + (f"-{turn + 1}" if turn else "")
    template = POOL_TEMPLATES[which]
    properties = {
        **copy.deepcopy(template),
        "osType": "Linux",
        "type": "VirtualMachineScaleSets",
        "orchestratorVersion": "1.33.3",
        "currentOrchestratorVersion": "1.33.3",
        "maxPods": 110,
    }
    return {"name": name, "properties": properties}


def fleet_from_request(raw: Any, default_seed: dict[str, Any]) -> dict[str, Any]:
    """The control API's `{"fleet": {...}}`: fleet_seed's arguments, `keep_seed` adds `base`."""
    if not isinstance(raw, dict):
        raise ValueError("'fleet' must be an object")
    unknown = set(raw) - FLEET_KEYS
    if unknown:
        raise ValueError(f"unknown fleet keys {sorted(unknown)}; use some of {sorted(FLEET_KEYS)}")
    args = dict(raw)
    keep = args.pop("keep_seed", False)
    if not isinstance(keep, bool):
        raise ValueError("'keep_seed' must be a boolean")
    location = args.get("location", "westeurope")
    if not isinstance(location, str):
        raise ValueError("'location' must be a string")
    return fleet_seed(**args, base=default_seed if keep else None)
