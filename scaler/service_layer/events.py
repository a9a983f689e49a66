"""Events after outcomes: every outcome document goes to `scale-results` first, then, best
effort, to the event sink as CloudEvents (scaler/domain/events.py says which).

`MessagesWithEvents` wraps the message gateway, so every path that publishes an outcome
(`reconcile.publish`, a reconcile's batch, a republish after a crash, the intake's rejections)
emits its events without knowing about them. An event is sent only once the outcome is on the
queue, and the sink never raises: an unreachable topic never blocks or loses a scale action.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from scaler.domain.events import Event, UpcomingChange, outcome_events, upcoming_event
from scaler.service_layer.ports import EventSink, MessageGateway

# Event ids sent by this process, remembered so one process does not send the same event twice
# (a pool write reported by two intents' outcomes, a transition announced on every tick).
REMEMBERED_IDS = 4096


class Events:
    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._sent: OrderedDict[str, None] = OrderedDict()

    def outcome(self, document: Mapping[str, Any]) -> None:
        self._send(outcome_events(document))

    def upcoming(self, changes: Iterable[UpcomingChange], now: datetime) -> None:
        self._send([upcoming_event(change, now) for change in changes])

    def _send(self, events: list[Event]) -> None:
        with self._lock:
            fresh = [e for e in events if e.id not in self._sent]
            for event in fresh:
                self._sent[event.id] = None
            while len(self._sent) > REMEMBERED_IDS:
                self._sent.popitem(last=False)
        if fresh:
            self._sink.send(fresh)


class MessagesWithEvents:
    """A MessageGateway whose `publish_outcome` also emits the outcome's events, after it."""

    def __init__(self, messages: MessageGateway, events: Events) -> None:
        self._messages = messages
        self._events = events

    def publish_outcome(self, outcome: dict[str, Any]) -> None:
        self._messages.publish_outcome(outcome)
        self._events.outcome(outcome)

    def request_reconcile(self, request: dict[str, Any], delay_seconds: int) -> None:
        self._messages.request_reconcile(request, delay_seconds)

    def request_reconciles(self, requests: Sequence[dict[str, Any]]) -> None:
        self._messages.request_reconciles(requests)

    def retry_intent(self, message: dict[str, Any], delay_seconds: int) -> None:
        self._messages.retry_intent(message, delay_seconds)

    def park(self, message: dict[str, Any]) -> None:
        self._messages.park(message)
