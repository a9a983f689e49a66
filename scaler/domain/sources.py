"""Sources of desire: who may ask for a pool's state, and for how long.

A queue intent, once accepted, becomes a `Source` recorded per cluster. Resolution
(`scaler.domain.resolution`) turns the active sources of a pool, plus the schedule, into the one
state the pool should have now. The kinds, highest precedence first:

    hold      an intent with `hold` / `hold_until`: its state wins until it ends
    lease     an intent with `lease`: capacity borrowed until it ends, added to what the rest asks
    intent    a plain intent: lasts until the schedule's next transition for the pool
    release   `{"release": "<lease id>"}`: ends a lease early; asks for nothing itself

Pure: no I/O, no clock (every question takes `now`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from scaler.domain.intents import Intent
from scaler.domain.pools import ManualCount, PoolRequest


class SourceKind(StrEnum):
    INTENT = "intent"
    HOLD = "hold"
    LEASE = "lease"
    RELEASE = "release"


@dataclass(frozen=True)
class Source:
    id: str
    kind: SourceKind
    pools: Mapping[str, PoolRequest]
    issued_at: datetime  # the producer's clock (bounded by SCALER_MAX_CLOCK_SKEW): orders sources
    accepted_at: datetime  # the app's clock: holds and leases run from here
    until: datetime | None = None  # holds and leases end here; plain intents: see resolution
    expires_at: datetime | None = None  # must have reached ARM by then, or it is rejected
    releases: str | None = None  # RELEASE: the lease it ends
    reason: str | None = None

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Newest wins; ties on issued_at go to the later accepted, then the larger id, so every
        worker picks the same winner."""
        return (self.issued_at, self.accepted_at, self.id)

    def active_at(self, now: datetime) -> bool:
        """Holds and leases end by themselves. (A plain intent's end depends on the schedule:
        resolution decides that.)"""
        return self.until is None or now < self.until

    def lease_count(self, pool: str) -> int:
        request = self.pools.get(pool)
        return request.count if isinstance(request, ManualCount) else 0

    def same_request(self, other: Source) -> bool:
        """Does `other` ask for the same thing (a redelivery or a renewal, not a different
        intent that reuses the id)?"""
        return (
            self.kind is other.kind
            and dict(self.pools) == dict(other.pools)
            and self.releases == other.releases
        )


def source_of(intent: Intent, accepted_at: datetime) -> Source:
    """The source an accepted intent records. The intent was parsed at acceptance, so `hold`
    and `lease` durations already run from then: a transient failure on the way to ARM cannot
    eat a short hold."""
    assert intent.issued_at is not None
    if intent.release is not None:
        kind = SourceKind.RELEASE
    elif intent.lease_until is not None:
        kind = SourceKind.LEASE
    elif intent.hold_until is not None:
        kind = SourceKind.HOLD
    else:
        kind = SourceKind.INTENT
    until = intent.lease_until or intent.hold_until
    return Source(
        id=intent.id,
        kind=kind,
        pools=dict(intent.pools),
        issued_at=intent.issued_at,
        accepted_at=accepted_at,
        until=until,
        expires_at=intent.expires_at,
        releases=intent.release,
        reason=intent.reason,
    )
