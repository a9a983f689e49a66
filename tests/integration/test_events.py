"""Events end to end: function_app → core → `azure-eventgrid` (the real SDK, with the app's
ManagedIdentityCredential) → the AKS emulator's Event Grid route, which checks the bearer token
was issued for Event Grid and that the body is a CloudEvents 1.0 batch.

An applied intent, a rejected one and an upcoming scheduled stop arrive with their documented
types and data; an unreachable topic never blocks or loses a scale action."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine

from local.stack import LocalStack
from scaler import bootstrap
from scaler.domain.events import derived_id
from tests.app_under_test import SUB, App

CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-demo/providers/Microsoft.ContainerService"
    "/managedClusters/aks-demo"
)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# A minute boundary a little ahead of now: the window under test ends there.
BOUNDARY = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)


@pytest.fixture
def events_on(
    app: App, stack: LocalStack, settings_override: Callable[..., None]
) -> Callable[[], list[dict[str, Any]]]:
    """Events go to the local topic; returns a reader of the CloudEvents that arrived."""
    settings_override(SCALER_EVENTGRID_ENDPOINT=stack.emulator.eventgrid_endpoint)
    return lambda: [entry["event"] for entry in app.emulator.events()]


def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(event["type"], []).append(event)
    return found


def test_an_applied_intent_arrives_as_intent_applied_and_pool_changed(
    app: App, events_on: Callable[[], list[dict[str, Any]]]
) -> None:
    app.deliver('{"id": "ev-1", "pools": {"batch": 6}, "reason": "nightly run"}')
    app.settle()
    outcome = app.only_result()  # the queue stays
    assert outcome["outcome"] == "applied"

    events = by_type(events_on())
    assert sorted(events) == ["scaler.intent.applied", "scaler.pool.changed"]
    (applied,) = events["scaler.intent.applied"]
    assert applied["specversion"] == "1.0" and applied["source"] == "/aks-pool-scaler"
    assert applied["subject"] == CLUSTER_ID
    assert applied["id"] == outcome["outcome_id"]
    assert applied["datacontenttype"] == "application/json"
    assert applied["data"] == outcome  # the outcome document, exactly as on scale-results
    (changed,) = events["scaler.pool.changed"]
    assert changed["subject"] == f"{CLUSTER_ID}/agentPools/batch"
    data = changed["data"]
    assert data["pool"] == "batch" and data["action"] == "scale"
    assert data["before"]["count"] == 2 and data["after"]["count"] == 6
    assert data["requested"] == {"count": 6} and data["desired"] == {"count": 6}
    assert data["why"]["source"] == "intent" and data["why"]["id"] == "ev-1"
    assert data["by"] == {
        "source": "queue",
        "intent_id": "ev-1",
        "outcome_id": outcome["outcome_id"],
        "reason": "nightly run",
    }


def test_a_rejected_intent_arrives_as_intent_rejected_with_the_reason(
    app: App, events_on: Callable[[], list[dict[str, Any]]]
) -> None:
    app.deliver('{"id": "ev-2", "pools": {"batch": 4, "system": 0}}')
    app.settle()
    outcome = app.only_result()
    assert outcome["outcome"] == "rejected"
    assert app.emulator.writes() == []

    (rejected,) = events_on()
    assert rejected["type"] == "scaler.intent.rejected" and rejected["subject"] == CLUSTER_ID
    assert rejected["data"]["intent_id"] == "ev-2"
    assert rejected["data"]["error"]["code"] == "SystemPoolMinimum"
    assert rejected["data"]["error"]["field"] == "pools.system"


def test_an_invalid_intent_rejected_at_once_is_an_event_too(
    app: App, events_on: Callable[[], list[dict[str, Any]]]
) -> None:
    app.deliver('{"id": "ev-3", "pools": {"batch": -1}}')
    (rejected,) = events_on()
    assert rejected["type"] == "scaler.intent.rejected"
    assert rejected["data"]["intent_id"] == "ev-3" and rejected["data"]["error"]["field"]


# --- the schedule's upcoming stop ------------------------------------------------------------


def hhmm(instant: datetime) -> str:
    return instant.astimezone(AMSTERDAM).strftime("%H:%M")


def stop_at_boundary_schedule() -> str:
    """batch runs with 2 nodes in a window that ends at BOUNDARY, and is stopped outside."""
    start = BOUNDARY - timedelta(hours=2)
    return f"""
timezone = "Europe/Amsterdam"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = {{ power = "Stopped" }}
windows = [{{ days = "daily", start = "{hhmm(start)}", end = "{hhmm(BOUNDARY)}", state = 2 }}]
"""


@pytest.fixture
def at() -> Iterator[Callable[[timedelta], None]]:
    travellers: list[time_machine.travel] = []

    def travel(offset: timedelta) -> None:
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(BOUNDARY + offset, tick=True)
        traveller.start()
        travellers.append(traveller)

    yield travel
    for traveller in travellers:
        traveller.stop()


@pytest.fixture
def stop_schedule(app: App, tmp_path: Path, settings_override: Callable[..., None]) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(stop_at_boundary_schedule())
    settings_override(SCALER_SCHEDULE_FILE=str(path))


def test_a_scheduled_stop_is_announced_once_before_it_happens_with_the_hold_to_snooze_it(
    app: App,
    events_on: Callable[[], list[dict[str, Any]]],
    stop_schedule: None,
    at: Callable[[timedelta], None],
) -> None:
    at(-timedelta(minutes=10))  # inside SCALER_NOTICE_MINUTES (15)
    app.tick()
    assert app.emulator.writes() == []  # nothing to do yet: batch is at 2
    (upcoming,) = events_on()
    assert upcoming["type"] == "scaler.pool.change-upcoming"
    assert upcoming["subject"] == f"{CLUSTER_ID}/agentPools/batch"
    data = upcoming["data"]
    assert datetime.fromisoformat(data["at"]) == BOUNDARY
    assert data["change"] == "stop" and data["upcoming"] == {"power": "Stopped"}
    assert data["in_minutes"] == 10 and data["current"]["count"] == 2
    hold = data["snooze"]["intent"]
    assert hold == {
        "subscription_id": SUB,
        "resource_group": "rg-demo",
        "cluster": "aks-demo",
        "pools": {"batch": {"count": 2}},
        "hold": "PT1H",
        "reason": f"snooze the scheduled change of batch at {BOUNDARY.isoformat()}",
    }
    # The id is the transition's: a second announcement would have the same one.
    assert upcoming["id"] == derived_id(
        "scaler.pool.change-upcoming",
        CLUSTER_ID.lower(),
        "batch",
        BOUNDARY.isoformat(),
        '{"power": "Stopped"}',
    )

    at(-timedelta(minutes=5))
    app.tick()  # the same transition: not announced again by this process
    assert len(events_on()) == 1

    # Snoozed: the hold from the event keeps the pool past the change, and is not announced.
    bootstrap.reset()  # a new instance, which remembers nothing
    app.emulator.clear_events()
    app.deliver(json.dumps(hold))
    app.settle()
    assert app.results()[0]["outcome"] == "unchanged"
    app.tick()
    assert [e["type"] for e in events_on()] == ["scaler.intent.unchanged"]
    at(timedelta(minutes=1))
    app.tick()
    assert app.emulator.writes() == []  # held: not stopped
    assert app.pool("batch")["powerState"]["code"] == "Running"


def test_the_stop_itself_is_a_pool_changed_event(
    app: App,
    events_on: Callable[[], list[dict[str, Any]]],
    stop_schedule: None,
    at: Callable[[timedelta], None],
) -> None:
    at(timedelta(seconds=30))
    app.tick()
    assert len(app.emulator.writes()) == 1
    (changed,) = events_on()
    assert changed["type"] == "scaler.pool.changed"
    assert changed["data"]["after"]["power"] == "Stopped"
    assert changed["data"]["by"]["source"] == "timer"
    assert changed["data"]["why"]["source"] == "schedule"


# --- an unreachable topic ----------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_topic_never_blocks_or_loses_a_scale_action(
    app: App, settings_override: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    settings_override(SCALER_EVENTGRID_ENDPOINT=f"https://127.0.0.1:{closed_port()}/api/events")
    caplog.set_level(logging.WARNING, logger="scaler")
    started = time.monotonic()
    app.deliver('{"id": "ev-4", "pools": {"batch": 5}}')
    app.deliver('{"id": "ev-5", "pools": {"web": {"min": 1, "max": 4}}}', message_id="m-2")
    app.settle(quiet=0.5)
    assert time.monotonic() - started < 10
    outcomes = {o["intent_id"]: o["outcome"] for o in app.results()}
    assert outcomes == {"ev-4": "applied", "ev-5": "applied"}  # published all the same
    assert app.pool("batch")["count"] == 5  # and written
    assert app.pool("web")["minCount"] == 1
    failures = [r for r in caplog.records if r.getMessage().startswith("events: could not")]
    assert len(failures) == 1  # logged once, not once per event


def test_a_topic_that_answers_with_errors_never_blocks_a_scale_action(
    app: App, events_on: Callable[[], list[dict[str, Any]]]
) -> None:
    app.emulator.fail_eventgrid(503)
    app.deliver('{"id": "ev-6", "pools": {"batch": 3}}')
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    assert app.pool("batch")["count"] == 3
    assert events_on() == []


def test_the_topic_refuses_keys_and_tokens_for_other_audiences(app: App, stack: LocalStack) -> None:
    emulator = stack.emulator
    session = requests.Session()
    session.trust_env = False
    arm_token = session.get(
        emulator.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": emulator.identity_header},
        verify=emulator.ca_bundle,
        timeout=10,
    ).json()["access_token"]
    batch = [{"id": "x", "source": "/t", "type": "t", "specversion": "1.0"}]
    url = f"{emulator.eventgrid_endpoint}?api-version=2018-01-01"
    headers = {"Content-Type": "application/cloudevents-batch+json; charset=utf-8"}
    for extra in ({"aeg-sas-key": "secret"}, {"Authorization": f"Bearer {arm_token}"}, {}):
        answer = session.post(
            url, json=batch, headers={**headers, **extra}, verify=emulator.ca_bundle, timeout=10
        )
        assert answer.status_code == 401, extra
    assert app.emulator.events() == []
