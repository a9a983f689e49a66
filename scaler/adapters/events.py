"""Event Grid adapter: CloudEvents to a topic with the app's identity (`EventGrid Data Sender`).

Best effort and bounded: one try and one retry, short connect and read timeouts, and after a
failure the topic is left alone for PAUSE_SECONDS (events meanwhile are dropped and counted),
so a topic that is down or unreachable costs a scale action at most one bounded attempt and
one log line, never an exception. The outcome on `scale-results` is the record; events are
notifications.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scaler.domain.events import Event

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("scaler")

# The token scope of Event Grid data-plane calls (what the SDK asks a TokenCredential for).
EVENTGRID_SCOPE = "https://eventgrid.azure.net/.default"
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 5.0
PAUSE_SECONDS = 60.0
# Per-call pipeline options: the SDK's basic-tier client takes no pipeline settings in its
# constructor, so these go with each send.
_SEND_OPTIONS: dict[str, Any] = {
    "retry_total": 1,
    "retry_backoff_factor": 0.2,
    "connection_timeout": CONNECT_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
}


class _PerCallOptionsFilter(logging.Filter):
    """The SDK also hands per-call options to its CloudEvent model, which logs a warning for
    each ("retry_total is not a known attribute ..."): noise for our own options only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            "is not a known attribute" in str(record.msg) and args and args[0] in _SEND_OPTIONS
        )


_SERIALIZATION_LOGGER = "azure.eventgrid._legacy._generated._serialization"


class EventGridSink:
    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from azure.eventgrid import EventGridPublisherClient

        noisy = logging.getLogger(_SERIALIZATION_LOGGER)
        if not any(isinstance(f, _PerCallOptionsFilter) for f in noisy.filters):
            noisy.addFilter(_PerCallOptionsFilter())
        self._endpoint = endpoint
        self._client = EventGridPublisherClient(endpoint, credential)
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._failing = False
        self._dropped = 0

    def send(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            if self._clock() < self._paused_until:
                self._dropped += len(events)
                log.debug("events: %s event(s) dropped, the topic is failing", len(events))
                return
        try:
            self._client.send([_cloud_event(e) for e in events], **_SEND_OPTIONS)
        except Exception as error:  # best effort: nothing may reach the scale action
            with self._lock:
                self._paused_until = self._clock() + PAUSE_SECONDS
                first = not self._failing
                self._failing = True
                self._dropped += len(events)
            if first:  # once per outage, not once per event
                log.warning(
                    "events: could not publish to %s (%s: %s); events are dropped while it "
                    "fails (tried again every %.0f s); outcomes still go to scale-results",
                    self._endpoint,
                    type(error).__name__,
                    str(error)[:300],
                    PAUSE_SECONDS,
                )
            return
        with self._lock:
            recovered, dropped = self._failing, self._dropped
            self._failing, self._dropped = False, 0
        if recovered:
            log.warning(
                "events: publishing again to %s; %s event(s) dropped", self._endpoint, dropped
            )

    def close(self) -> None:
        self._client.close()


def _cloud_event(event: Event) -> Any:
    from azure.core.messaging import CloudEvent

    extra: dict[str, Any] = {} if event.time is None else {"time": event.time}
    return CloudEvent(
        source=event.source,
        type=event.type,
        data=event.data,
        subject=event.subject,
        id=event.id,
        datacontenttype="application/json",
        **extra,
    )
