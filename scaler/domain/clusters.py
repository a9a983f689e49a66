"""Which cluster an intent targets, and whether the app may touch it."""

from __future__ import annotations

import re
from dataclasses import dataclass

# ARM's naming rules, checked with fullmatch wherever a name comes from outside.
SUBSCRIPTION_ID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
RESOURCE_GROUP_NAME = re.compile(r"[-\w.()]{0,89}[-\w()]")
CLUSTER_NAME = re.compile(r"[A-Za-z0-9]([-_A-Za-z0-9]{0,61}[A-Za-z0-9])?")


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


def is_allowed(
    cluster: ClusterRef,
    allowlist: tuple[str, ...],
    default: ClusterRef | None,
    home_subscription: str,
) -> bool:
    """Entries are `resourceGroup/cluster` (in the app's own subscription, `home_subscription`)
    or `subscriptionId/resourceGroup/cluster`; `*` matches a whole segment, never part of one.
    An empty list allows the default cluster only.

    Names compare case-insensitively, as ARM does, but only over ASCII: Unicode case folding
    would let look-alikes such as the Kelvin sign (K) match an entry's "k"."""
    if not allowlist:
        return default is not None and _key(cluster) == _key(default)
    subscription, rg, name = _key(cluster)
    for entry in allowlist:
        parts = _fold(entry).split("/")
        if len(parts) == 2:
            parts = [_fold(home_subscription) or "\0", *parts]  # no home: matches nothing
        if all(
            allowed in ("*", actual)
            for allowed, actual in zip(parts, (subscription, rg, name), strict=True)
        ):
            return True
    return False


def allowed_subscriptions(
    allowlist: tuple[str, ...], default: ClusterRef | None, home_subscription: str
) -> tuple[str, ...] | None:
    """The subscriptions `is_allowed` can say yes in, as the allowlist spells them; None when
    an entry has `*` for the subscription (any)."""
    if not allowlist:
        return (default.subscription_id,) if default is not None else ()
    found: dict[str, None] = {}
    for entry in allowlist:
        parts = entry.split("/")
        subscription = parts[0] if len(parts) == 3 else home_subscription
        if subscription == "*":
            return None
        if subscription:
            found[_fold(subscription)] = None
    return tuple(found)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _key(cluster: ClusterRef) -> tuple[str, str, str]:
    return _fold(cluster.subscription_id), _fold(cluster.resource_group), _fold(cluster.name)
