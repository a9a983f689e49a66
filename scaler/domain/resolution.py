"""Sources + schedule + now → the state one pool should have, and why.

    resolve_pool(pool, sources, schedule, memo, current, now) → Resolution

Precedence, highest first:

1. an active **hold**: the newest hold's state, whatever else asks (leases included);
2. the newest active **plain intent**, which lasts until the schedule's next transition for
   the pool (forever if the schedule never changes the pool);
3. the **schedule** at `now` (exception > window > outside; `"keep"` is no opinion). With
   `enforce = false` it has an opinion only once per transition: when its state differs from
   the one last acted on, so manual changes made between transitions stand;
4. otherwise no opinion.

Then active **leases** raise the floor of whatever 2–4 asked (or, with no opinion, of the pool's
own size): a count pool gets at least the sum of the lease counts, an autoscaled pool gets `min`
at least that sum (and `max` at least `min`), a stopped pool runs. When the last lease on a pool
has ended and nothing else has an opinion, the pool goes back to the state it had when the first
of those leases began (the *baseline*, remembered per pool).

Pure: the schedule is evaluated, never read; `now` is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from scaler.domain.pools import Autoscale, ManualCount, PoolRequest, PoolState, Power
from scaler.domain.sources import Source, SourceKind


class ScheduleDecision(Protocol):
    @property
    def state(self) -> object: ...  # a PoolRequest, "keep", or None (no opinion)

    @property
    def reason(self) -> str: ...


class PoolScheduleView(Protocol):
    """What resolution needs of one cluster's schedule (`ClusterSchedule` provides it)."""

    def decide(self, instant: datetime, pool: str) -> ScheduleDecision: ...

    def next_transition(self, pool: str, after: datetime) -> datetime | None: ...

    def enforces(self, pool: str) -> bool: ...


@dataclass(frozen=True)
class PoolMemo:
    """What the app remembers per pool between reconciles."""

    # The pool's state when the first of the current leases began (restored when they end).
    baseline: PoolRequest | None = None
    # The scheduled state last acted on (for `enforce = false`), as `state_key` text.
    schedule_seen: str | None = None


@dataclass(frozen=True)
class LeaseShare:
    id: str
    count: int
    until: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "count": self.count, "until": self.until.isoformat()}


@dataclass(frozen=True)
class Why:
    """Which source decided, and until when. `source` is one of: hold, intent, schedule,
    lease, baseline, none."""

    source: str
    detail: str
    id: str | None = None
    until: datetime | None = None
    leases: tuple[LeaseShare, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "detail": self.detail}
        if self.id is not None:
            data["id"] = self.id
        if self.until is not None:
            data["until"] = self.until.isoformat()
        if self.leases:
            data["leases"] = [lease.to_json() for lease in self.leases]
        return data


@dataclass(frozen=True)
class Resolution:
    pool: str
    request: PoolRequest | None  # None: nobody has an opinion; the pool is left alone
    why: Why
    # The source ids whose wish this state carries out (the decider and the leases).
    carries: frozenset[str] = field(default_factory=frozenset)
    # May a stopped pool be started to reach `request`? The schedule, leases and a lease's
    # give-back may; a person's intent asking a size of a stopped pool is refused instead.
    start_stopped: bool = False
    # What to remember once the state is reached (None fields: nothing changes).
    memo_after: PoolMemo = field(default_factory=PoolMemo)
    # The schedule decided: with enforce=false, record that its state was acted on.
    schedule_state: str | None = None


def state_key(state: object) -> str:
    """A stable text for a scheduled state, to tell one transition from the next."""
    if isinstance(state, (ManualCount, Autoscale, Power)):
        return json.dumps(state.to_json(), sort_keys=True)
    return json.dumps(state)


def plain_intent_end(
    source: Source, pool: str, schedule: PoolScheduleView | None
) -> datetime | None:
    """A plain intent lasts until the schedule's next transition for the pool after it was
    accepted: someone who asks 10 inside a 6-node window means "10 until the window ends"."""
    if schedule is None:
        return None
    return schedule.next_transition(pool, source.accepted_at)


def resolve_pool(
    pool: str,
    sources: Iterable[Source],
    schedule: PoolScheduleView | None,
    memo: PoolMemo,
    current: PoolState | None,
    now: datetime,
    max_count: int,
) -> Resolution:
    asking = [s for s in sources if pool in s.pools and s.active_at(now)]
    holds = [s for s in asking if s.kind is SourceKind.HOLD]
    if holds:
        hold = max(holds, key=lambda s: s.order)
        why = Why("hold", f"hold by intent {hold.id}", hold.id, hold.until)
        return Resolution(pool, hold.pools[pool], why, frozenset({hold.id}), memo_after=memo)

    base, why, carries, start_stopped, schedule_state = _base(pool, asking, schedule, memo, now)
    leases = sorted(
        (s for s in asking if s.kind is SourceKind.LEASE), key=lambda s: (s.until, s.id)
    )
    if leases:
        shares = tuple(LeaseShare(s.id, s.lease_count(pool), _until(s)) for s in leases)
        floor = min(sum(share.count for share in shares), max_count)
        baseline = memo.baseline
        if baseline is None and current is not None:
            baseline = _as_request(current)  # the first lease begins: remember the pool
        # With no other opinion, leases add to the pool as it was before them (not to what
        # the leases themselves already made of it).
        raised = _with_floor(base if base is not None else baseline, floor, current)
        lease_why = f"{len(shares)} lease(s) ask at least {floor} node(s)"
        return Resolution(
            pool,
            raised,
            Why(
                "lease" if base is None else why.source,
                lease_why if base is None else f"{why.detail}; {lease_why}",
                why.id,
                min(share.until for share in shares) if base is None else why.until,
                shares,
            ),
            carries | {s.id for s in leases},
            start_stopped=True,
            memo_after=PoolMemo(baseline, memo.schedule_seen),
            schedule_state=schedule_state,
        )
    if base is None and memo.baseline is not None:
        why = Why("baseline", "the last lease ended: back to the state before the first one")
        return Resolution(
            pool,
            memo.baseline,
            why,
            start_stopped=True,
            memo_after=PoolMemo(None, memo.schedule_seen),
        )
    # Another source decides now: the baseline has served its purpose.
    return Resolution(
        pool,
        base,
        why,
        carries,
        start_stopped,
        PoolMemo(None, memo.schedule_seen),
        schedule_state,
    )


def _base(
    pool: str,
    asking: list[Source],
    schedule: PoolScheduleView | None,
    memo: PoolMemo,
    now: datetime,
) -> tuple[PoolRequest | None, Why, frozenset[str], bool, str | None]:
    """Steps 2-4: the newest plain intent, else the schedule, else no opinion."""
    plain = []
    for source in asking:
        if source.kind is SourceKind.INTENT:
            end = plain_intent_end(source, pool, schedule)
            if end is None or now < end:
                plain.append((source, end))
    if plain:
        source, end = max(plain, key=lambda pair: pair[0].order)
        why = Why("intent", f"intent {source.id}", source.id, end)
        return source.pools[pool], why, frozenset({source.id}), False, None
    if schedule is not None:
        decision = schedule.decide(now, pool)
        state = decision.state
        if isinstance(state, (ManualCount, Autoscale, Power)):
            key = state_key(state)
            if schedule.enforces(pool) or memo.schedule_seen != key:
                until = schedule.next_transition(pool, now)
                return state, Why("schedule", decision.reason, None, until), frozenset(), True, key
            return (
                None,
                Why("schedule", f"{decision.reason} (enforce = false: already acted on)"),
                frozenset(),
                False,
                None,
            )
        if state is not None:  # "keep"
            return None, Why("schedule", f"{decision.reason}: keep"), frozenset(), False, None
    return None, Why("none", "no source has an opinion"), frozenset(), False, None


def _until(source: Source) -> datetime:
    assert source.until is not None  # leases always end
    return source.until


def _as_request(pool: PoolState) -> PoolRequest:
    if pool.is_stopped:
        return Power("Stopped")
    return _size_of(pool)


def _size_of(pool: PoolState | None) -> PoolRequest:
    if pool is None:
        return ManualCount(0)
    if pool.autoscale and pool.min_count is not None and pool.max_count is not None:
        return Autoscale(pool.min_count, pool.max_count)
    return ManualCount(pool.count)


def _with_floor(base: PoolRequest | None, floor: int, current: PoolState | None) -> PoolRequest:
    """The lease arithmetic: raise what is asked to at least `floor` nodes. A stopped pool
    runs with the leased nodes; a pool asked to run keeps its size, raised to the floor."""
    if isinstance(base, Power) and base.code == "Stopped":
        if current is not None and current.autoscale and current.max_count is not None:
            return Autoscale(floor, max(current.max_count, floor))
        return ManualCount(floor)
    if base is None or isinstance(base, Power):
        base = _size_of(current)
    if isinstance(base, Autoscale):
        low = max(base.min_count, floor)
        return Autoscale(low, max(base.max_count, low))
    assert isinstance(base, ManualCount)
    return ManualCount(max(base.count, floor))
