"""What the use cases need from the outside world. The adapters implement these; tests of the
use cases use the real adapters against Azurite and the AKS emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from scaler.domain.clusters import ClusterRef
from scaler.domain.planner import PoolPlan
from scaler.domain.pool_records import PoolRecord
from scaler.domain.pools import PoolState


class GatewayError(Exception):
    """Resource Manager (or the token service) said no. `transient` errors are retried later."""

    def __init__(
        self, code: str, message: str, *, transient: bool, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


class StaleEtag(GatewayError):
    """412: the pool changed since it was read. Re-read and re-plan."""

    def __init__(self, message: str) -> None:
        super().__init__("PreconditionFailed", message, transient=True)


class ClusterGateway(Protocol):
    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        """One read: every agent pool of the cluster, with its eTag."""
        ...

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        """One write: start the change with If-Match on the pool's eTag; do not wait for it."""
        ...


class MessageGateway(Protocol):
    def publish_outcome(self, outcome: dict[str, Any]) -> None: ...

    def retry_later(self, message: dict[str, Any], delay_seconds: int) -> None:
        """Put the intent back on the intents queue, invisible for `delay_seconds`."""
        ...

    def park(self, message: dict[str, Any]) -> None:
        """Move an intent whose retries are spent to the poison queue."""
        ...


@dataclass(frozen=True)
class FinishedIntent:
    """An intent's final outcome, recorded before it is published: if the process dies in
    between, the next delivery publishes the recorded document instead of working anew."""

    outcome: dict[str, Any]
    published: bool


class StateStore(Protocol):
    def pool_records(self, cluster: ClusterRef) -> dict[str, PoolRecord]:
        """One read: every pool record of the cluster."""
        ...

    def save_pool_record(
        self, cluster: ClusterRef, record: PoolRecord, replacing: PoolRecord | None
    ) -> bool:
        """Conditional write; False when another writer changed the record first."""
        ...

    def delete_pool_record(self, cluster: ClusterRef, record: PoolRecord) -> None:
        """Delete the record if it is still `record` (conditional on its version)."""
        ...

    def finished(self, intent_id: str) -> FinishedIntent | None: ...

    def mark_finished(self, intent_id: str, outcome: dict[str, Any]) -> bool:
        """Record the final outcome before it is published (see FinishedIntent). False if
        another delivery of the same intent recorded one first: only one can be final."""
        ...

    def mark_published(self, intent_id: str) -> None: ...


class ScheduleSource(Protocol):
    def read(self) -> tuple[str, str]:
        """The schedule document and a name for it in messages; InvalidInput if unreadable."""
        ...
