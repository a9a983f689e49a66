"""Table storage adapter (azure-data-tables) for pool records and finished intents.

One table, two kinds of rows:
  PartitionKey "<subscription>|<resource group>|<cluster>", RowKey "pool|<name>": a PoolRecord.
      One query per cluster reads them all; writes are conditional on the row's eTag.
  PartitionKey "intent|<id>", RowKey "": an intent that reached its final outcome, with that
      outcome and whether it was published, so a second delivery of the same message changes
      nothing and at most finishes publishing.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from scaler.domain.clusters import ClusterRef
from scaler.domain.pool_records import PoolRecord
from scaler.domain.pools import AKS_MAX_NODES_PER_POOL, parse_pool_request
from scaler.ports import FinishedIntent
from scaler.settings import STATE_TABLE

_POOL_ROW = "pool|"


class TableState:
    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self._table: TableClient = service.get_table_client(STATE_TABLE)

    def pool_records(self, cluster: ClusterRef) -> dict[str, PoolRecord]:
        partition = _partition(cluster)
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        rows = self._table.query_entities(
            query, parameters={"pk": partition, "low": _POOL_ROW, "high": "pool}"}
        )
        records = (_record(row) for row in rows)
        return {record.pool: record for record in records}

    def save_pool_record(
        self, cluster: ClusterRef, record: PoolRecord, replacing: PoolRecord | None
    ) -> bool:
        """Write `record` if the stored row is still `replacing` (or absent); False if another
        writer got there first, so the caller re-reads and decides again."""
        entity: dict[str, Any] = {
            "PartitionKey": _partition(cluster),
            "RowKey": _POOL_ROW + record.pool,
            "IntentId": record.intent_id,
            "IssuedAt": record.issued_at,
            "Requested": json.dumps(record.requested.to_json()),
        }
        if record.hold_until is not None:  # REPLACE drops a hold the new record does not set
            entity["HoldUntil"] = record.hold_until
        try:
            if replacing is None:
                self._table.create_entity(entity)
            else:
                self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=replacing.version,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False
        except HttpResponseError as error:
            if error.status_code == 412:
                return False
            raise
        return True

    def delete_pool_record(self, cluster: ClusterRef, record: PoolRecord) -> None:
        # Gone or rewritten meanwhile: either way not ours to delete any more.
        with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
            self._table.delete_entity(
                _partition(cluster),
                _POOL_ROW + record.pool,
                etag=record.version,
                match_condition=MatchConditions.IfNotModified,
            )

    def finished(self, intent_id: str) -> FinishedIntent | None:
        try:
            row = self._table.get_entity(f"intent|{intent_id}", "")
        except ResourceNotFoundError:
            return None
        return FinishedIntent(json.loads(row["Outcome"]), bool(row.get("Published")))

    def mark_finished(self, intent_id: str, outcome: dict[str, Any]) -> bool:
        try:
            self._table.create_entity(
                {
                    "PartitionKey": f"intent|{intent_id}",
                    "RowKey": "",
                    "Outcome": json.dumps(outcome),
                    "Published": False,
                    "FinishedAt": datetime.now(UTC),
                }
            )
        except ResourceExistsError:
            return False
        return True

    def mark_published(self, intent_id: str) -> None:
        self._table.update_entity(
            {"PartitionKey": f"intent|{intent_id}", "RowKey": "", "Published": True},
            mode=UpdateMode.MERGE,
        )

    def create_table(self) -> None:
        """For local stacks; in Azure, infra/ creates the table."""
        self._service.create_table_if_not_exists(STATE_TABLE)

    def close(self) -> None:
        self._table.close()
        self._service.close()


def _partition(cluster: ClusterRef) -> str:
    return f"{cluster.subscription_id}|{cluster.resource_group}|{cluster.name}".lower()


def _record(row: Any) -> PoolRecord:
    hold_until = row.get("HoldUntil")
    issued_at = row["IssuedAt"]
    assert isinstance(issued_at, datetime)
    return PoolRecord(
        pool=str(row["RowKey"]).removeprefix(_POOL_ROW),
        intent_id=str(row["IntentId"]),
        issued_at=issued_at,
        requested=parse_pool_request(
            json.loads(str(row["Requested"])), "stored record", AKS_MAX_NODES_PER_POOL
        ),
        hold_until=hold_until if isinstance(hold_until, datetime) else None,
        version=str(row.metadata["etag"]),
    )
