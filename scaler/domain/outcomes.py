"""What happened to an intent: the message written to `scale-results` and logged.

Exactly one final outcome per accepted intent (a lease renewal is a new acceptance and gets its
own, marked `renewal`); a `deferred` outcome (`final: false`) says more will follow. Every pool
says what the scaler wants for it and *why* (which source decided, until when).
"""

from __future__ import annotations

import json
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
    # A newer (or stronger) source replaced this intent's state before it reached ARM.
    SUPERSEDED = "superseded"


class PoolResult(StrEnum):
    UNCHANGED = "unchanged"
    STARTED = "started"  # the write was accepted; AKS works on it in the background
    WOULD_CHANGE = "would_change"  # dry run
    REFUSED = "refused"  # a guardrail or AKS rule: permanent
    DEFERRED = "deferred"  # transient: retried with the intent
    FAILED = "failed"  # Resource Manager refused the write: permanent
    # Another pool of the intent was refused, so nothing was written.
    NOT_ATTEMPTED = "not_attempted"
    SUPERSEDED = "superseded"  # another source decides this pool (see `why`)
    EXCLUDED = "excluded"  # the pool's owner opted it out by tag: never written


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
    # What the scaler wants for the pool (all sources resolved), and which source decided.
    desired: dict[str, object] | None = None
    why: dict[str, Any] | None = None

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
            "desired": self.desired,
            "why": self.why,
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
    # Set only when the hold / lease was recorded (a rejected intent leaves none behind).
    hold_until: datetime | None = None
    lease_until: datetime | None = None
    accepted_at: datetime | None = None
    # How many times this lease was renewed (re-sent with the same id) before this outcome.
    renewal: int = 0
    # Requests for its pools that Resource Manager throttled (429) or the app's own pacing held
    # back: expected at fleet scale, retried after Retry-After, not an error.
    throttled: int = 0

    @property
    def final(self) -> bool:
        return self.outcome is not Overall.DEFERRED

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
        set_at = (self.accepted_at or self.at).isoformat()
        if self.hold_until is not None:
            data["hold"] = {"set_at": set_at, "until": self.hold_until.isoformat()}
        if self.lease_until is not None:
            data["lease"] = {
                "id": self.intent_id,
                "set_at": set_at,
                "until": self.lease_until.isoformat(),
            }
        if self.renewal:
            data["renewal"] = self.renewal
        if self.throttled:
            data["throttled"] = self.throttled
        return data


# Where outcomes go and their limits: a queue message holds 64 KiB (as UTF-8); a Table string
# property 32 K characters (UTF-16). Outcomes stay well under both.
MAX_OUTCOME_CHARS = 30_000


def bounded(document: dict[str, Any], limit: int = MAX_OUTCOME_CHARS) -> dict[str, Any]:
    """The outcome document, cut to fit `limit` characters (and 2x that in UTF-8 bytes): per-pool
    details go first, then pools beyond the first ones, with `truncated` saying so. The overall
    outcome, ids and error are always kept: a result is never dropped for its size."""
    if _size(document) <= limit:
        return document
    pools = [
        {key: pool.get(key) for key in ("pool", "action", "outcome", "error")}
        for pool in document.get("pools") or []
    ]
    cut = {**document, "pools": pools, "truncated": "per-pool details left out (too large)"}
    while pools and _size(cut) > limit:
        pools = pools[: len(pools) // 2]
        cut = {
            **cut,
            "pools": pools,
            "truncated": f"only {len(pools)} of {len(document['pools'])} pools shown",
        }
    if _size(cut) > limit:  # a huge reason: the producer's own text, clipped
        cut["reason"] = str(cut.get("reason") or "")[:1000]
    return cut


def _size(document: dict[str, Any]) -> int:
    text = json.dumps(document)  # ASCII-escaped: an upper bound for UTF-8 bytes and UTF-16 units
    return len(text)


def overall_of(pools: Iterable[PoolOutcome]) -> Overall:
    """Deferred beats everything (the retry re-plans, so pools already started are unchanged
    then); otherwise a permanent failure makes the intent rejected."""
    results = {pool.result for pool in pools}
    if results == {PoolResult.SUPERSEDED}:
        return Overall.SUPERSEDED
    if PoolResult.DEFERRED in results:
        return Overall.DEFERRED
    if results & {PoolResult.REFUSED, PoolResult.FAILED}:
        return Overall.REJECTED
    if PoolResult.WOULD_CHANGE in results:
        return Overall.DRY_RUN
    if PoolResult.STARTED in results:
        return Overall.APPLIED
    return Overall.UNCHANGED
