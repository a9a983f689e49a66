"""Storage queue adapter: outcomes, (delayed) reconcile requests and the poison queue.

Messages are written as plain UTF-8 JSON; the trigger accepts plain and base64 alike.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.storage.queue import QueueServiceClient

from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RECONCILE_QUEUE, RESULTS_QUEUE

# Concurrent sends of a tick's fan-out (the storage client's connection pool holds 10).
FAN_OUT_THREADS = 8


class QueueMessages:
    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._reconcile = service.get_queue_client(RECONCILE_QUEUE)
        self._intents = service.get_queue_client(INTENTS_QUEUE)
        self._poison = service.get_queue_client(POISON_QUEUE)
        self._results = service.get_queue_client(RESULTS_QUEUE)
        self._lock = threading.Lock()
        self._senders: ThreadPoolExecutor | None = None  # a tick's fan-out, made on first use

    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        self._results.send_message(_text(outcome))

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        self._reconcile.send_message(_text(request), visibility_timeout=max(0, delay_seconds))

    def request_reconciles(self, requests: Sequence[dict[str, Any]]) -> None:
        """Many sends at once: each is one HTTP round trip, so a tick over hundreds of clusters
        takes about as long as one over ten. Raises the first failure once all have been
        tried (the timer's next run sends them again)."""
        with self._lock:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(FAN_OUT_THREADS, "scale-reconcile-send")
            senders = self._senders
        for future in [senders.submit(self.request_reconcile, r, 0) for r in requests]:
            future.result()

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        self._intents.send_message(_text(message), visibility_timeout=max(0, delay_seconds))

    def park(self, message: dict[str, Any]) -> None:
        self._poison.send_message(_text(message))

    def close(self) -> None:
        with self._lock:
            if self._senders is not None:
                self._senders.shutdown(wait=True)
                self._senders = None
        self._service.close()


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=False)
