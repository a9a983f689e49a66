"""Generated seeds: many clusters in several subscriptions, for fleet tests and benchmarks.

Names are unique across subscriptions (the control API's `pools` view is keyed by
`rg/cluster` without the subscription), and everything but the eTags is deterministic.
"""

from __future__ import annotations

import copy
from typing import Any

from .state import check_tags

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
    "tags",
    "tag_every",
    "cluster_tags",
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
    tags: dict[str, str] | None = None,
    tag_every: int = 1,
    cluster_tags: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A seed with `subscriptions x resource_groups x clusters_per_resource_group` clusters.

    Subscription i is `subscription_id(i + 1)` (so none clashes with the default seed's), its
    resource groups are `rg-fleet-s{i}-g{j}` and their clusters `aks-s{i}-g{j}-c{k}`. Pools
    follow POOL_TEMPLATES in turn (system, batch, web, gpu, then batch-2, ...). `base` (a seed)
    contributes its clusters first, e.g. the default seed to keep `rg-demo`.

    Tags: the generated cluster number n (0, 1, ... in the order above, across subscriptions)
    carries `tags` when n % tag_every == 0 (every cluster with the default 1). `cluster_tags`,
    keyed by cluster name (generated or from `base`), replaces a cluster's tags with its own.
    """
    for name, value in (
        ("subscriptions", subscriptions),
        ("resource_groups", resource_groups),
        ("clusters_per_resource_group", clusters_per_resource_group),
        ("pools_per_cluster", pools_per_cluster),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1")
    if isinstance(tag_every, bool) or not isinstance(tag_every, int) or tag_every < 1:
        raise ValueError("'tag_every' must be an integer >= 1")
    rule_tags = check_tags(tags, "'tags'") if tags is not None else {}
    if cluster_tags is not None and not isinstance(cluster_tags, dict):
        raise ValueError("'cluster_tags' must be an object keyed by cluster name")
    overrides = {
        name.lower(): check_tags(value, f"'cluster_tags.{name}'")
        for name, value in (cluster_tags or {}).items()
    }
    clusters: list[dict[str, Any]] = []
    default_sub = "00000000-0000-0000-0000-000000000000"
    if base is not None:
        default_sub = base.get("subscriptionId", default_sub)
        for entry in base.get("clusters", []):
            entry = copy.deepcopy(entry)
            entry.setdefault("subscriptionId", default_sub)
            clusters.append(entry)
    base_count = len(clusters)
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
                if rule_tags and (len(clusters) - base_count - 1) % tag_every == 0:
                    clusters[-1]["tags"] = dict(rule_tags)
    for entry in clusters:
        if entry["name"].lower() in overrides:
            entry["tags"] = dict(overrides[entry["name"].lower()])
    unknown = set(overrides) - {entry["name"].lower() for entry in clusters}
    if unknown:
        raise ValueError(f"'cluster_tags' names clusters not in the fleet: {sorted(unknown)}")
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
