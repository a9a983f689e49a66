"""Latest intent wins, per pool: one intent's claims on the pool records in the state store.

Implements `applier.PoolClaims` for the queue use case. A claim is a conditional write of the
pool's record (the Table row's eTag), so two intents racing for a pool cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scaler.domain.intents import Intent
from scaler.domain.pool_records import Claim, PoolRecord, claim
from scaler.ports import StateStore

# Rounds of read-decide-write when concurrent intents keep rewriting a pool's record.
MAX_CLAIM_ROUNDS = 3


@dataclass
class IntentClaims:
    store: StateStore
    intent: Intent
    # The records this intent replaced, so a rejected intent can give them back.
    replaced: dict[str, PoolRecord | None] = field(default_factory=dict)
    # Newer intents known to have finished (asked once per processing).
    settled_intents: dict[str, bool] = field(default_factory=dict)

    def claim(self, pools: list[str]) -> dict[str, PoolRecord]:
        newer: dict[str, PoolRecord] = {}
        undecided = list(pools)
        for _ in range(MAX_CLAIM_ROUNDS):
            records = self.store.pool_records(self.intent.cluster)
            contested = []
            for pool in undecided:
                mine = self._mine(pool)
                recorded = records.get(pool)
                verdict = claim(mine, recorded)
                if verdict is Claim.STALE:
                    assert recorded is not None
                    newer[pool] = recorded
                elif verdict is Claim.NEWER:
                    if self.store.save_pool_record(self.intent.cluster, mine, recorded):
                        self.replaced[pool] = recorded
                    else:
                        contested.append(pool)  # written meanwhile: read again, decide again
            undecided = contested
            if not undecided:
                break
        # Still contested after every round: go ahead; If-Match keeps the writes safe, and the
        # check after them sees whichever record won.
        return newer

    def check(self, pools: list[str]) -> dict[str, PoolRecord]:
        records = self.store.pool_records(self.intent.cluster)
        return {
            pool: records[pool]
            for pool in pools
            if pool in records and claim(self._mine(pool), records[pool]) is Claim.STALE
        }

    def release(self) -> None:
        records = self.store.pool_records(self.intent.cluster)
        for pool, previous in self.replaced.items():
            current = records.get(pool)
            if current is None or current.intent_id != self.intent.id:
                continue  # someone newer wrote it since: theirs stands
            if previous is None:
                self.store.delete_pool_record(self.intent.cluster, current)
            else:
                self.store.save_pool_record(self.intent.cluster, previous, current)
        self.replaced.clear()

    def settled(self, record: PoolRecord) -> bool:
        if record.intent_id not in self.settled_intents:
            self.settled_intents[record.intent_id] = (
                self.store.finished(record.intent_id) is not None
            )
        return self.settled_intents[record.intent_id]

    def _mine(self, pool: str) -> PoolRecord:
        intent = self.intent
        assert intent.issued_at is not None
        return PoolRecord(pool, intent.id, intent.issued_at, intent.pools[pool], intent.hold_until)
