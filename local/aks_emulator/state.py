"""The emulated AKS resources and the rules AKS applies to agent-pool writes.

Pure model: no I/O, no clock, no locking. Callers pass `now` (epoch seconds) so operations
settle lazily on every read and tests can reason about time without sleeping threads.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SUCCEEDED = "Succeeded"
RUNNING = "Running"
STOPPED = "Stopped"
SYSTEM = "System"
USER = "User"
MAX_NODES = 1000
PROVIDER = "Microsoft.ContainerService"
POOL_TYPE = f"{PROVIDER}/managedClusters/agentPools"
CLUSTER_TYPE = f"{PROVIDER}/ManagedClusters"

# Properties a PUT may change besides the scaling fields handled by the rules below. Everything
# else the SDK sends back (vmSize, osType, ...) is immutable in AKS, so it is kept as it was.
_MUTABLE_EXTRAS = ("nodeLabels", "nodeTaints", "tags", "upgradeSettings", "orchestratorVersion")


class ArmError(Exception):
    """An ARM error answer: status, `error.code`, `error.message` (shapes of errors.json)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message)


def not_found(message: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", message)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_etag() -> str:
    return str(uuid.uuid4())


def unquote_etag(value: str | None) -> str | None:
    """`"abc"` / `W/"abc"` / `abc` -> `abc` (the SDK quotes it; AKS compares the value)."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


@dataclass
class Operation:
    """A long-running operation, answered at the `Azure-AsyncOperation` URL."""

    id: str
    subscription: str
    location: str
    started: float
    ends: float

    def body(self, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"/subscriptions/{self.subscription}/providers/{PROVIDER}"
            f"/locations/{self.location}/operations/{self.id}",
            "name": self.id,
            "status": SUCCEEDED if now >= self.ends else "InProgress",
            "startTime": iso(self.started),
        }
        if now >= self.ends:
            body["endTime"] = iso(self.ends)
        return body


@dataclass
class Pool:
    name: str
    properties: dict[str, Any]
    # Node count given back on start (AKS remembers what a pool had before it was stopped).
    restore_count: int | None = None
    # When the running operation ends; None with a non-Succeeded state means "forced, sticky".
    settles_at: float | None = None
    operation_started: float | None = None

    @property
    def provisioning_state(self) -> str:
        return str(self.properties.get("provisioningState", SUCCEEDED))

    @property
    def running(self) -> bool:
        return bool(self.properties.get("powerState", {}).get("code", RUNNING) == RUNNING)

    @property
    def etag(self) -> str:
        return str(self.properties["eTag"])

    def settle(self, now: float) -> None:
        if self.settles_at is not None and now >= self.settles_at:
            self.properties["provisioningState"] = SUCCEEDED
            self.settles_at = None
            self.operation_started = None


@dataclass
class Cluster:
    subscription: str
    resource_group: str
    name: str
    location: str
    etag: str
    properties: dict[str, Any]
    pools: dict[str, Pool] = field(default_factory=dict)  # keyed by lower-case name
    # Azure tags as given (key case kept); ARM answers them at the resource's top level.
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        # AKS itself answers with a lower-case "resourcegroups" segment (see the fixtures).
        return (
            f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}"
            f"/providers/{PROVIDER}/managedClusters/{self.name}"
        )

    def pool_body(self, pool: Pool) -> dict[str, Any]:
        return {
            "id": f"{self.id}/agentPools/{pool.name}",
            "name": pool.name,
            "type": POOL_TYPE,
            "properties": copy.deepcopy(pool.properties),
        }

    def body(self) -> dict[str, Any]:
        properties = copy.deepcopy(self.properties)
        properties["agentPoolProfiles"] = [
            {"name": p.name, **copy.deepcopy(p.properties)} for p in self.pools.values()
        ]
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": CLUSTER_TYPE,
            "location": self.location,
            "eTag": self.etag,
        }
        if self.tags:  # ARM leaves `tags` out of an untagged resource
            body["tags"] = dict(self.tags)
        body["properties"] = properties
        return body


def _pool_from_seed(entry: dict[str, Any]) -> Pool:
    properties = copy.deepcopy(entry.get("properties", {}))
    properties.setdefault("eTag", new_etag())
    properties.setdefault("mode", USER)
    properties.setdefault("count", 0)
    properties.setdefault("enableAutoScaling", False)
    properties.setdefault("provisioningState", SUCCEEDED)
    properties.setdefault("powerState", {"code": RUNNING})
    return Pool(name=entry["name"], properties=properties, restore_count=entry.get("restoreCount"))


def check_tags(value: Any, where: str = "'tags'") -> dict[str, str]:
    """Azure tags: an object of string values. Keys are unique case-insensitively, as in Azure."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{where} must be an object of non-empty string keys and string values")
    if len({k.lower() for k in value}) != len(value):
        raise ValueError(f"{where} has keys that differ only in case (tag names are not)")
    return dict(value)


def _cluster_from_seed(subscription: str, entry: dict[str, Any]) -> Cluster:
    properties = copy.deepcopy(entry.get("properties", {}))
    properties.setdefault("provisioningState", SUCCEEDED)
    properties.setdefault("powerState", {"code": RUNNING})
    cluster = Cluster(
        subscription=entry.get("subscriptionId", subscription),
        resource_group=entry["resourceGroup"],
        name=entry["name"],
        location=entry.get("location", "westeurope"),
        etag=entry.get("eTag", new_etag()),
        properties=properties,
        tags=check_tags(entry.get("tags", {}), f"tags of cluster {entry.get('name')!r}"),
    )
    for pool_entry in entry.get("agentPools", []):
        pool = _pool_from_seed(pool_entry)
        cluster.pools[pool.name.lower()] = pool
    return cluster


class AksState:
    """All clusters, pools and operations. Names are matched case-insensitively, like ARM."""

    def __init__(self, seed: dict[str, Any]) -> None:
        subscription = seed.get("subscriptionId", "00000000-0000-0000-0000-000000000000")
        self.clusters: dict[tuple[str, str, str], Cluster] = {}
        for entry in seed.get("clusters", []):
            cluster = _cluster_from_seed(subscription, entry)
            key = (
                cluster.subscription.lower(),
                cluster.resource_group.lower(),
                cluster.name.lower(),
            )
            self.clusters[key] = cluster
        self.operations: dict[str, Operation] = {}

    # --- lookups -------------------------------------------------------------------------------

    def _all_pools(self) -> Iterator[Pool]:
        for cluster in self.clusters.values():
            yield from cluster.pools.values()

    def settle(self, now: float) -> None:
        for pool in self._all_pools():
            pool.settle(now)

    def cluster(self, subscription: str, rg: str, name: str) -> Cluster:
        sub, rg_l = subscription.lower(), rg.lower()
        if not any(k[0] == sub for k in self.clusters):
            raise not_found(f"The subscription '{subscription}' could not be found.")
        if not any(k[:2] == (sub, rg_l) for k in self.clusters):
            raise not_found(f"Resource group '{rg}' could not be found.")
        cluster = self.clusters.get((sub, rg_l, name.lower()))
        if cluster is None:
            raise not_found(
                f"The Resource '{PROVIDER}/managedClusters/{name}' under resource group "
                f"'{rg}' was not found."
            )
        return cluster

    def pool(
        self, subscription: str, rg: str, cluster_name: str, name: str
    ) -> tuple[Cluster, Pool]:
        cluster = self.cluster(subscription, rg, cluster_name)
        pool = cluster.pools.get(name.lower())
        if pool is None:
            raise not_found(
                f"The Resource '{PROVIDER}/managedClusters/{cluster.name}/agentPools/{name}' "
                f"under resource group '{rg}' was not found."
            )
        return cluster, pool

    def find_cluster(self, subscription: str | None, rg: str, name: str) -> Cluster:
        """For the control API: a cluster in `subscription`, or the first `rg/name` match."""
        if subscription is not None:
            return self.cluster(subscription, rg, name)
        for (_, rg_l, c_l), cluster in self.clusters.items():
            if (rg_l, c_l) == (rg.lower(), name.lower()):
                return cluster
        raise not_found(f"No cluster {rg}/{name} in the emulator.")

    def find_pool(self, rg: str, cluster_name: str, name: str) -> Pool:
        """For the control API, which has no subscription in its paths: the first match."""
        for (_, rg_l, c_l), cluster in self.clusters.items():
            if (rg_l, c_l) == (rg.lower(), cluster_name.lower()) and name.lower() in cluster.pools:
                return cluster.pools[name.lower()]
        raise not_found(f"No agent pool {rg}/{cluster_name}/{name} in the emulator.")

    # --- reads ---------------------------------------------------------------------------------

    def get_cluster(self, subscription: str, rg: str, name: str, now: float) -> dict[str, Any]:
        cluster = self.cluster(subscription, rg, name)
        for pool in cluster.pools.values():
            pool.settle(now)
        return cluster.body()

    def list_clusters(
        self, subscription: str, rg: str | None, now: float, skip: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the clusters of a subscription (or of one of its resource groups).

        Returns the page and the offset of the next one (None on the last page). Seed order.
        """
        sub = subscription.lower()
        if not any(k[0] == sub for k in self.clusters):
            raise not_found(f"The subscription '{subscription}' could not be found.")
        if rg is not None and not any(k[:2] == (sub, rg.lower()) for k in self.clusters):
            raise not_found(f"Resource group '{rg}' could not be found.")
        matching = [
            cluster
            for key, cluster in self.clusters.items()
            if key[0] == sub and (rg is None or key[1] == rg.lower())
        ]
        page = matching[skip : skip + page_size]
        for cluster in page:
            for pool in cluster.pools.values():
                pool.settle(now)
        more = skip + page_size < len(matching)
        return [cluster.body() for cluster in page], (skip + page_size if more else None)

    def list_pools(self, subscription: str, rg: str, name: str, now: float) -> dict[str, Any]:
        cluster = self.cluster(subscription, rg, name)
        for pool in cluster.pools.values():
            pool.settle(now)
        return {"value": [cluster.pool_body(p) for p in cluster.pools.values()]}

    def get_pool(
        self, subscription: str, rg: str, cluster_name: str, name: str, now: float
    ) -> dict[str, Any]:
        cluster, pool = self.pool(subscription, rg, cluster_name, name)
        pool.settle(now)
        return cluster.pool_body(pool)

    def operation(self, subscription: str, op_id: str, now: float) -> dict[str, Any]:
        op = self.operations.get(op_id)
        if op is None or op.subscription.lower() != subscription.lower():
            raise not_found(f"Operation '{op_id}' was not found.")
        return op.body(now)

    def snapshot(self, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        self.settle(now)
        return {
            f"{c.resource_group}/{c.name}": {
                p.name: copy.deepcopy(p.properties) for p in c.pools.values()
            }
            for c in self.clusters.values()
        }

    def cluster_summaries(self) -> list[dict[str, Any]]:
        """For the control API: every cluster's place and tags, in seed order."""
        return [
            {
                "subscriptionId": c.subscription,
                "resourceGroup": c.resource_group,
                "name": c.name,
                "tags": dict(c.tags),
            }
            for c in self.clusters.values()
        ]

    # --- writes --------------------------------------------------------------------------------

    def set_cluster_tags(
        self, subscription: str | None, rg: str, name: str, tags: Any
    ) -> dict[str, str]:
        """Replace a cluster's tags (like a tags update on the cluster: its eTag changes)."""
        cluster = self.find_cluster(subscription, rg, name)
        cluster.tags = check_tags(tags)
        cluster.etag = new_etag()
        return dict(cluster.tags)

    def put_pool(
        self,
        subscription: str,
        rg: str,
        cluster_name: str,
        name: str,
        body: Any,
        if_match: str | None,
        now: float,
        operation_seconds: float,
    ) -> tuple[dict[str, Any], Operation | None]:
        """Apply a PUT; returns the pool body and the operation it started (None: no-op)."""
        cluster, pool = self.pool(subscription, rg, cluster_name, name)
        pool.settle(now)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise invalid("The request body must be an agent pool with a 'properties' object.")
        update = plan_update(pool, body["properties"], if_match)
        if update is None:
            return cluster.pool_body(pool), None
        new_properties, state, restore_count = update
        new_properties["eTag"] = new_etag()
        new_properties["provisioningState"] = state
        pool.properties = new_properties
        pool.restore_count = restore_count
        pool.settles_at = now + operation_seconds
        pool.operation_started = now
        op = Operation(
            id=str(uuid.uuid4()),
            subscription=cluster.subscription,
            location=cluster.location,
            started=now,
            ends=now + operation_seconds,
        )
        self.operations[op.id] = op
        return cluster.pool_body(pool), op

    def force_pool(
        self,
        rg: str,
        cluster_name: str,
        name: str,
        properties: dict[str, Any],
        now: float,
        settle_after: float | None = None,
    ) -> dict[str, Any]:
        """Overwrite properties without any rule (tests set up odd states with it).

        The eTag changes like for any write unless `eTag` is given. A forced non-Succeeded
        provisioningState sticks until forced back, unless `settle_after` seconds are given.
        """
        pool = self.find_pool(rg, cluster_name, name)
        pool.settle(now)
        was_running, count_before = pool.running, int(pool.properties.get("count") or 0)
        properties = copy.deepcopy(properties)
        restore = _as_int(properties.pop("restoreCount", None), "restoreCount")
        pool.properties.update(properties)
        if "eTag" not in properties:
            pool.properties["eTag"] = new_etag()
        if was_running and not pool.running:
            # Forced stop: report 0 nodes and remember what to give back on start.
            pool.restore_count = restore if restore is not None else count_before
            if "count" not in properties:
                pool.properties["count"] = 0
        elif restore is not None:
            pool.restore_count = restore
        if "provisioningState" in properties:
            busy = properties["provisioningState"] != SUCCEEDED
            pool.settles_at = now + settle_after if busy and settle_after is not None else None
            pool.operation_started = now if busy else None
        return copy.deepcopy(pool.properties)


# --- AKS rules ---------------------------------------------------------------------------------


def _as_int(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"The value of '{key}' must be an integer.")
    return value


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def plan_update(
    pool: Pool, requested: dict[str, Any], if_match: str | None
) -> tuple[dict[str, Any], str, int | None] | None:
    """Check a PUT against the AKS rules, in the order AKS reports them.

    Returns (new properties, provisioningState, restore count), or None when the PUT changes
    nothing (stop of a stopped pool, start of a running one, the same values again): AKS answers
    those with 200 and starts no operation. Raises ArmError for refused writes.
    """
    current = pool.properties
    name = pool.name

    # 1. Optimistic concurrency. Absent If-Match is accepted (the real API does too).
    expected = unquote_etag(if_match)
    if expected is not None and expected != "*" and expected != pool.etag:
        raise ArmError(
            412,
            "PreconditionFailed",
            "The eTag in the If-Match header does not match the current eTag of the agent pool.",
        )

    # 2. One operation at a time per pool.
    if pool.provisioning_state != SUCCEEDED:
        started = iso(pool.operation_started) if pool.operation_started else "an earlier time"
        raise ArmError(
            409,
            "OperationNotAllowed",
            "Operation is not allowed because there's an in progress scale agent pool operation "
            f"which started at {started}. Please wait for it to finish before starting a new "
            "operation.",
        )

    power = requested.get("powerState")
    code = power.get("code") if isinstance(power, dict) else None
    if power is not None and code not in (RUNNING, STOPPED):
        raise invalid("powerState.code must be 'Running' or 'Stopped'.")
    was_running = pool.running
    want_running = was_running if code is None else code == RUNNING
    stopping = was_running and not want_running
    starting = not was_running and want_running

    mode = requested.get("mode", current.get("mode", USER))
    if mode not in (SYSTEM, USER):
        raise invalid("mode must be 'System' or 'User'.")
    system = mode == SYSTEM
    autoscale = requested.get("enableAutoScaling", current.get("enableAutoScaling", False))
    if not isinstance(autoscale, bool):
        raise invalid("The value of 'enableAutoScaling' must be a boolean.")
    min_count = max_count = None
    if autoscale:
        min_count = _as_int(requested.get("minCount", current.get("minCount")), "minCount")
        max_count = _as_int(requested.get("maxCount", current.get("maxCount")), "maxCount")
        if min_count is None or max_count is None:
            raise invalid("minCount and maxCount are required when enableAutoScaling is true.")
    current_count = int(current.get("count") or 0)
    count = _as_int(requested.get("count"), "count")
    count_changed = count is not None and count != current_count
    bounds_changed = autoscale != bool(current.get("enableAutoScaling", False)) or (
        autoscale and (min_count, max_count) != (current.get("minCount"), current.get("maxCount"))
    )

    # 3. System pools keep at least one running node.
    if system:
        if not want_running:
            raise invalid(
                f"System agent pool '{name}' cannot be stopped; a cluster needs at least one "
                "running system node pool."
            )
        # The resulting count counts: a User pool with 0 nodes cannot become System either.
        if (count if count is not None else current_count) < 1 and not starting:
            raise invalid(f"System agent pool '{name}' must have at least 1 node.")
        if min_count is not None and min_count < 1:
            raise invalid(f"System agent pool '{name}' needs minCount of at least 1.")

    # 4. Ranges.
    if count is not None and not 0 <= count <= MAX_NODES:
        raise invalid(f"Node count must be between 0 and {MAX_NODES}.")
    if min_count is not None and max_count is not None:
        low = 1 if system else 0
        if not (low <= min_count <= MAX_NODES and low <= max_count <= MAX_NODES):
            raise invalid(f"minCount and maxCount must be between {low} and {MAX_NODES}.")
        if min_count > max_count:
            raise invalid("minCount must be less than or equal to maxCount.")
        if count is not None and count_changed and not min_count <= count <= max_count:
            raise invalid(
                "Node count must be between minCount and maxCount when the autoscaler is enabled."
            )

    # 5. A stopped pool has to be started before it can be scaled.
    if not was_running and not starting and (count_changed or bounds_changed):
        raise invalid(f"Agent pool '{name}' is stopped; start it before scaling.")

    # 7. Spot pools can never hold the system role.
    priority = requested.get("scaleSetPriority", current.get("scaleSetPriority"))
    if system and priority == "Spot":
        raise invalid(f"Spot agent pool '{name}' cannot be a System pool.")

    # 6. Work out the new state.
    restore_count = pool.restore_count
    if stopping:
        # The requested count, if any, is ignored: a stopped pool reports 0 and restores what it
        # had. Autoscaler settings are kept and resume on start.
        restore_count, target, state = current_count, 0, "Stopping"
    elif starting:
        target = count if count_changed and count is not None else max(1, restore_count or 0)
        if min_count is not None and max_count is not None:
            target = _clamp(target, min_count, max_count)
        restore_count, state = None, "Starting"
    elif not was_running:
        target, state = current_count, "Updating"
    else:
        target = count if count is not None else current_count
        if min_count is not None and max_count is not None and not count_changed:
            # New bounds that exclude the current count: the autoscaler moves it inside.
            target = _clamp(current_count, min_count, max_count)
        state = "Scaling" if target != current_count else "Updating"

    new = copy.deepcopy(current)
    new["mode"] = mode
    new["count"] = target
    new["enableAutoScaling"] = autoscale
    if autoscale:
        new["minCount"], new["maxCount"] = min_count, max_count
    else:
        new.pop("minCount", None)
        new.pop("maxCount", None)
    new["powerState"] = {"code": RUNNING if want_running else STOPPED}
    for key in _MUTABLE_EXTRAS:
        if key in requested:
            new[key] = copy.deepcopy(requested[key])

    if new == current:
        return None
    return new, state, restore_count
