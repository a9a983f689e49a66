"""Which cluster an intent targets, and whether the app may touch it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterRef:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )

    @property
    def short_name(self) -> str:
        return f"{self.resource_group}/{self.name}"


def is_allowed(cluster: ClusterRef, allowlist: tuple[str, ...], default: ClusterRef | None) -> bool:
    """`resourceGroup/cluster` entries; `*` matches a whole segment. Empty list: the default only.

    Resource group names are case-insensitive in ARM, so the comparison is too; a wildcard never
    matches part of a name, which keeps `rg-*`-style surprises out of a security check.
    """
    if not allowlist:
        return default is not None and _same(cluster, default)
    rg, name = cluster.resource_group.lower(), cluster.name.lower()
    for entry in allowlist:
        allowed_rg, _, allowed_name = entry.lower().partition("/")
        if allowed_rg in ("*", rg) and allowed_name in ("*", name):
            return True
    return False


def _same(a: ClusterRef, b: ClusterRef) -> bool:
    return (
        a.subscription_id.lower() == b.subscription_id.lower()
        and a.resource_group.lower() == b.resource_group.lower()
        and a.name.lower() == b.name.lower()
    )
