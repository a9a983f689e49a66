"""What the use cases put on the queues, in one place: outcomes (logged, cut to fit, published),
reconcile requests, and intents parked in the poison queue."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID, ClusterRef
from scaler.domain.outcomes import Outcome, bounded
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.ports import MessageGateway

log = logging.getLogger("scaler")


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


def reconcile_message(cluster: ClusterRef, reason: str) -> dict[str, Any]:
    return {
        "subscription_id": cluster.subscription_id,
        "resource_group": cluster.resource_group,
        "cluster": cluster.name,
        "reason": reason,
    }


def cluster_of(body: bytes | str) -> tuple[ClusterRef, str]:
    """A reconcile message's cluster and reason; ValueError when it is not one. Anyone with
    send rights on the queue could write one, so every name is checked like an intent's."""
    try:
        document = json.loads(body)
        cluster = ClusterRef(
            _name(document, "subscription_id", SUBSCRIPTION_ID),
            _name(document, "resource_group", RESOURCE_GROUP_NAME),
            _name(document, "cluster", CLUSTER_NAME),
        )
    except (TypeError, AttributeError, KeyError) as error:
        raise ValueError(f"not a reconcile request ({type(error).__name__})") from None
    return cluster, str(document.get("reason", "wake"))[:20]


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
