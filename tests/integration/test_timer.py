"""The schedule timer through function_app.py against Azurite and the AKS emulator: zero
writes on a converged cluster, the right write at a window boundary, holds respected then
expired, a broken schedule changes nothing, a broken cluster does not stop the others.

Time is moved with time-machine a few minutes around the real clock, so tokens and storage
request dates stay plausible for the real processes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from azure.storage.blob import BlobServiceClient

import function_app
from local.functions_host import registered_functions
from scaler.settings import RECONCILE_QUEUE
from tests.app_under_test import SUB, App

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# A minute boundary a little ahead of now: the window under test opens there.
BOUNDARY = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)


def hhmm(instant: datetime) -> str:
    return instant.astimezone(AMSTERDAM).strftime("%H:%M")


def batch_window_schedule(cluster: str = "aks-demo", extra: str = "") -> str:
    """batch: 6 nodes from BOUNDARY for an hour, 2 (what the emulator starts with) otherwise."""
    return f"""
timezone = "Europe/Amsterdam"
[[clusters]]
resource_group = "rg-demo"
cluster = "{cluster}"
[clusters.pools.batch]
outside = 2
windows = [{{ days = "daily", start = "{hhmm(BOUNDARY)}", end = "{hhmm(BOUNDARY + timedelta(hours=1))}", state = 6 }}]
{extra}
"""


@pytest.fixture
def schedule(
    app: App, tmp_path: Path, settings_override: Callable[..., None]
) -> Callable[[str], None]:
    def write(text: str) -> None:
        path = tmp_path / "schedule.toml"
        path.write_text(text)
        settings_override(SCALER_SCHEDULE_FILE=str(path))

    return write


def queued_reconciles(app: App) -> tuple[int, int]:
    """(visible, all) messages on scale-reconcile; a delayed wake-up counts but is not visible."""
    with app.queue(RECONCILE_QUEUE) as queue:
        total = queue.get_queue_properties().approximate_message_count
        return len(queue.peek_messages(max_messages=32)), total


def wake(cluster: str) -> dict[str, str]:
    """The reconcile message the app queues for a cluster's next wake-up."""
    return {
        "subscription_id": SUB,
        "resource_group": "rg-demo",
        "cluster": cluster,
        "reason": "wake",
    }


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


def test_timer_binding_reads_its_schedule_from_settings() -> None:
    bindings = [
        json.loads(b)
        for b in registered_functions(function_app.app)["scale_schedule"].get_raw_bindings()
    ]
    (timer,) = bindings
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%SCALER_TIMER_SCHEDULE%"
    assert timer["useMonitor"] is True


def test_a_converged_cluster_costs_one_read_and_no_write(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    schedule(batch_window_schedule())
    at(-timedelta(minutes=1))
    app.tick()
    app.tick()
    assert app.emulator.writes() == []
    assert len(app.lists()) == 2  # one read per tick
    assert app.results() == []  # nothing changed: nothing to report
    assert queued_reconciles(app) == (0, 0)  # the timer reconciles inline, queues nothing


def test_the_window_boundary_brings_exactly_the_right_write(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    schedule(batch_window_schedule())
    at(-timedelta(seconds=30))
    app.tick()
    assert app.emulator.writes() == []

    at(timedelta(seconds=30))
    app.tick()
    app.tick()  # idempotent: the pool already reports 6 while it scales
    (write,) = app.emulator.writes()
    assert write["path"].endswith("/agentPools/batch") and write["if_match"]
    assert len(app.lists()) == 3  # one read per tick, no more
    assert app.pool("batch")["count"] == 6
    (outcome,) = app.results()
    assert outcome["source"] == "timer" and outcome["outcome"] == "applied"
    assert outcome["reason"] == "schedule schedule.toml"
    assert outcome["pools"][0]["requested"] == {"count": 6}
    assert outcome["pools"][0]["why"]["source"] == "schedule"


def test_a_hold_from_a_queue_intent_wins_until_it_expires(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    schedule(batch_window_schedule(extra="[clusters.pools.web]\noutside = { min = 1, max = 5 }"))
    at(timedelta(seconds=30))
    app.deliver('{"id": "keep-10", "pools": {"batch": 10}, "hold": "PT2M"}')
    app.settle()
    # The intent's reconcile converges the whole cluster: the hold for batch, the schedule for
    # web (the schedule is one more source), each with its own outcome.
    outcomes = {o["source"]: o for o in app.results()}
    assert sorted(outcomes) == ["queue", "schedule"]
    applied, scheduled = outcomes["queue"], outcomes["schedule"]
    assert applied["intent_id"] == "keep-10" and applied["outcome"] == "applied"
    assert applied["hold"]["until"]
    assert applied["pools"][0]["why"]["source"] == "hold"
    assert scheduled["outcome"] == "applied"
    assert {p["pool"]: p["outcome"] for p in scheduled["pools"]} == {"web": "started"}
    writes = [w["path"].rsplit("/", 1)[-1] for w in app.emulator.writes()]
    assert sorted(writes) == ["batch", "web"]
    assert len(app.lists()) == 1  # one read for both
    # The hold's end is a wake-up of its own, queued for then (not visible yet).
    assert queued_reconciles(app) == (0, 1)
    app.emulator.wait_until_settled()

    app.tick()  # inside the 6-node window, but the hold wins: nothing to do
    assert app.pool("batch")["count"] == 10
    assert app.results() == [] and len(app.emulator.writes()) == 2

    at(timedelta(minutes=3))  # the hold has ended: its wake-up alone brings the schedule back
    app.call("scale_reconcile", json.dumps(wake("aks-demo")), message_id="wake-1")
    assert app.pool("batch")["count"] == 6
    (returned,) = app.results()
    (batch,) = [p for p in returned["pools"] if p["pool"] == "batch"]
    assert batch["outcome"] == "started" and batch["why"]["source"] == "schedule"
    app.emulator.wait_until_settled()
    app.tick()  # and the timer finds nothing left to do
    assert len(app.emulator.writes()) == 3 and app.results() == []


def test_a_plain_intent_lasts_until_the_schedules_next_transition(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    short = batch_window_schedule().replace(
        hhmm(BOUNDARY + timedelta(hours=1)), hhmm(BOUNDARY + timedelta(minutes=2))
    )
    schedule(short)
    at(timedelta(seconds=30))
    app.tick()
    assert app.pool("batch")["count"] == 6
    assert app.only_result()["source"] == "timer"
    app.emulator.wait_until_settled()
    app.deliver('{"id": "ten", "pools": {"batch": 10}}')
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    app.emulator.wait_until_settled()

    at(timedelta(seconds=90))  # still inside the window: the intent, not the window, decides
    app.tick()
    assert app.pool("batch")["count"] == 10 and app.results() == []

    at(timedelta(minutes=2, seconds=30))  # the window ended: the schedule decides again
    app.tick()
    assert app.pool("batch")["count"] == 2
    (outcome,) = app.results()
    assert outcome["source"] == "timer" and outcome["pools"][0]["why"]["source"] == "schedule"


def test_a_broken_schedule_changes_nothing_and_says_why(
    app: App, schedule: Callable[[str], None]
) -> None:
    schedule(batch_window_schedule().replace("state = 6", "state = { min = 9, max = 2 }"))
    app.tick()
    (outcome,) = app.results()
    assert outcome["outcome"] == "rejected" and outcome["source"] == "timer"
    assert outcome["error"]["code"] == "InvalidSchedule"
    assert "min (9) is greater than max (2)" in outcome["error"]["message"]
    assert app.arm_requests() == []
    assert queued_reconciles(app) == (0, 0)


def test_one_broken_cluster_does_not_stop_another(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    second = batch_window_schedule("aks-second").split("[[clusters]]", 1)[1]
    schedule(batch_window_schedule() + "\n[[clusters]]" + second)
    app.emulator.set_faults(
        [{"kind": "500", "method": "GET", "path_contains": "aks-demo", "times": 100}]
    )
    at(timedelta(seconds=30))
    app.tick()

    outcomes = {o["cluster"].rsplit("/", 1)[-1]: o for o in app.results()}
    assert sorted(outcomes) == ["aks-demo", "aks-second"]
    assert outcomes["aks-demo"]["outcome"] == "deferred"
    assert outcomes["aks-demo"]["error"]["code"] == "InternalServerError"
    assert outcomes["aks-second"]["outcome"] == "applied"
    assert app.pool("batch", cluster="aks-second")["count"] == 6


def test_a_stopped_pool_in_its_window_is_started_first(
    app: App, schedule: Callable[[str], None], at: Callable[[timedelta], None]
) -> None:
    schedule(
        batch_window_schedule(
            extra=f"""
[clusters.pools.gpu]
windows = [{{ days = "daily", start = "{hhmm(BOUNDARY)}", end = "{hhmm(BOUNDARY + timedelta(hours=1))}", state = 1 }}]
"""
        )
    )
    at(timedelta(seconds=30))
    app.tick()
    (outcome,) = app.results()
    actions = {p["pool"]: p["action"] for p in outcome["pools"]}
    assert actions == {"batch": "scale", "gpu": "start"}
    assert app.pool("gpu")["powerState"]["code"] == "Running"


def test_a_late_run_is_logged_and_converges_as_usual(
    app: App,
    schedule: Callable[[str], None],
    at: Callable[[timedelta], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule(batch_window_schedule())
    at(timedelta(seconds=30))
    with caplog.at_level(logging.WARNING, logger="scaler"):
        app.tick(past_due=True)
    assert any("is late (past due)" in r.getMessage() for r in caplog.records)
    assert app.pool("batch")["count"] == 6


def test_the_schedule_can_live_in_a_blob(
    app: App, settings_override: Callable[..., None], at: Callable[[timedelta], None]
) -> None:
    with BlobServiceClient.from_connection_string(app.stack.azurite.connection_string) as blobs:
        container = blobs.get_container_client("scaler-config")
        if not container.exists():
            container.create_container()
        container.upload_blob("schedule.toml", batch_window_schedule(), overwrite=True)
    settings_override(SCALER_SCHEDULE_BLOB="scaler-config/schedule.toml")
    at(timedelta(seconds=30))
    app.tick()
    assert app.pool("batch")["count"] == 6
    assert app.results()[0]["reason"] == "schedule scaler-config/schedule.toml"
