"""In-memory ports for service-layer tests: no processes, milliseconds per test.

`Harness` wires them exactly as scaler/bootstrap.py wires the real adapters, and plays the
queues: `send(intent)` runs the intent trigger, `settle()` runs every reconcile request whose
delay has passed, moving the fake clock forward to the next one.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scaler.domain.clusters import ClusterRef
from scaler.domain.planner import Action, PoolPlan
from scaler.domain.pools import Autoscale, ManualCount, PoolState
from scaler.domain.tags import ClusterSelector
from scaler.service_layer.intake import Intake
from scaler.service_layer.ports import (
    ClusterListing,
    ClusterRecords,
    GatewayError,
    Marker,
    MemoRecord,
    SourceRecord,
    StaleEtag,
    Status,
    Write,
)
from scaler.service_layer.reconcile import Reconciler
from scaler.service_layer.schedule_tick import ScheduleTick
from scaler.service_layer.schedules import Schedules
from scaler.settings import Settings

SUB = "00000000-0000-0000-0000-000000000000"
CLUSTER = ClusterRef(SUB, "rg-demo", "aks-demo")


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pool(
    name: str,
    count: int = 2,
    *,
    mode: str = "User",
    autoscale: tuple[int, int] | None = None,
    power: str = "Running",
    state: str = "Succeeded",
) -> PoolState:
    return PoolState(
        name=name,
        mode=mode,
        count=count,
        autoscale=autoscale is not None,
        min_count=autoscale[0] if autoscale else None,
        max_count=autoscale[1] if autoscale else None,
        power=power,
        provisioning_state=state,
        etag="1",
    )


class FakeClusters:
    """Resource Manager: pools per cluster; a write starts an operation that lasts
    `operation_seconds` on the fake clock (the pool is busy meanwhile)."""

    def __init__(self, clock: FakeClock, operation_seconds: float = 60) -> None:
        self.clock = clock
        self.operation_seconds = operation_seconds
        self.pools: dict[ClusterRef, dict[str, PoolState]] = {}
        self.busy_until: dict[tuple[ClusterRef, str], datetime] = {}
        self.reads = 0
        self.writes: list[tuple[str, PoolPlan]] = []
        self.fail_next: list[GatewayError] = []  # raised by the next writes, in order
        self.fail_reads: list[GatewayError] = []
        self.meddle: list[str] = []  # pools someone else writes right after our next read
        self.cluster_tags: dict[ClusterRef, dict[str, str]] = {}
        self.cluster_lists: list[str] = []  # subscriptions listed (LIST managedClusters)
        self.fail_lists: list[GatewayError] = []

    def add(self, cluster: ClusterRef, *pools: PoolState) -> None:
        self.pools.setdefault(cluster, {}).update({p.name: p for p in pools})

    def state(self, name: str, cluster: ClusterRef = CLUSTER) -> PoolState:
        self._settle(cluster)
        return self.pools[cluster][name]

    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        self.reads += 1
        if self.fail_reads:
            raise self.fail_reads.pop(0)
        if cluster not in self.pools:
            raise GatewayError("ResourceNotFound", "no such cluster", transient=False)
        self._settle(cluster)
        listed = list(self.pools[cluster].values())
        for name in self.meddle:
            old = self.pools[cluster][name]
            self.pools[cluster][name] = replace(old, etag=str(int(old.etag or 0) + 1))
        self.meddle.clear()
        return listed

    def list_clusters(self, subscription_id: str) -> list[ClusterListing]:
        self.cluster_lists.append(subscription_id)
        if self.fail_lists:
            raise self.fail_lists.pop(0)
        listings = []
        for cluster in self.pools:
            if cluster.subscription_id == subscription_id:
                self._settle(cluster)
                pools = tuple(self.pools[cluster].values())
                listings.append(ClusterListing(cluster, self.cluster_tags.get(cluster, {}), pools))
        return listings

    def snapshot(self, pools: Sequence[PoolState]) -> list[dict[str, Any]]:
        return [{**asdict(p), "tags": dict(p.tags), "handle": None} for p in pools]

    def restore(self, snapshot: object) -> list[PoolState]:
        if not isinstance(snapshot, list):
            raise ValueError("not a list of pools")
        try:
            return [PoolState(**raw) for raw in snapshot]
        except TypeError as error:
            raise ValueError(str(error)) from None

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self._settle(cluster)
        current = self.pools[cluster][plan.name]
        assert plan.before is not None
        if plan.before.etag != current.etag:
            raise StaleEtag("the pool changed")
        if current.is_busy:
            raise GatewayError("OperationNotAllowed", "busy", transient=True)
        self.writes.append((plan.name, plan))
        after = _applied(current, plan)
        after = replace(after, provisioning_state="Updating", etag=str(int(current.etag or 0) + 1))
        self.pools[cluster][plan.name] = after
        done = self.clock() + timedelta(seconds=self.operation_seconds)
        self.busy_until[(cluster, plan.name)] = done
        return after

    def _settle(self, cluster: ClusterRef) -> None:
        for (where, name), until in list(self.busy_until.items()):
            if where == cluster and self.clock() >= until:
                old = self.pools[cluster][name]
                self.pools[cluster][name] = replace(old, provisioning_state="Succeeded")
                del self.busy_until[(where, name)]


def _applied(pool: PoolState, plan: PoolPlan) -> PoolState:
    if plan.action is Action.SCALE:
        return replace(pool, count=plan.target_count or 0)
    if plan.action is Action.AUTOSCALE:
        request = plan.requested
        assert isinstance(request, Autoscale)
        return replace(
            pool,
            autoscale=True,
            min_count=request.min_count,
            max_count=request.max_count,
            count=plan.target_count or 0,
        )
    if plan.action is Action.STOP:
        return replace(pool, power="Stopped")
    if plan.action is Action.START:
        return replace(pool, power="Running")
    return pool


class FakeStore:
    """The desired-state store with eTags, counting round trips."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Write] = {}
        self.ids: dict[str, str] = {}
        self.trips = 0
        self._versions = itertools.count(1)

    def load(self, cluster: ClusterRef) -> ClusterRecords:
        self.trips += 1
        records = ClusterRecords()
        marker = Marker()
        for (where, _row_key), row in self.rows.items():
            if where != _key(cluster):
                continue
            if isinstance(row, SourceRecord):
                if row.status is Status.FINAL and not row.active and row.published:
                    continue  # a tombstone: the real store's query leaves these out too
                records.sources[row.source.id] = row
            elif isinstance(row, MemoRecord):
                records.memos[row.pool] = row
            else:
                marker = row
        return ClusterRecords(records.sources, records.memos, marker)

    def record(self, cluster: ClusterRef, record: SourceRecord) -> SourceRecord | None:
        self.trips += 1
        key = (_key(cluster), f"source|{record.source.id}")
        if key in self.rows:
            stored = self.rows[key]
            assert isinstance(stored, SourceRecord)
            return stored
        self.rows[key] = replace(record, version=str(next(self._versions)))
        return None

    def commit(self, cluster: ClusterRef, writes: Sequence[Write]) -> bool:
        self.trips += (len(writes) + 99) // 100
        keyed = [((_key(cluster), _row(w)), w) for w in writes]
        for key, write in keyed:
            stored = self.rows.get(key)
            if write.version is None and stored is not None and not isinstance(write, Marker):
                return False
            if write.version is not None and (stored is None or stored.version != write.version):
                return False
        for key, write in keyed:
            self.rows[key] = replace(write, version=str(next(self._versions)))
        return True

    def mark_published(self, cluster: ClusterRef, intent_ids: Sequence[str]) -> None:
        self.trips += (len(intent_ids) + 99) // 100
        for intent_id in intent_ids:
            key = (_key(cluster), f"source|{intent_id}")
            row = self.rows[key]
            assert isinstance(row, SourceRecord)
            self.rows[key] = replace(row, published=True, version=str(next(self._versions)))

    def claim_ids(self, cluster: ClusterRef, ids: Sequence[str]) -> Mapping[str, str]:
        self.trips += 1
        taken = {}
        for intent_id in ids:
            owner = self.ids.setdefault(intent_id, _key(cluster))
            if owner != _key(cluster):
                taken[intent_id] = owner
        return taken

    def source(self, cluster: ClusterRef, intent_id: str) -> SourceRecord | None:
        row = self.rows.get((_key(cluster), f"source|{intent_id}"))
        return row if isinstance(row, SourceRecord) else None


def _key(cluster: ClusterRef) -> str:
    return f"{cluster.subscription_id}|{cluster.resource_group}|{cluster.name}".lower()


def _row(write: Write) -> str:
    if isinstance(write, SourceRecord):
        return f"source|{write.source.id}"
    if isinstance(write, MemoRecord):
        return f"pool|{write.pool}"
    return "cluster"


@dataclass
class FakeMessages:
    clock: FakeClock
    published: list[dict[str, Any]] = field(default_factory=list)
    reconciles: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    parked: list[dict[str, Any]] = field(default_factory=list)
    retried: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    trips: int = 0

    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        self.trips += 1
        json.dumps(outcome)  # must be serialisable, as the queue adapter needs
        self.published.append(copy.deepcopy(outcome))

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        self.trips += 1
        json.dumps(request)
        self.reconciles.append((self.clock() + timedelta(seconds=delay_seconds), request))

    def request_reconciles(self, requests: Sequence[dict[str, Any]]) -> None:
        for request in requests:
            self.request_reconcile(request, 0)

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        self.trips += 1
        self.retried.append((self.clock() + timedelta(seconds=delay_seconds), message))

    def park(self, message: dict[str, Any]) -> None:
        self.trips += 1
        self.parked.append(message)

    def finals(self, intent_id: str) -> list[dict[str, Any]]:
        return [o for o in self.published if o["intent_id"] == intent_id and o["final"]]


class FakeDirectory:
    """Resource Graph: clusters and their tags; counts queries."""

    def __init__(self, clusters: FakeClusters) -> None:
        self.clusters = clusters
        self.queries: list[tuple[list[str], tuple[str, ...] | None]] = []
        self.fail_next: list[GatewayError] = []

    def find_tagged(
        self, selectors: Sequence[ClusterSelector], subscriptions: Sequence[str] | None
    ) -> list[ClusterListing]:
        self.queries.append(
            ([s.text for s in selectors], tuple(subscriptions) if subscriptions else None)
        )
        if self.fail_next:
            raise self.fail_next.pop(0)
        wanted = {s.lower() for s in subscriptions} if subscriptions else None
        return [
            ClusterListing(cluster, tags)
            for cluster, tags in self.clusters.cluster_tags.items()
            if (wanted is None or cluster.subscription_id.lower() in wanted)
            and any(
                k.lower() == s.name.lower() and v.lower() == s.value.lower()
                for s in selectors
                for k, v in tags.items()
            )
        ]


class FakeSchedule:
    def __init__(self, text: str = "") -> None:
        self.text = text

    def read(self) -> tuple[str, str]:
        return self.text, "schedule.toml"


def settings(**overrides: Any) -> Settings:
    env = {
        "AZURE_SUBSCRIPTION_ID": SUB,
        "SCALER_RESOURCE_GROUP": "rg-demo",
        "SCALER_CLUSTER": "aks-demo",
        "SCALER_COALESCE_SECONDS": "2",
        "SCALER_OPERATION_SECONDS": "60",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


class Harness:
    def __init__(self, schedule: str = "", **setting_overrides: Any) -> None:
        self.clock = FakeClock()
        self.settings = settings(**setting_overrides)
        self.clusters = FakeClusters(self.clock, self.settings.operation_seconds)
        self.store = FakeStore()
        self.messages = FakeMessages(self.clock)
        self.schedule = FakeSchedule(schedule)
        schedules = Schedules(self.schedule if schedule else None, self.settings.max_count, SUB)
        self.reconciler = Reconciler(
            self.settings, self.clusters, self.store, self.messages, schedules, self.clock
        )
        self.intake = Intake(self.settings, self.store, self.messages, self.reconciler, self.clock)
        self.directory = FakeDirectory(self.clusters)
        self.timer = ScheduleTick(
            self.settings, schedules, self.clusters, self.messages, self.clock, self.directory
        )
        self._message_ids = itertools.count(1)

    def send(self, intent: dict[str, Any] | str, message_id: str | None = None) -> str:
        body = intent if isinstance(intent, str) else json.dumps(intent)
        message_id = message_id or f"m-{next(self._message_ids)}"
        self.intake.handle_message(body, message_id, self.clock())
        return message_id

    def settle(self, limit_seconds: float = 3600) -> None:
        """Run reconcile requests as the queue would deliver them, moving the clock to each."""
        deadline = self.clock() + timedelta(seconds=limit_seconds)
        while self.messages.reconciles:
            self.messages.reconciles.sort(key=lambda pair: pair[0])
            when, request = self.messages.reconciles.pop(0)
            if when > deadline:
                self.messages.reconciles.insert(0, (when, request))
                return
            self.clock.now = max(self.clock.now, when)
            self.reconciler.handle_message(json.dumps(request))

    def tick(self) -> list[dict[str, Any]]:
        """The timer, then the reconciles it queued (and any already due), as the host would
        run them: what was published meanwhile."""
        before = len(self.messages.published)
        self.timer.run()
        self.settle(limit_seconds=0)
        return self.messages.published[before:]

    def outcome(self, intent_id: str) -> dict[str, Any]:
        finals = self.messages.finals(intent_id)
        assert len(finals) == 1, self.messages.published
        return finals[0]


def count(n: int) -> ManualCount:
    return ManualCount(n)
