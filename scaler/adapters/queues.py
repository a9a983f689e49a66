"""Storage queue adapter: outcomes, delayed retries and the poison queue.

The app talks to storage with the same settings as the Functions host (`AzureWebJobsStorage`):
a connection string locally (Azurite), identity-based `AzureWebJobsStorage__*` settings in Azure.
Messages are written as plain UTF-8 JSON; the trigger accepts plain and base64 alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import TokenCredential
from azure.storage.queue import QueueServiceClient

from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE, STORAGE_CONNECTION


def storage_endpoint(env: Mapping[str, str], service: str) -> str | None:
    """`AzureWebJobsStorage__queueServiceUri` (or `__accountName`) → the service URL."""
    explicit = env.get(f"{STORAGE_CONNECTION}__{service}ServiceUri")
    if explicit:
        return explicit
    account = env.get(f"{STORAGE_CONNECTION}__accountName")
    return f"https://{account}.{service}.core.windows.net" if account else None


def queue_service(env: Mapping[str, str], credential: TokenCredential) -> QueueServiceClient:
    connection_string = env.get(STORAGE_CONNECTION)
    if connection_string:
        return QueueServiceClient.from_connection_string(connection_string)
    endpoint = storage_endpoint(env, "queue")
    if endpoint is None:
        raise RuntimeError(
            f"no queue storage configured: set {STORAGE_CONNECTION} (a connection string, for "
            f"Azurite) or {STORAGE_CONNECTION}__queueServiceUri (identity-based, in Azure)"
        )
    return QueueServiceClient(endpoint, credential=credential)


class QueueMessages:
    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._intents = service.get_queue_client(INTENTS_QUEUE)
        self._poison = service.get_queue_client(POISON_QUEUE)
        self._results = service.get_queue_client(RESULTS_QUEUE)

    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        self._results.send_message(_text(outcome))

    def retry_later(self, message: dict[str, Any], delay_seconds: int) -> None:
        self._intents.send_message(_text(message), visibility_timeout=delay_seconds)

    def park(self, message: dict[str, Any]) -> None:
        self._poison.send_message(_text(message))

    def close(self) -> None:
        self._service.close()


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=False)
