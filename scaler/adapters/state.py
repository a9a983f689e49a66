"""The desired-state store on Table storage (azure-data-tables).

One table, `scalerstate`:

  PartitionKey "<subscription>|<resource group>|<cluster>" (lower case) — one per cluster, so
  one query reads everything a reconcile needs and one transaction records its outcomes:
      RowKey "source|<intent id>"   a source and its intent's outcome (see ports.SourceRecord)
      RowKey "pool|<name>"          the pool's memo: lease baseline, schedule state acted on
      RowKey "cluster"              when the next reconcile is queued, the backoff count
  PartitionKey "ids", RowKey "<intent id>" — which cluster an id belongs to, so one id cannot
      be used for two clusters (claimed by the reconcile, up to 100 per transaction).

Every write is conditional on the row's eTag (or an insert), so concurrent reconciles cannot
overwrite each other's outcomes. Property values stay within Table limits: outcomes are bounded
before they get here (domain/outcomes.bounded) and intents are at most 100 pools.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import (
    TableClient,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import AKS_MAX_NODES_PER_POOL, PoolRequest, parse_pool_request
from scaler.domain.resolution import PoolMemo
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.ports import (
    ClusterRecords,
    Marker,
    MemoRecord,
    SourceRecord,
    Status,
    Write,
)
from scaler.settings import STATE_TABLE

_SOURCE = "source|"
_POOL = "pool|"
_MARKER = "cluster"
_IDS = "ids"
# Table storage: at most 100 operations per transaction.
_BATCH = 100


class TableState:
    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self._table: TableClient = service.get_table_client(STATE_TABLE)

    # -- DesiredStateStore -------------------------------------------------------------------

    def load(self, cluster: ClusterRef) -> ClusterRecords:
        # Tombstones (final, published sources that ask for nothing any more) stay for
        # redelivery detection (a point read) but are not what a reconcile needs.
        rows = self._table.query_entities(
            "PartitionKey eq @pk and not (Status eq 'final' and Active eq false "
            "and Published eq true)",
            parameters={"pk": _partition(cluster)},
        )
        records = ClusterRecords()
        for row in rows:
            key = str(row["RowKey"])
            if key.startswith(_SOURCE):
                record = _source_record(row)
                records.sources[record.source.id] = record
            elif key.startswith(_POOL):
                memo = _memo_record(row)
                records.memos[memo.pool] = memo
            elif key == _MARKER:
                records = ClusterRecords(records.sources, records.memos, _marker(row))
        return records

    def record(self, cluster: ClusterRef, record: SourceRecord) -> SourceRecord | None:
        try:
            self._table.create_entity(_entity(cluster, record))
        except ResourceExistsError:
            return self.source(cluster, record.source.id)
        return None

    def commit(self, cluster: ClusterRef, writes: Sequence[Write]) -> bool:
        operations = [_operation(cluster, write) for write in writes]
        for start in range(0, len(operations), _BATCH):
            batch = operations[start : start + _BATCH]
            try:
                if len(batch) == 1:
                    _single(self._table, batch[0])
                else:
                    self._table.submit_transaction(batch)
            except (TableTransactionError, ResourceExistsError, ResourceModifiedError):
                return False
            except ResourceNotFoundError:
                return False
            except HttpResponseError as error:
                if error.status_code in (409, 412):
                    return False
                raise
        return True

    def mark_published(self, cluster: ClusterRef, intent_ids: Sequence[str]) -> None:
        merges = [
            (
                "update",
                {"PartitionKey": _partition(cluster), "RowKey": _SOURCE + i, "Published": True},
                {"mode": UpdateMode.MERGE},
            )
            for i in intent_ids
        ]
        for start in range(0, len(merges), _BATCH):
            batch = merges[start : start + _BATCH]
            if len(batch) == 1:
                self._table.update_entity(batch[0][1], mode=UpdateMode.MERGE)
            else:
                self._table.submit_transaction(batch)

    def claim_ids(self, cluster: ClusterRef, ids: Sequence[str]) -> Mapping[str, str]:
        mine = cluster.short_name
        owner = _partition(cluster)
        entities = [
            {"PartitionKey": _IDS, "RowKey": intent_id, "Cluster": owner, "Name": mine}
            for intent_id in ids
        ]
        taken: dict[str, str] = {}
        for start in range(0, len(entities), _BATCH):
            batch = entities[start : start + _BATCH]
            try:
                self._table.submit_transaction([("create", entity) for entity in batch])
                continue
            except (TableTransactionError, ResourceExistsError, HttpResponseError):
                pass  # some id is known already: claim one by one to find out which
            for entity in batch:
                try:
                    self._table.create_entity(entity)
                except ResourceExistsError:
                    row = self._table.get_entity(_IDS, entity["RowKey"])
                    if row.get("Cluster") != owner:
                        taken[entity["RowKey"]] = str(row.get("Name", "another cluster"))
        return taken

    def source(self, cluster: ClusterRef, intent_id: str) -> SourceRecord | None:
        try:
            row = self._table.get_entity(_partition(cluster), _SOURCE + intent_id)
        except ResourceNotFoundError:
            return None
        return _source_record(row)

    # -- lifecycle ---------------------------------------------------------------------------

    def create_table(self) -> None:
        """For local stacks; in Azure, infra/ creates the table."""
        self._service.create_table_if_not_exists(STATE_TABLE)

    def close(self) -> None:
        self._table.close()
        self._service.close()


# -- rows ----------------------------------------------------------------------------------------


def _partition(cluster: ClusterRef) -> str:
    return f"{cluster.subscription_id}|{cluster.resource_group}|{cluster.name}".lower()


def _operation(cluster: ClusterRef, write: Write) -> tuple[str, dict[str, Any], dict[str, Any]]:
    entity = _entity(cluster, write)
    if write.version is None:
        return (
            ("upsert", entity, {"mode": UpdateMode.REPLACE})
            if isinstance(write, Marker)
            else ("create", entity, {})
        )
    return (
        "update",
        entity,
        {
            "mode": UpdateMode.REPLACE,
            "etag": write.version,
            "match_condition": MatchConditions.IfNotModified,
        },
    )


def _single(table: TableClient, operation: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    kind, entity, options = operation
    if kind == "create":
        table.create_entity(entity)
    elif kind == "upsert":
        table.upsert_entity(entity, **options)
    else:
        table.update_entity(entity, **options)


def _entity(cluster: ClusterRef, write: Write) -> dict[str, Any]:
    base = {"PartitionKey": _partition(cluster)}
    if isinstance(write, SourceRecord):
        source = write.source
        entity: dict[str, Any] = {
            **base,
            "RowKey": _SOURCE + source.id,
            "Kind": source.kind.value,
            "Pools": json.dumps({n: r.to_json() for n, r in source.pools.items()}),
            "IssuedAt": source.issued_at,
            "AcceptedAt": source.accepted_at,
            "MessageId": write.message_id,
            "Status": write.status.value,
            "Active": write.active,
            "Published": write.published,
            "Attempt": write.attempt,
            "Renewal": write.renewal,
            "Claimed": write.claimed,
        }
        optional = {
            "Until": source.until,
            "ExpiresAt": source.expires_at,
            "Releases": source.releases,
            "Reason": source.reason,
            "Outcome": json.dumps(write.outcome) if write.outcome is not None else None,
        }
        entity.update({k: v for k, v in optional.items() if v is not None})
        return entity
    if isinstance(write, MemoRecord):
        entity = {**base, "RowKey": _POOL + write.pool}
        memo = write.memo
        if memo.baseline is not None:
            entity["Baseline"] = json.dumps(memo.baseline.to_json())
        if memo.schedule_seen is not None:
            entity["ScheduleSeen"] = memo.schedule_seen
        if write.last_write_at is not None:
            entity["LastWriteAt"] = write.last_write_at
        return entity
    entity = {**base, "RowKey": _MARKER, "Attempt": write.attempt}
    if write.next_wake_at is not None:
        entity["NextWakeAt"] = write.next_wake_at
    return entity


def _request(text: str) -> PoolRequest:
    return parse_pool_request(json.loads(text), "stored record", AKS_MAX_NODES_PER_POOL)


def _when(row: Mapping[str, Any], name: str) -> datetime | None:
    value = row.get(name)
    return value if isinstance(value, datetime) else None


def _source_record(row: Any) -> SourceRecord:
    pools = {name: _request(json.dumps(value)) for name, value in _pools(row["Pools"])}
    issued_at = _when(row, "IssuedAt")
    accepted_at = _when(row, "AcceptedAt")
    assert issued_at is not None and accepted_at is not None
    source = Source(
        id=str(row["RowKey"]).removeprefix(_SOURCE),
        kind=SourceKind(row["Kind"]),
        pools=pools,
        issued_at=issued_at,
        accepted_at=accepted_at,
        until=_when(row, "Until"),
        expires_at=_when(row, "ExpiresAt"),
        releases=row.get("Releases"),
        reason=row.get("Reason"),
    )
    outcome = row.get("Outcome")
    return SourceRecord(
        source=source,
        message_id=str(row.get("MessageId", "")),
        status=Status(row.get("Status", Status.PENDING.value)),
        active=bool(row.get("Active", True)),
        outcome=json.loads(outcome) if outcome else None,
        published=bool(row.get("Published", False)),
        attempt=int(row.get("Attempt", 0)),
        renewal=int(row.get("Renewal", 0)),
        claimed=bool(row.get("Claimed", False)),
        version=str(row.metadata["etag"]),
    )


def _pools(text: str) -> Iterable[tuple[str, Any]]:
    return dict(json.loads(text)).items()


def _memo_record(row: Any) -> MemoRecord:
    baseline = row.get("Baseline")
    return MemoRecord(
        pool=str(row["RowKey"]).removeprefix(_POOL),
        memo=PoolMemo(
            baseline=_request(baseline) if baseline else None,
            schedule_seen=row.get("ScheduleSeen"),
        ),
        last_write_at=_when(row, "LastWriteAt"),
        version=str(row.metadata["etag"]),
    )


def _marker(row: Any) -> Marker:
    return Marker(
        next_wake_at=_when(row, "NextWakeAt"),
        attempt=int(row.get("Attempt", 0)),
        version=str(row.metadata["etag"]),
    )
