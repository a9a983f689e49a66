"""Storage queue adapter: outcomes, (delayed) reconcile requests and the poison queue.

Messages are written as plain UTF-8 JSON; the trigger accepts plain and base64 alike.
"""

from __future__ import annotations

import json
from typing import Any

from azure.storage.queue import QueueServiceClient

from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RECONCILE_QUEUE, RESULTS_QUEUE


class QueueMessages:
    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._reconcile = service.get_queue_client(RECONCILE_QUEUE)
        self._intents = service.get_queue_client(INTENTS_QUEUE)
        self._poison = service.get_queue_client(POISON_QUEUE)
        self._results = service.get_queue_client(RESULTS_QUEUE)

    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        self._results.send_message(_text(outcome))

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        self._reconcile.send_message(_text(request), visibility_timeout=max(0, delay_seconds))

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        self._intents.send_message(_text(message), visibility_timeout=max(0, delay_seconds))

    def park(self, message: dict[str, Any]) -> None:
        self._poison.send_message(_text(message))

    def close(self) -> None:
        self._service.close()


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=False)
