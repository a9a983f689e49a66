"""What each pool of a cluster is, what the scaler wants for it, and why. Reads only.

    StatusReader.known_clusters() → [ClusterRef]
    StatusReader.cluster(cluster) → ClusterStatus

One cluster costs one ARM read (the pools), one partition read of the desired-state store and
the schedule: `Reconciler.preview` resolves every pool from them, exactly as a reconcile would
now, and this use case keeps what that read saw (every pool, not only those some source asks
for; the holders' own words for holds and leases) instead of reading again. It is built with a
message gateway and a store whose writes raise, so it cannot change anything by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.outcomes import PoolOutcome, Problem
from scaler.domain.planner import PoolPlan
from scaler.domain.pools import PoolState
from scaler.domain.resolution import Why
from scaler.domain.schedule import ClusterSchedule, Schedule, ScheduledState
from scaler.service_layer.intake import cluster_refusal
from scaler.service_layer.ports import (
    Clock,
    ClusterGateway,
    ClusterListing,
    ClusterRecords,
    DesiredStateStore,
    SourceRecord,
    Write,
)
from scaler.service_layer.reconcile import Reconciler
from scaler.service_layer.schedules import Schedules
from scaler.settings import Settings

NO_OPINION = Why("none", "no source has an opinion")


@dataclass(frozen=True)
class LeaseStatus:
    id: str  # the lease id, as its holder sent it
    count: int
    until: datetime
    reason: str | None = None  # the holder's own words (the intent's `reason`)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "count": self.count,
            "until": self.until.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ScheduleStatus:
    """What the schedule says for the pool now (whoever decides), and its next transition."""

    state: object  # JSON of the pool form, "keep", or None (no opinion)
    reason: str
    next_transition: datetime | None
    next_state: object = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "next_transition": _iso(self.next_transition),
            "next_state": self.next_state,
        }


@dataclass(frozen=True)
class PoolStatus:
    pool: str
    current: PoolState | None  # None: the pool is asked for but does not exist
    desired: dict[str, object] | None  # None: nobody has an opinion; the pool is left alone
    why: Why
    reason: str | None = None  # the deciding intent's own words
    leases: tuple[LeaseStatus, ...] = ()
    outcome: PoolOutcome | None = None  # what a reconcile would do now (action, result)
    schedule: ScheduleStatus | None = None

    @property
    def operation_in_progress(self) -> bool:
        return self.current is not None and self.current.is_busy

    def to_json(self) -> dict[str, Any]:
        why: dict[str, Any] = {
            "source": self.why.source,
            "detail": self.why.detail,
            "id": self.why.id,
            "until": _iso(self.why.until),
            "reason": self.reason,
            "leases": [lease.to_json() for lease in self.leases],
        }
        outcome = self.outcome
        return {
            "pool": self.pool,
            "current": self.current.summary() if self.current else None,
            "operation_in_progress": self.operation_in_progress,
            "desired": self.desired,
            "why": why,
            "action": outcome.action.value if outcome else None,
            "result": outcome.result.value if outcome else None,
            "error": outcome.problem.to_json() if outcome and outcome.problem else None,
            "schedule": self.schedule.to_json() if self.schedule else None,
        }


@dataclass(frozen=True)
class ClusterStatus:
    cluster: ClusterRef
    at: datetime
    pools: tuple[PoolStatus, ...] = ()
    schedule_name: str | None = None  # None: the schedule does not name this cluster
    problem: Problem | None = None  # refused (not allowed) or unreadable: no pools
    retrying: bool = False  # the problem is transient
    # What the pools follow: the file's entry once tagged pools have their profiles (savings).
    schedule: ClusterSchedule | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster.short_name,
            "id": self.cluster.resource_id,
            "at": self.at.isoformat(),
            "schedule": self.schedule_name,
            "error": self.problem.to_json() if self.problem else None,
            "pools": [pool.to_json() for pool in self.pools],
        }


class StatusReader:
    def __init__(
        self,
        settings: Settings,
        clusters: ClusterGateway,
        store: DesiredStateStore,
        schedules: Schedules,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._schedules = schedules
        self._clock = clock
        self._pools = _SeenPools(clusters)
        self._records = _SeenRecords(store)
        self._reconciler = Reconciler(
            settings, self._pools, self._records, _NoMessages(), schedules, clock
        )

    def known_clusters(self) -> list[ClusterRef]:
        """Every cluster the app knows: the default cluster, the schedule's clusters, and the
        allowlist's entries that name one cluster (no `*`). Schedule clusters the allowlist
        refuses are listed too (`cluster()` reports the refusal without reading them)."""
        found: dict[tuple[str, str, str], ClusterRef] = {}

        def add(cluster: ClusterRef) -> None:
            found.setdefault(_key(cluster), cluster)

        if self._settings.default_cluster is not None:
            add(self._settings.default_cluster)
        try:
            whole: Schedule | None = self._schedules.load(self._clock())[0]
        except InvalidInput:  # an unusable schedule names no cluster (the timer reports it)
            whole = None
        for entry in whole.clusters if whole is not None else ():
            add(self._schedules.cluster_ref(entry))
        for allowed in self._settings.allowed_clusters:
            parts = allowed.split("/")
            if "*" in parts:
                continue
            if len(parts) == 2:
                if not self._settings.subscription_id:
                    continue
                parts = [self._settings.subscription_id, *parts]
            add(ClusterRef(*parts))
        return list(found.values())

    def cluster(self, cluster: ClusterRef) -> ClusterStatus:
        """The status of every pool of `cluster`: one ARM read. A cluster outside
        SCALER_ALLOWED_CLUSTERS is refused before anything is read."""
        refusal = cluster_refusal(self._settings, cluster)
        if refusal is not None:
            return ClusterStatus(cluster, self._clock(), problem=refusal)
        report = self._reconciler.preview(cluster)
        now = self._clock()
        found, schedule_name = self._schedules.for_cluster(cluster, now)
        schedule = found if isinstance(found, ClusterSchedule) else None
        name = schedule_name if schedule is not None else None
        if report.problem is not None:
            return ClusterStatus(
                cluster, now, schedule_name=name, problem=report.problem, retrying=report.retrying
            )
        current = self._pools.seen.get(_key(cluster), [])
        # Pools tagged with a profile follow it, from the same read (no request of its own).
        rules = self._settings.tag_rules
        schedule = self._schedules.with_tag_profiles(cluster, schedule, current, rules, now)
        name = schedule_name if schedule is not None else None
        records = self._records.seen.get(_key(cluster), ClusterRecords())
        names = [pool.name for pool in current]
        names += [n for n in report.resolutions if n not in names]
        by_name = {pool.name: pool for pool in current}
        pools = []
        for pool in names:
            resolution = report.resolutions.get(pool)
            why = resolution.why if resolution is not None else NO_OPINION
            desired = resolution.request if resolution is not None else None
            pools.append(
                PoolStatus(
                    pool,
                    by_name.get(pool),
                    desired.to_json() if desired is not None else None,
                    why,
                    reason=_reason(records, why.id),
                    leases=tuple(
                        LeaseStatus(s.id, s.count, s.until, _reason(records, s.id))
                        for s in why.leases
                    ),
                    outcome=report.pools.get(pool),
                    schedule=_schedule_status(schedule, pool, now),
                )
            )
        return ClusterStatus(cluster, now, tuple(pools), schedule_name=name, schedule=schedule)

    def named_states(self) -> dict[str, ScheduledState]:
        """The schedule's `[states]` (for `--baseline STATE`); none when it is unusable."""
        try:
            return dict(self._schedules.load(self._clock())[0].states)
        except InvalidInput:
            return {}


def _schedule_status(
    schedule: ClusterSchedule | None, pool: str, now: datetime
) -> ScheduleStatus | None:
    if schedule is None or pool not in schedule.pool_names:
        return None
    decision = schedule.decide(now, pool)
    after = schedule.next_transition(pool, now)
    next_state = schedule.decide(after, pool).state if after is not None else None
    return ScheduleStatus(_state(decision.state), decision.reason, after, _state(next_state))


def _state(state: object) -> object:
    to_json = getattr(state, "to_json", None)
    return to_json() if callable(to_json) else state


def _reason(records: ClusterRecords, intent_id: str | None) -> str | None:
    record = records.sources.get(intent_id) if intent_id else None
    return record.source.reason if record is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _key(cluster: ClusterRef) -> tuple[str, str, str]:
    return (
        cluster.subscription_id.lower(),
        cluster.resource_group.lower(),
        cluster.name.lower(),
    )


class _SeenPools:
    """The cluster gateway, keeping what each read saw; writes are refused."""

    def __init__(self, clusters: ClusterGateway) -> None:
        self._clusters = clusters
        self.seen: dict[tuple[str, str, str], list[PoolState]] = {}

    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        pools = self._clusters.list_pools(cluster)
        self.seen[_key(cluster)] = pools
        return pools

    def list_clusters(self, subscription_id: str) -> list[ClusterListing]:
        raise AssertionError("status reads one cluster at a time")

    def snapshot(self, pools: Sequence[PoolState]) -> list[dict[str, Any]]:
        return self._clusters.snapshot(pools)

    def restore(self, snapshot: object) -> list[PoolState]:
        return self._clusters.restore(snapshot)

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        raise AssertionError("status reads only")


class _SeenRecords:
    """The desired-state store, keeping what each load saw; writes are refused."""

    def __init__(self, store: DesiredStateStore) -> None:
        self._store = store
        self.seen: dict[tuple[str, str, str], ClusterRecords] = {}

    def load(self, cluster: ClusterRef) -> ClusterRecords:
        records = self._store.load(cluster)
        self.seen[_key(cluster)] = records
        return records

    def source(self, cluster: ClusterRef, intent_id: str) -> SourceRecord | None:
        return self._store.source(cluster, intent_id)

    def record(self, cluster: ClusterRef, record: SourceRecord) -> SourceRecord | None:
        raise AssertionError("status reads only")

    def commit(self, cluster: ClusterRef, writes: Sequence[Write]) -> bool:
        raise AssertionError("status reads only")

    def mark_published(self, cluster: ClusterRef, intent_ids: Sequence[str]) -> None:
        raise AssertionError("status reads only")

    def claim_ids(self, cluster: ClusterRef, ids: Sequence[str]) -> Mapping[str, str]:
        raise AssertionError("status reads only")


class _NoMessages:
    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        raise AssertionError("status reads only")

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        raise AssertionError("status reads only")

    def request_reconciles(self, requests: Sequence[dict[str, Any]]) -> None:
        raise AssertionError("status reads only")

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        raise AssertionError("status reads only")

    def park(self, message: dict[str, Any]) -> None:
        raise AssertionError("status reads only")
