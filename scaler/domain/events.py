"""Outcomes and upcoming schedule changes as CloudEvents 1.0 (pure: no I/O, `now` passed in).

    outcome_events(document)            → the events of one outcome document (scale-results)
    upcoming_changes(...)               → the schedule's capacity cuts within the notice period
    upcoming_event(change, now)         → the event that announces one, with the hold to snooze it

Types (`source` is EVENT_SOURCE; `subject` the cluster's resource id, plus `/agentPools/<pool>`
for pool events):

    scaler.intent.<outcome>        every final outcome of a queue intent: applied, unchanged,
                                   superseded, rejected, poisoned, dry_run. data: the outcome
                                   document, exactly as on scale-results
    scaler.schedule.rejected       a timer run or a schedule reconcile refused (invalid schedule,
                                   a cluster not allowed, a write AKS refused). data: the outcome
    scaler.pool.changed            one per pool write the app started. data: before, after,
                                   requested, desired, why, and which outcome it belongs to
    scaler.pool.change-upcoming    the schedule will lower a pool's capacity (stop, scale down,
                                   lower autoscaler bounds) within SCALER_NOTICE_MINUTES. data:
                                   when, what, and the hold intent that snoozes it

Event ids are derived from what they report, so a copy sent twice (a crash between the queue
and the topic, a second timer tick announcing the same transition) has the same id and a
subscriber dedupes on it: outcome events use the outcome's `outcome_id`, `pool.changed` the
cluster, pool and instant of the write, `change-upcoming` the cluster, pool, transition instant
and the state the schedule will set.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import Autoscale, ManualCount, PoolRequest, PoolState, Power
from scaler.domain.resolution import PoolMemo, PoolScheduleView, resolve_pool, state_key
from scaler.domain.sources import Source

EVENT_SOURCE = "/aks-pool-scaler"
INTENT_PREFIX = "scaler.intent."
SCHEDULE_REJECTED = "scaler.schedule.rejected"
POOL_CHANGED = "scaler.pool.changed"
POOL_CHANGE_UPCOMING = "scaler.pool.change-upcoming"
# Final outcomes of an intent (Overall values other than deferred).
INTENT_OUTCOMES = ("applied", "unchanged", "superseded", "rejected", "poisoned", "dry_run")
# A snooze holds the pool at least this long, and at least this long past the change.
SNOOZE = timedelta(hours=1)
SNOOZE_MARGIN = timedelta(minutes=15)
_IDS = uuid.UUID("6f1d8f0e-2b4a-4c55-8d6e-5a0b7c3e9f21")  # namespace of derived event ids


@dataclass(frozen=True)
class Event:
    """One CloudEvent 1.0 (the adapter turns it into the SDK's CloudEvent)."""

    type: str
    subject: str | None
    id: str
    time: datetime | None
    data: dict[str, Any]
    source: str = EVENT_SOURCE


@dataclass(frozen=True)
class UpcomingChange:
    """A change the schedule will make to a pool at `at` that lowers its capacity."""

    cluster: ClusterRef
    pool: str
    at: datetime
    current: PoolState
    request: PoolRequest
    change: str  # what it does, in words: "stop", "scale down from 5 to 2 nodes", ...
    reason: str  # the schedule rule that decides then


def pool_subject(cluster_id: str, pool: str) -> str:
    return f"{cluster_id}/agentPools/{pool}"


def derived_id(*parts: object) -> str:
    return str(uuid.uuid5(_IDS, "|".join(str(p) for p in parts)))


def outcome_events(document: Mapping[str, Any]) -> list[Event]:
    """The events of one outcome document: its own (when final, and an intent's or a refused
    schedule run's), then one `scaler.pool.changed` per pool write it reports."""
    events: list[Event] = []
    cluster = document.get("cluster")
    subject = str(cluster) if cluster else None
    at = _instant(document.get("at"))
    outcome = str(document.get("outcome"))
    outcome_id = str(document.get("outcome_id") or document.get("intent_id"))
    if document.get("final", True):
        if document.get("source") == "queue" and outcome in INTENT_OUTCOMES:
            events.append(Event(INTENT_PREFIX + outcome, subject, outcome_id, at, dict(document)))
        elif document.get("source") != "queue" and outcome in ("rejected", "poisoned"):
            events.append(Event(SCHEDULE_REJECTED, subject, outcome_id, at, dict(document)))
    for pool in document.get("pools") or []:
        if not isinstance(pool, Mapping) or pool.get("outcome") != "started" or not subject:
            continue
        name = str(pool.get("pool"))
        data = {
            "cluster": subject,
            "pool": name,
            "at": document.get("at"),
            "action": pool.get("action"),
            "before": pool.get("before"),
            "after": pool.get("after"),
            "requested": pool.get("requested"),
            "desired": pool.get("desired"),
            "why": pool.get("why"),
            "by": {
                "source": document.get("source"),
                "intent_id": document.get("intent_id"),
                "outcome_id": outcome_id,
                "reason": document.get("reason"),
            },
        }
        events.append(
            Event(
                POOL_CHANGED,
                pool_subject(subject, name),
                derived_id(POOL_CHANGED, subject.lower(), name, document.get("at")),
                at,
                data,
            )
        )
    return events


def upcoming_changes(
    cluster: ClusterRef,
    schedule: PoolScheduleView,
    pools: Iterable[str],
    sources: Iterable[Source],
    memos: Mapping[str, PoolMemo],
    current: Mapping[str, PoolState],
    now: datetime,
    notice: timedelta,
    max_count: int,
) -> list[UpcomingChange]:
    """Every pool whose state the schedule changes within `notice` of `now` to one of lower
    capacity than the pool has now. The state at the transition is resolved with the sources
    active then (a hold that covers it wins, so a snoozed change is not announced again)."""
    if notice <= timedelta(0):
        return []
    found = []
    sources = list(sources)
    for name in pools:
        pool = current.get(name)
        if pool is None:
            continue
        at = schedule.next_transition(name, now)
        if at is None or at - now > notice:
            continue
        memo = memos.get(name, PoolMemo())
        then = resolve_pool(name, sources, schedule, memo, pool, at, max_count)
        if then.request is None or then.why.source != "schedule":
            continue
        change = capacity_cut(pool, then.request)
        if change is not None:
            found.append(
                UpcomingChange(cluster, name, at, pool, then.request, change, then.why.detail)
            )
    return found


def capacity_cut(pool: PoolState, request: PoolRequest) -> str | None:
    """In words, how `request` lowers the capacity of `pool` (None when it does not): a stop,
    fewer nodes, or lower autoscaler bounds (a lower floor or ceiling)."""
    if pool.is_stopped:
        return None
    if isinstance(request, Power):
        return "stop" if request.code == "Stopped" else None
    if isinstance(request, ManualCount):
        if request.count < pool.count:
            return f"scale down from {pool.count} to {request.count} node(s)"
        if pool.autoscale and pool.max_count is not None and request.count < pool.max_count:
            return f"autoscaler off: {request.count} node(s) instead of up to {pool.max_count}"
        return None
    assert isinstance(request, Autoscale)
    if pool.autoscale and pool.min_count is not None and pool.max_count is not None:
        if request.min_count < pool.min_count or request.max_count < pool.max_count:
            return (
                f"lower autoscaler bounds from {pool.min_count}-{pool.max_count} to "
                f"{request.min_count}-{request.max_count}"
            )
        return None
    if request.min_count < pool.count:
        return (
            f"autoscaler on with {request.min_count}-{request.max_count}: may scale down "
            f"from {pool.count} node(s)"
        )
    return None


def current_request(pool: PoolState) -> PoolRequest:
    """The pool as it is now, as an intent would ask for it."""
    if pool.is_stopped:
        return Power("Stopped")
    if pool.autoscale and pool.min_count is not None and pool.max_count is not None:
        return Autoscale(pool.min_count, pool.max_count)
    return ManualCount(pool.count)


def snooze_intent(change: UpcomingChange, now: datetime) -> dict[str, Any]:
    """The hold intent that keeps the pool as it is past the change: one hour (PT1H), longer
    when the change is further away than SNOOZE_MARGIN before the hour ends."""
    hours = max(1, math.ceil((change.at - now + SNOOZE_MARGIN) / SNOOZE))
    return {
        "subscription_id": change.cluster.subscription_id,
        "resource_group": change.cluster.resource_group,
        "cluster": change.cluster.name,
        "pools": {change.pool: current_request(change.current).to_json()},
        "hold": f"PT{hours}H",
        "reason": f"snooze the scheduled change of {change.pool} at {change.at.isoformat()}",
    }


def upcoming_event(change: UpcomingChange, now: datetime) -> Event:
    cluster_id = change.cluster.resource_id
    minutes = max(0, math.ceil((change.at - now).total_seconds() / 60))
    data = {
        "cluster": cluster_id,
        "pool": change.pool,
        "at": change.at.isoformat(),
        "in_minutes": minutes,
        "change": change.change,
        "current": change.current.summary(),
        "upcoming": change.request.to_json(),
        "reason": change.reason,
        "snooze": {
            "intent": snooze_intent(change, now),
            "how": "send this intent to the scale-intents queue (python -m scaler send FILE) "
            "before the change; it holds the pool as it is now",
        },
    }
    return Event(
        POOL_CHANGE_UPCOMING,
        pool_subject(cluster_id, change.pool),
        derived_id(
            POOL_CHANGE_UPCOMING,
            cluster_id.lower(),
            change.pool,
            change.at.isoformat(),
            state_key(change.request),
        ),
        now,
        data,
    )


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
