"""What the app remembers per pool between messages: the newest intent that asked for it, and
the hold that intent set. Two rules live here:

* Latest intent wins: an intent issued before the one already recorded for a pool is stale for
  that pool; it is reported, not applied, so a replayed or late message cannot flap a pool.
* Holds: while a recorded hold is active, the schedule leaves the pool alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from scaler.domain.pools import PoolRequest


@dataclass(frozen=True)
class PoolRecord:
    pool: str
    intent_id: str
    issued_at: datetime
    requested: PoolRequest
    hold_until: datetime | None = None
    # The store's version of the record (a Table eTag): writes are conditional on it.
    version: str | None = None

    @property
    def order(self) -> tuple[datetime, str]:
        # Ties on issued_at are broken by id so that every worker picks the same winner.
        return (self.issued_at, self.intent_id)

    def holds_at(self, instant: datetime) -> bool:
        return self.hold_until is not None and self.hold_until > instant


class Claim(StrEnum):
    NEWER = "newer"  # this intent is the newest for the pool: record it, then apply it
    SAME = "same"  # this intent is already the recorded one (a retry): apply it
    STALE = "stale"  # a newer intent is recorded: report, do not apply


def claim(mine: PoolRecord, recorded: PoolRecord | None) -> Claim:
    if recorded is None:
        return Claim.NEWER
    if recorded.intent_id == mine.intent_id:
        return Claim.SAME
    return Claim.NEWER if mine.order > recorded.order else Claim.STALE
