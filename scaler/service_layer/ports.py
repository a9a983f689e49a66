"""What the use cases need from the outside world, and the records they keep.

The adapters in `scaler/adapters/` implement these against Azure; `tests/fakes.py` implements
them in memory so the service layer is tested in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

from scaler.domain.clusters import ClusterRef
from scaler.domain.events import Event
from scaler.domain.planner import PoolPlan
from scaler.domain.pools import PoolState
from scaler.domain.resolution import PoolMemo
from scaler.domain.sources import Source
from scaler.domain.tags import ClusterSelector

Clock: TypeAlias = Callable[[], datetime]


class GatewayError(Exception):
    """Resource Manager (or the token service) said no. `transient` errors are retried later;
    `throttled` ones (a 429, or the app's own pacing refusing to send) are expected at fleet
    scale: counted in the outcome, retried after `retry_after`, never spending the retry
    budget."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        retry_after: int | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.throttled = throttled


class StaleEtag(GatewayError):
    """412: the pool changed since it was read. Re-read and re-plan."""

    def __init__(self, message: str) -> None:
        super().__init__("PreconditionFailed", message, transient=True)


@dataclass(frozen=True)
class ClusterListing:
    """A cluster as a listing shows it: its Azure tags and (from LIST managedClusters) its
    pools, each with its eTag; Resource Graph gives no pools."""

    cluster: ClusterRef
    tags: Mapping[str, str] = field(default_factory=dict)
    pools: tuple[PoolState, ...] = ()


class ClusterGateway(Protocol):
    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        """One read: every agent pool of the cluster, with its eTag."""
        ...

    def list_clusters(self, subscription_id: str) -> list[ClusterListing]:
        """One paged LIST managedClusters: every cluster of the subscription with its pools
        (a fleet's reads: pages of the list, not one read per cluster)."""
        ...

    def snapshot(self, pools: Sequence[PoolState]) -> list[dict[str, Any]]:
        """Pools as read, as JSON a reconcile message can carry (`restore` gives them back,
        able to be written with If-Match like pools from `list_pools`)."""
        ...

    def restore(self, snapshot: object) -> list[PoolState]:
        """The pools of a `snapshot`; ValueError when it is not one."""
        ...

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        """One write: start the change with If-Match on the pool's eTag; do not wait for it."""
        ...


class ClusterDirectory(Protocol):
    """Azure Resource Graph: which clusters carry a tag, across subscriptions."""

    def find_tagged(
        self, selectors: Sequence[ClusterSelector], subscriptions: Sequence[str] | None
    ) -> list[ClusterListing]:
        """One paged query: the clusters any selector matches (with their tags), in
        `subscriptions` (None: every subscription the identity can read)."""
        ...


class MessageGateway(Protocol):
    def publish_outcome(self, outcome: dict[str, Any]) -> None: ...

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        """Queue a reconcile of one cluster, invisible for `delay_seconds`."""
        ...

    def request_reconciles(self, requests: Sequence[dict[str, Any]]) -> None:
        """Queue reconciles of many clusters at once, visible now (a tick's fan-out: sent
        concurrently, so the tick's duration stays flat as the fleet grows)."""
        ...

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        """Put an intent back on `scale-intents`, invisible for `delay_seconds` (dry runs only:
        they record nothing a reconcile could retry)."""
        ...

    def park(self, message: dict[str, Any]) -> None:
        """Move an intent whose retries are spent to the poison queue."""
        ...


class EventSink(Protocol):
    def send(self, events: Sequence[Event]) -> None:
        """Publish CloudEvents, best effort: bounded in time, never raises (a failure is
        logged; the outcome on `scale-results` and the store stay the record)."""
        ...


class ScheduleSource(Protocol):
    def read(self) -> tuple[str, str]:
        """The schedule document and a name for it in messages; InvalidInput if unreadable."""
        ...


class Status(StrEnum):
    PENDING = "pending"  # recorded, not yet carried to ARM
    DEFERRED = "deferred"  # met a transient failure (or a busy pool); the reconcile comes back
    FINAL = "final"  # has its final outcome


@dataclass(frozen=True)
class SourceRecord:
    """A recorded source, with the bookkeeping of its intent's outcome. A source that no longer
    asks for anything (rejected, ended, released, replaced) stays as a tombstone (`active`
    False) holding the final outcome, so a redelivery is recognised and reports nothing new."""

    source: Source
    message_id: str
    status: Status = Status.PENDING
    active: bool = True
    outcome: dict[str, Any] | None = None
    published: bool = False
    attempt: int = 0  # transient failures met so far
    renewal: int = 0
    claimed: bool = False  # the id is claimed across clusters (see DesiredStateStore.claim_ids)
    version: str | None = None  # the store's eTag: writes are conditional on it


@dataclass(frozen=True)
class MemoRecord:
    pool: str
    memo: PoolMemo = field(default_factory=PoolMemo)
    last_write_at: datetime | None = None
    version: str | None = None


@dataclass(frozen=True)
class Marker:
    """Per cluster: when a reconcile is already queued for, and the backoff count."""

    next_wake_at: datetime | None = None
    attempt: int = 0
    version: str | None = None


@dataclass(frozen=True)
class ClusterRecords:
    sources: dict[str, SourceRecord] = field(default_factory=dict)
    memos: dict[str, MemoRecord] = field(default_factory=dict)
    marker: Marker = field(default_factory=Marker)


Write: TypeAlias = SourceRecord | MemoRecord | Marker


class DesiredStateStore(Protocol):
    """Table storage, one partition per cluster (adapters/state.py)."""

    def load(self, cluster: ClusterRef) -> ClusterRecords:
        """One read: every source, pool memo and the marker of the cluster."""
        ...

    def record(self, cluster: ClusterRef, record: SourceRecord) -> SourceRecord | None:
        """Conditional insert of a new source. None when recorded; the stored record when its
        id is already recorded for this cluster (nothing is written then)."""
        ...

    def commit(self, cluster: ClusterRef, writes: Sequence[Write]) -> bool:
        """Write each record conditional on its `version` (insert when None), in as few
        transactions as the store allows. False when another writer changed one first."""
        ...

    def mark_published(self, cluster: ClusterRef, intent_ids: Sequence[str]) -> None:
        """Flag final outcomes as published (a merge of that one property: no condition
        needed, nothing else changes)."""
        ...

    def claim_ids(self, cluster: ClusterRef, ids: Sequence[str]) -> Mapping[str, str]:
        """Claim intent ids across clusters; returns {id: other cluster} for ids that another
        cluster's intent already holds (those are refused as DuplicateId)."""
        ...

    def source(self, cluster: ClusterRef, intent_id: str) -> SourceRecord | None:
        """One point read (for `send --wait` and tests)."""
        ...
