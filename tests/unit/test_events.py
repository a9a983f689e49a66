"""The event mapping (scaler/domain/events.py), the service layer's Events (after the queue,
deduplicated, best effort), the timer's upcoming changes, and the Event Grid adapter's failure
handling (bounded, logged once, never raised)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scaler.adapters.events import EventGridSink
from scaler.domain.clusters import ClusterRef
from scaler.domain.events import (
    POOL_CHANGE_UPCOMING,
    POOL_CHANGED,
    Event,
    UpcomingChange,
    capacity_cut,
    outcome_events,
    snooze_intent,
    upcoming_event,
)
from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.service_layer.events import Events, MessagesWithEvents
from scaler.settings import Settings, SettingsError
from tests.fakes import SUB, FakeMessages, Harness, pool

CLUSTER = ClusterRef(SUB, "rg-demo", "aks-demo")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "outcome_id": "i-1@m-1",
        "intent_id": "i-1",
        "cluster": CLUSTER.resource_id,
        "outcome": "applied",
        "final": True,
        "attempt": 1,
        "at": NOW.isoformat(),
        "source": "queue",
        "message_id": "m-1",
        "reason": "why not",
        "error": None,
        "pools": [
            {
                "pool": "batch",
                "before": {"count": 2},
                "requested": {"count": 6},
                "action": "scale",
                "outcome": "started",
                "after": {"count": 6},
                "error": None,
                "desired": {"count": 6},
                "why": {"source": "intent", "detail": "intent i-1", "id": "i-1"},
            },
            {"pool": "web", "outcome": "unchanged", "requested": {"count": 2}},
        ],
    }
    doc.update(overrides)
    return doc


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def send(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]


# --- outcome → events ------------------------------------------------------------------------


def test_an_applied_intent_is_its_outcome_and_one_pool_changed_per_write() -> None:
    outcome, changed = outcome_events(document())
    assert outcome.type == "scaler.intent.applied" and outcome.id == "i-1@m-1"
    assert outcome.subject == CLUSTER.resource_id and outcome.data == document()
    assert outcome.time == NOW and outcome.source == "/aks-pool-scaler"
    assert changed.type == POOL_CHANGED
    assert changed.subject == f"{CLUSTER.resource_id}/agentPools/batch"
    assert changed.data["before"] == {"count": 2} and changed.data["after"] == {"count": 6}
    assert changed.data["desired"] == {"count": 6} and changed.data["why"]["id"] == "i-1"
    assert changed.data["by"] == {
        "source": "queue",
        "intent_id": "i-1",
        "outcome_id": "i-1@m-1",
        "reason": "why not",
    }


@pytest.mark.parametrize(
    "outcome", ["applied", "unchanged", "superseded", "rejected", "poisoned", "dry_run"]
)
def test_every_final_outcome_of_an_intent_has_its_type(outcome: str) -> None:
    events = outcome_events(document(outcome=outcome, pools=[]))
    assert [e.type for e in events] == [f"scaler.intent.{outcome}"]


def test_a_deferral_is_not_final_but_its_writes_are_reported() -> None:
    events = outcome_events(document(outcome="deferred", final=False))
    assert [e.type for e in events] == [POOL_CHANGED]


def test_schedule_outcomes_report_their_writes_and_their_refusals() -> None:
    applied = outcome_events(document(source="timer", intent_id="schedule-1", outcome_id=None))
    assert [e.type for e in applied] == [POOL_CHANGED]
    assert applied[0].data["by"]["source"] == "timer"
    refused = outcome_events(
        document(source="timer", outcome="rejected", pools=[], cluster=None, outcome_id=None)
    )
    assert [(e.type, e.subject, e.id) for e in refused] == [
        ("scaler.schedule.rejected", None, "i-1")
    ]


def test_one_write_reported_by_two_outcomes_has_one_event_id() -> None:
    first = outcome_events(document())[1]
    second = outcome_events(document(intent_id="i-2", outcome_id="i-2@m-2"))[1]
    assert first.id == second.id
    later = outcome_events(document(at=(NOW + timedelta(minutes=1)).isoformat()))[1]
    assert later.id != first.id


# --- capacity cuts and the snooze ------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "request_", "cut"),
    [
        (pool("b", 3), Power("Stopped"), "stop"),
        (pool("b", 3, power="Stopped"), Power("Stopped"), None),
        (pool("b", 3), Power("Running"), None),
        (pool("b", 3), ManualCount(1), "scale down from 3 to 1 node(s)"),
        (pool("b", 3), ManualCount(3), None),
        (pool("b", 3), ManualCount(5), None),
        (pool("b", 3, autoscale=(1, 10)), ManualCount(5), "autoscaler off"),
        (pool("b", 3, autoscale=(2, 10)), Autoscale(1, 10), "lower autoscaler bounds"),
        (pool("b", 3, autoscale=(2, 10)), Autoscale(2, 5), "lower autoscaler bounds"),
        (pool("b", 3, autoscale=(2, 10)), Autoscale(2, 12), None),
        (pool("b", 3), Autoscale(1, 5), "autoscaler on with 1-5"),
        (pool("b", 3), Autoscale(3, 5), None),
    ],
)
def test_what_lowers_capacity(current: Any, request_: Any, cut: str | None) -> None:
    found = capacity_cut(current, request_)
    assert (found is None) if cut is None else (found is not None and found.startswith(cut))


def change(at: datetime, current: Any = None) -> UpcomingChange:
    return UpcomingChange(
        CLUSTER, "batch", at, current or pool("batch", 4), Power("Stopped"), "stop", "outside"
    )


def test_the_snooze_is_a_one_hour_hold_of_the_pool_as_it_is() -> None:
    assert snooze_intent(change(NOW + timedelta(minutes=15)), NOW) == {
        "subscription_id": SUB,
        "resource_group": "rg-demo",
        "cluster": "aks-demo",
        "pools": {"batch": {"count": 4}},
        "hold": "PT1H",
        "reason": f"snooze the scheduled change of batch at {(NOW + timedelta(minutes=15)).isoformat()}",
    }
    autoscaled = change(NOW + timedelta(minutes=5), pool("batch", 4, autoscale=(2, 8)))
    assert snooze_intent(autoscaled, NOW)["pools"] == {"batch": {"min": 2, "max": 8}}
    # A change further away than the hour allows gets a hold that outlasts it.
    assert snooze_intent(change(NOW + timedelta(minutes=90)), NOW)["hold"] == "PT2H"


def test_an_upcoming_event_has_an_id_of_its_transition() -> None:
    event = upcoming_event(change(NOW + timedelta(minutes=10)), NOW)
    again = upcoming_event(change(NOW + timedelta(minutes=10)), NOW + timedelta(minutes=5))
    assert event.type == POOL_CHANGE_UPCOMING and event.id == again.id
    assert event.data["in_minutes"] == 10 and again.data["in_minutes"] == 5
    assert event.data["upcoming"] == {"power": "Stopped"} and event.data["change"] == "stop"
    other = upcoming_event(change(NOW + timedelta(minutes=11)), NOW)
    assert other.id != event.id


# --- the service layer -----------------------------------------------------------------------


def test_events_follow_the_queue_and_are_not_sent_twice_by_one_process() -> None:
    sink = RecordingSink()
    queue = FakeMessages(lambda: NOW)
    messages = MessagesWithEvents(queue, Events(sink))
    messages.publish_outcome(document())
    messages.publish_outcome(document(intent_id="i-2", outcome_id="i-2@m-2"))
    assert len(queue.published) == 2
    assert [e.type for e in sink.events] == [
        "scaler.intent.applied",
        POOL_CHANGED,
        "scaler.intent.applied",  # the second intent; its write is the same one
    ]


def test_a_failing_queue_sends_no_event() -> None:
    class Broken(FakeMessages):
        def publish_outcome(self, outcome: dict[str, Any]) -> None:
            raise OSError("storage down")

    sink = RecordingSink()
    with pytest.raises(OSError):
        MessagesWithEvents(Broken(lambda: NOW), Events(sink)).publish_outcome(document())
    assert sink.events == []


SCHEDULE = """
timezone = "Europe/Amsterdam"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = { power = "Stopped" }
windows = [{ days = "daily", start = "09:00", end = "13:10", state = 4 }]
[clusters.pools.web]
outside = 2
windows = [{ days = "daily", start = "09:00", end = "18:00", state = 2 }]
"""


def harness(notice: int = 15) -> tuple[Harness, RecordingSink]:
    h = Harness(SCHEDULE, SCALER_NOTICE_MINUTES=notice)  # clock: 13:00 in Amsterdam
    h.clusters.add(CLUSTER, pool("batch", 4), pool("web", 2))
    sink = RecordingSink()
    h.reconciler._events = Events(sink)
    return h, sink


def test_the_timer_announces_a_stop_within_the_notice_once() -> None:
    h, sink = harness()
    h.tick()
    (event,) = sink.events
    assert event.type == POOL_CHANGE_UPCOMING and event.data["pool"] == "batch"
    assert event.data["at"] == "2026-11-25T12:10:00+00:00" and event.data["in_minutes"] == 10
    h.clock.advance(300)
    h.tick()
    assert len(sink.events) == 1  # the same transition: once


def test_nothing_is_announced_beyond_the_notice_or_with_notice_zero() -> None:
    for notice in (5, 0):
        h, sink = harness(notice)
        h.tick()
        assert sink.events == []


def test_a_hold_over_the_transition_silences_it() -> None:
    h, sink = harness()
    h.send({"pools": {"batch": 4}, "hold": "PT1H"})
    h.settle()
    h.tick()
    assert sink.events == []


# --- settings and the adapter ----------------------------------------------------------------


def test_settings() -> None:
    settings = Settings.from_env({})
    assert settings.eventgrid_endpoint == "" and settings.notice_minutes == 15
    with pytest.raises(SettingsError, match="SCALER_EVENTGRID_ENDPOINT"):
        Settings.from_env({"SCALER_EVENTGRID_ENDPOINT": "http://topic/api/events"})
    for bad in ("-1", "x", "1441"):
        with pytest.raises(SettingsError, match="SCALER_NOTICE_MINUTES"):
            Settings.from_env({"SCALER_NOTICE_MINUTES": bad})


class StaticCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("token", int(NOW.timestamp()) + 10**9)


def test_an_unreachable_topic_is_logged_once_then_left_alone_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    now = [0.0]
    credential = StaticCredential()
    sink = EventGridSink(f"https://127.0.0.1:{port}/api/events", credential, lambda: now[0])
    caplog.set_level(logging.DEBUG)
    events = outcome_events(document())
    sink.send(events)  # refused: logged, not raised
    sink.send(events)  # paused: not even tried
    now[0] += 61
    sink.send(events)  # tried again, refused again: not logged again
    sink.close()
    assert credential.scopes[0] == ("https://eventgrid.azure.net/.default",)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage()[:26] for r in warnings] == ["events: could not publish "]
    assert not any("is not a known attribute" in r.getMessage() for r in caplog.records)
