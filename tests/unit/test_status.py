"""`status` on in-memory ports (tests/fakes.py): every pool from one read, why and until from
resolution, the holders' words, the schedule's next transition; reads only. And its formatting
for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scaler.cli.status import describe_decider, describe_next, describe_now, span, when
from scaler.domain.clusters import ClusterRef
from scaler.service_layer.schedules import Schedules
from scaler.service_layer.status import LeaseStatus, PoolStatus, ScheduleStatus, StatusReader
from tests.fakes import CLUSTER, SUB, FakeSchedule, Harness, pool

# 12:00 UTC on the fake clock's day: batch runs 3 nodes 09:00-18:00, 1 otherwise.
SCHEDULE = """
timezone = "UTC"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = 1
windows = [{ days = "daily", start = "09:00", end = "18:00", state = 3 }]
"""


def harness(**overrides: str) -> Harness:
    h = Harness(SCHEDULE, **overrides)
    h.clusters.add(
        CLUSTER,
        pool("system", 3, mode="System"),
        pool("batch", 3),
        pool("web", 4, autoscale=(2, 10)),
    )
    return h


def reader(h: Harness) -> StatusReader:
    schedules = Schedules(h.schedule, h.settings.max_count, SUB)
    return StatusReader(h.settings, h.clusters, h.store, schedules, h.clock)


def test_every_pool_from_one_read_with_why_until_and_holders() -> None:
    h = harness()
    accepted = h.clock.now
    h.send({"id": "a", "pools": {"batch": 4}, "lease": "PT2H", "reason": "pipeline A"})
    h.send(
        {
            "id": "hold-web",
            "pools": {"web": {"min": 2, "max": 6}},
            "hold": "PT1H",
            "reason": "load test",
        }
    )
    h.settle(limit_seconds=5)
    reads, trips, writes = h.clusters.reads, h.store.trips, len(h.clusters.writes)
    queued = len(h.messages.reconciles)

    status = reader(h).cluster(CLUSTER)

    assert h.clusters.reads == reads + 1  # one ARM read
    assert h.store.trips == trips + 1  # one partition read
    assert len(h.clusters.writes) == writes and len(h.messages.reconciles) == queued
    assert [p.pool for p in status.pools] == ["system", "batch", "web"]
    pools = {p.pool: p for p in status.pools}
    batch = pools["batch"]
    assert batch.desired == {"count": 4}
    assert batch.why.source == "schedule" and batch.why.until == accepted.replace(hour=18)
    assert batch.leases == (LeaseStatus("a", 4, accepted + timedelta(hours=2), "pipeline A"),)
    assert batch.schedule == ScheduleStatus(
        {"count": 3}, "window daily 09:00-18:00", accepted.replace(hour=18), {"count": 1}
    )
    web = pools["web"]
    assert (web.why.source, web.why.id, web.reason) == ("hold", "hold-web", "load test")
    assert web.desired == {"min": 2, "max": 6} and web.schedule is None
    assert pools["system"].desired is None and pools["system"].why.source == "none"
    assert status.to_json()["pools"][1]["why"]["leases"][0]["reason"] == "pipeline A"


def test_a_pool_asked_for_but_missing_is_listed() -> None:
    h = harness()
    h.send({"id": "ghost", "pools": {"ghost": 2}})  # pending: its reconcile will refuse it
    status = reader(h).cluster(CLUSTER)
    ghost = status.pools[-1]
    assert ghost.pool == "ghost" and ghost.current is None
    assert ghost.desired is None and ghost.why.source == "none"
    assert describe_now(ghost) == "no such pool"


def test_refused_and_unreadable_clusters() -> None:
    h = harness()
    other = ClusterRef(SUB, "rg-other", "aks-x")
    status = reader(h).cluster(other)
    assert status.problem is not None and status.problem.code == "ClusterNotAllowed"
    assert status.pools == () and h.clusters.reads == 0
    h.settings = harness(SCALER_ALLOWED_CLUSTERS="rg-other/*").settings
    status = reader(h).cluster(other)  # allowed, but the fake has no such cluster
    assert status.problem is not None and status.problem.code == "ResourceNotFound"


def test_known_clusters_default_schedule_and_explicit_allowlist_entries() -> None:
    h = harness(
        SCALER_ALLOWED_CLUSTERS="rg-demo/*, rg-b/aks-b, " + f"{SUB}/rg-c/aks-c, RG-DEMO/AKS-DEMO"
    )
    h.schedule.text = SCHEDULE + SCHEDULE.split('timezone = "UTC"')[1].replace("rg-demo", "rg-s")
    known = reader(h).known_clusters()
    assert [c.short_name for c in known] == [
        "rg-demo/aks-demo",
        "rg-s/aks-demo",
        "rg-b/aks-b",
        "rg-c/aks-c",
    ]


def test_an_unusable_schedule_names_no_cluster() -> None:
    h = harness()
    schedules = Schedules(FakeSchedule("not toml ["), h.settings.max_count, SUB)
    status = StatusReader(h.settings, h.clusters, h.store, schedules, h.clock)
    assert [c.short_name for c in status.known_clusters()] == ["rg-demo/aks-demo"]
    assert status.cluster(CLUSTER).schedule_name is None


# --- formatting --------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=42), "42s"),
        (timedelta(minutes=9, seconds=58), "9m 58s"),
        (timedelta(minutes=29, seconds=59), "29m"),
        (timedelta(hours=1, minutes=5), "1h 5m"),
        (timedelta(days=2, hours=3), "2d 3h"),
    ],
)
def test_span(delta: timedelta, text: str) -> None:
    assert span(delta) == text


def test_when_says_in_or_ago() -> None:
    assert when(NOW + timedelta(minutes=90), NOW) == "2026-11-25 13:30:00Z (in 1h 30m)"
    assert when(NOW - timedelta(seconds=5), NOW) == "2026-11-25 11:59:55Z (5s ago)"
    assert when(None, NOW) == "-"


def test_describe_a_busy_pool_its_leases_and_next_change() -> None:
    status = reader(harness()).cluster(CLUSTER)
    batch = status.pools[1]
    busy = PoolStatus(
        "batch",
        pool("batch", 2, state="Scaling"),
        {"count": 4},
        batch.why,
        leases=(LeaseStatus("a", 4, NOW + timedelta(hours=1), "pipeline A"),),
        schedule=ScheduleStatus({"count": 3}, "window", NOW + timedelta(hours=6), {"count": 1}),
    )
    assert describe_now(busy) == "2 nodes\nScaling: operation in progress"
    assert describe_decider(busy, NOW) == (
        "window daily 09:00-18:00\nlease a (pipeline A): 4 until 2026-11-25 13:00:00Z (in 1h 0m)"
    )
    assert describe_next(busy, NOW) == "2026-11-25 18:00:00Z (in 6h 0m) → 1 node"
    stopped = PoolStatus("gpu", pool("gpu", 0, power="Stopped"), None, batch.why)
    assert describe_now(stopped) == "stopped" and describe_next(stopped, NOW) == "-"
