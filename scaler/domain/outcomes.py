"""What happened to an intent: the message written to `scale-results` and logged.

One outcome per processing attempt; `final` says whether more will follow for the same intent
(a `deferred` outcome is followed by a retry, every other one closes the intent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from scaler.domain.planner import Action, PoolPlan
from scaler.domain.pools import PoolState


class Overall(StrEnum):
    APPLIED = "applied"  # at least one pool write was started
    UNCHANGED = "unchanged"  # every pool already was as asked: no write
    DEFERRED = "deferred"  # a transient failure; the intent is retried later
    REJECTED = "rejected"  # can never succeed as sent: invalid, not allowed, refused by AKS
    DRY_RUN = "dry_run"  # planned only
    POISONED = "poisoned"  # retry budget spent; the message is parked in the poison queue
    STALE = "stale"  # a newer intent is recorded for every pool of this one: nothing applied


class PoolResult(StrEnum):
    UNCHANGED = "unchanged"
    STARTED = "started"  # the write was accepted; AKS works on it in the background
    WOULD_CHANGE = "would_change"  # dry run
    REFUSED = "refused"  # a guardrail or AKS rule: permanent
    DEFERRED = "deferred"  # transient: retried with the intent
    FAILED = "failed"  # Resource Manager refused the write: permanent
    # Another pool of the intent was refused, so nothing was written.
    NOT_ATTEMPTED = "not_attempted"
    STALE = "stale"  # a newer intent asked for this pool: it wins
    HELD = "held"  # the schedule leaves the pool alone: a queue intent holds it


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    field: str | None = None
    retry_after: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        return data


@dataclass(frozen=True)
class PoolOutcome:
    pool: str
    requested: dict[str, object]
    action: Action
    result: PoolResult
    before: PoolState | None = None
    after: PoolState | None = None
    problem: Problem | None = None

    @classmethod
    def from_plan(cls, plan: PoolPlan, result: PoolResult, **extra: Any) -> PoolOutcome:
        return cls(plan.name, plan.requested.to_json(), plan.action, result, plan.before, **extra)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "before": self.before.summary() if self.before else None,
            "requested": self.requested,
            "action": self.action.value,
            "outcome": self.result.value,
            "after": self.after.summary() if self.after else None,
            "error": self.problem.to_json() if self.problem else None,
        }


@dataclass(frozen=True)
class Outcome:
    intent_id: str
    outcome: Overall
    at: datetime
    source: str
    cluster_id: str | None = None
    attempt: int = 1
    pools: tuple[PoolOutcome, ...] = ()
    problem: Problem | None = None
    reason: str | None = None
    message_id: str | None = None
    retry_in_seconds: int | None = None
    hold_until: datetime | None = None
    # Another delivery of the same intent (a duplicate message) reached the final outcome first.
    duplicate: bool = False

    @property
    def final(self) -> bool:
        return self.outcome is not Overall.DEFERRED and not self.duplicate

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            # One per processing of a message. After a crash the same document may be
            # delivered twice: consumers dedupe on this.
            "outcome_id": f"{self.intent_id}@{self.message_id}"
            if self.message_id
            else self.intent_id,
            "intent_id": self.intent_id,
            "cluster": self.cluster_id,
            "outcome": self.outcome.value,
            "final": self.final,
            "attempt": self.attempt,
            "at": self.at.isoformat(),
            "source": self.source,
            "message_id": self.message_id,
            "reason": self.reason,
            "error": self.problem.to_json() if self.problem else None,
            "pools": [pool.to_json() for pool in self.pools],
        }
        if self.retry_in_seconds is not None:
            data["retry_in_seconds"] = self.retry_in_seconds
        if self.duplicate:
            data["duplicate"] = True
        if self.hold_until is not None:
            data["hold"] = {"set_at": self.at.isoformat(), "until": self.hold_until.isoformat()}
        return data


def overall_of(pools: Iterable[PoolOutcome]) -> Overall:
    """Deferred beats everything (the retry re-plans, so pools already started are unchanged
    then); otherwise a permanent failure makes the intent rejected."""
    results = {pool.result for pool in pools}
    if results == {PoolResult.STALE}:
        return Overall.STALE
    if PoolResult.DEFERRED in results:
        return Overall.DEFERRED
    if results & {PoolResult.REFUSED, PoolResult.FAILED}:
        return Overall.REJECTED
    if PoolResult.WOULD_CHANGE in results:
        return Overall.DRY_RUN
    if PoolResult.STARTED in results:
        return Overall.APPLIED
    return Overall.UNCHANGED
