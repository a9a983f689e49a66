"""What the use cases put on the queues, in one place: outcomes (logged, cut to fit, published),
reconcile requests, and intents parked in the poison queue."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID, ClusterRef
from scaler.domain.outcomes import Outcome, bounded
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.ports import MessageGateway

log = logging.getLogger("scaler")

# A queue message holds 64 KiB; a cluster whose pools would not fit reads its own.
MAX_MESSAGE_CHARS = 60_000


def publish(messages: MessageGateway, outcome: Outcome) -> Outcome:
    """Log an outcome and put it on `scale-results`, cut to fit (the one way every use case
    publishes one)."""
    document = bounded(outcome.to_json())
    log_outcome(document)
    messages.publish_outcome(document)
    return outcome


def log_outcome(document: Mapping[str, Any]) -> None:
    """The outcome as one log line (the whole document in `outcome`, read by the local console),
    then as structured telemetry: one record for it and one per pool (scaler/telemetry.py)."""
    from scaler.telemetry import emit_outcome

    log.info(
        "intent %s: %s",
        document.get("intent_id"),
        document.get("outcome"),
        extra={"correlation_id": document.get("intent_id"), "outcome": json.dumps(document)},
    )
    emit_outcome(document)


def run_outcome_id(kind: str, now: datetime, cluster: ClusterRef | None = None) -> str:
    """The id of an outcome no intent owns (a schedule run, a reconcile of its own): the kind,
    the instant, and the cluster when there is one."""
    run = f"{kind}-{now:%Y%m%dT%H%M%SZ}"
    return f"{run}-{cluster.resource_group}-{cluster.name}" if cluster is not None else run


def reconcile_message(
    cluster: ClusterRef,
    reason: str,
    selected_by: str | None = None,
    pools: list[dict[str, Any]] | None = None,
    read_at: datetime | None = None,
) -> dict[str, Any]:
    """A request to reconcile one cluster. `selected_by`: the schedule's tag selector that
    picked the cluster; `pools`: its pools as read at `read_at` (a tick's LIST managedClusters,
    or the reconcile that comes back after throttling), so the reconcile needs no read of its
    own — left out when they would not fit in a queue message."""
    message: dict[str, Any] = {
        "subscription_id": cluster.subscription_id,
        "resource_group": cluster.resource_group,
        "cluster": cluster.name,
        "reason": reason,
    }
    if selected_by is not None:
        message["selected_by"] = selected_by
    if pools is not None and read_at is not None:
        listed = {**message, "pools": pools, "read_at": read_at.isoformat()}
        if len(json.dumps(listed)) <= MAX_MESSAGE_CHARS:
            return listed
    return message


@dataclass(frozen=True)
class ReconcileRequest:
    cluster: ClusterRef
    reason: str
    selected_by: str | None = None
    pools: object = None  # the snapshot, checked by the gateway that restores it
    read_at: datetime | None = None


def cluster_of(body: bytes | str) -> ReconcileRequest:
    """A reconcile message; ValueError when it is not one. Only the app sends these (producers
    may send to `scale-intents` only), but every name is still checked like an intent's."""
    try:
        document = json.loads(body)
        cluster = ClusterRef(
            _name(document, "subscription_id", SUBSCRIPTION_ID),
            _name(document, "resource_group", RESOURCE_GROUP_NAME),
            _name(document, "cluster", CLUSTER_NAME),
        )
        selected_by = document.get("selected_by")
        read_at = document.get("read_at")
        return ReconcileRequest(
            cluster,
            str(document.get("reason", "wake"))[:20],
            selected_by[:800] if isinstance(selected_by, str) else None,
            document.get("pools"),
            _aware(datetime.fromisoformat(read_at)) if isinstance(read_at, str) else None,
        )
    except (TypeError, AttributeError, KeyError) as error:
        raise ValueError(f"not a reconcile request ({type(error).__name__})") from None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("read_at has no time zone")
    return moment


def source_message(source: Source, cluster: ClusterRef | None) -> dict[str, Any]:
    """The intent as a queue message again, for the poison queue: its target, what it asked,
    and until when a hold or lease was to last."""
    message: dict[str, Any] = {"id": source.id}
    if cluster is not None:
        message.update(
            subscription_id=cluster.subscription_id,
            resource_group=cluster.resource_group,
            cluster=cluster.name,
        )
    if source.releases is not None:
        message["release"] = source.releases
    else:
        message["pools"] = {name: request.to_json() for name, request in source.pools.items()}
    message["issued_at"] = source.issued_at.isoformat()
    if source.until is not None and source.kind is SourceKind.HOLD:
        message["hold_until"] = source.until.isoformat()
    if source.until is not None and source.kind is SourceKind.LEASE:
        # A lease is a duration from acceptance; parked, it says when it was to end.
        message["reason"] = f"lease until {source.until.isoformat()}" + (
            f"; {source.reason}" if source.reason else ""
        )
    elif source.reason:
        message["reason"] = source.reason
    return message


def _name(document: Mapping[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = document[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{key} is not valid")
    return value
