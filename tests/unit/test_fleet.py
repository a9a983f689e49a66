"""A fleet on in-memory fakes: the tick fans out one reconcile per cluster, reads a busy
subscription with one LIST managedClusters, finds clusters by tag (never outside the
allowlist), and throttling defers work without losing it or spending the retry budget."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from scaler.domain.clusters import ClusterRef
from scaler.service_layer.messages import reconcile_message
from scaler.service_layer.ports import GatewayError
from tests.fakes import Harness, pool

SUB_A = "00000000-0000-0000-0000-00000000000a"
SUB_B = "00000000-0000-0000-0000-00000000000b"
SUB_C = "00000000-0000-0000-0000-00000000000c"
NAMED_A = [ClusterRef(SUB_A, "rg-a", f"aks-a{i}") for i in range(3)]
NAMED_B = ClusterRef(SUB_B, "rg-b", "aks-b0")
TAGGED_C = [ClusterRef(SUB_C, "rg-c", f"aks-c{i}") for i in range(2)]
OUTSIDE = ClusterRef(SUB_C, "rg-private", "aks-not-ours")
ALLOWED = f"{SUB_A}/*/*,{SUB_B}/rg-b/*,{SUB_C}/rg-c/*"


def named(cluster: ClusterRef) -> str:
    return f"""
[[clusters]]
subscription_id = "{cluster.subscription_id}"
resource_group = "{cluster.resource_group}"
cluster = "{cluster.name}"
[clusters.pools.batch]
outside = 0
windows = [{{ days = "daily", start = "12:00", end = "13:00", state = 5 }}]
"""


SELECT = """
[[clusters]]
select = { tag = "scaler-schedule=office-hours" }
[clusters.pools.batch]
outside = 0
windows = [{ days = "daily", start = "12:00", end = "13:00", state = 4 }]
"""


def fleet(**settings: object) -> Harness:
    text = 'timezone = "UTC"\n' + "".join(named(c) for c in [*NAMED_A, NAMED_B]) + SELECT
    h = Harness(text, SCALER_ALLOWED_CLUSTERS=ALLOWED, **settings)  # clock: 12:00 UTC
    for cluster in [*NAMED_A, NAMED_B, *TAGGED_C, OUTSIDE]:
        h.clusters.add(cluster, pool("system", 3, mode="System"), pool("batch", 1))
    for cluster in [*TAGGED_C, OUTSIDE]:
        h.clusters.cluster_tags[cluster] = {"Scaler-Schedule": "Office-Hours"}
    return h


def batch(h: Harness, cluster: ClusterRef) -> int:
    return h.clusters.state("batch", cluster).count


def test_a_tick_queues_one_reconcile_per_cluster_and_reads_only_lists() -> None:
    h = fleet()
    outcomes = h.timer.run()
    assert outcomes == []
    queued = [request for _, request in h.messages.reconciles]
    clusters = sorted(r["cluster"] for r in queued)
    assert clusters == ["aks-a0", "aks-a1", "aks-a2", "aks-b0", "aks-c0", "aks-c1"]
    assert {r["reason"] for r in queued} == {"timer"}
    # The tick itself: one list for the subscription with 3 clusters, one Resource Graph query.
    assert h.clusters.cluster_lists == [SUB_A] and h.clusters.reads == 0
    assert len(h.directory.queries) == 1
    assert all("pools" in r for r in queued if r["subscription_id"] == SUB_A)
    assert not any("pools" in r for r in queued if r["subscription_id"] != SUB_A)


def test_the_queued_reconciles_converge_the_fleet_reading_each_cluster_at_most_once() -> None:
    h = fleet()
    h.tick()
    assert [batch(h, c) for c in NAMED_A] == [5, 5, 5] and batch(h, NAMED_B) == 5
    assert [batch(h, c) for c in TAGGED_C] == [4, 4]
    # Listed clusters read nothing themselves; B and the tagged ones read their own.
    assert h.clusters.reads == 1 + len(TAGGED_C)
    assert len(h.clusters.writes) == 6


def test_a_cluster_outside_the_allowlist_is_never_read_or_written_whatever_its_tags() -> None:
    h = fleet()
    h.tick()
    assert batch(h, OUTSIDE) == 1
    assert "aks-not-ours" not in json.dumps([r for _, r in h.messages.reconciles])
    # Resource Graph is only asked about the subscriptions the allowlist reaches.
    ((_, subscriptions),) = h.directory.queries
    assert subscriptions is not None and set(subscriptions) == {SUB_A, SUB_B, SUB_C}


def test_a_named_cluster_keeps_its_own_entry_even_when_its_tag_matches() -> None:
    h = fleet()
    h.clusters.cluster_tags[NAMED_B] = {"scaler-schedule": "office-hours"}
    h.tick()
    assert batch(h, NAMED_B) == 5  # its own entry's 5, not the select entry's 4


def test_a_failed_tag_search_defers_only_the_tagged_clusters() -> None:
    h = fleet()
    h.directory.fail_next.append(GatewayError("Throttled", "429", transient=True, retry_after=5))
    published = h.tick()
    (search,) = [o for o in published if o["intent_id"].endswith("-select")]
    assert search["outcome"] == "deferred" and search["error"]["code"] == "Throttled"
    assert [batch(h, c) for c in NAMED_A] == [5, 5, 5]
    assert [batch(h, c) for c in TAGGED_C] == [1, 1]


def test_the_list_threshold_and_zero_turn_listing_off() -> None:
    h = fleet(SCALER_FLEET_LIST_MIN_CLUSTERS=0)
    h.tick()
    assert h.clusters.cluster_lists == []
    assert h.clusters.reads == len(NAMED_A) + 1 + len(TAGGED_C)
    assert [batch(h, c) for c in NAMED_A] == [5, 5, 5]


def test_a_failed_list_leaves_each_cluster_to_read_its_own() -> None:
    h = fleet()
    h.clusters.fail_lists.append(GatewayError("InternalServerError", "500", transient=True))
    h.tick()
    assert [batch(h, c) for c in NAMED_A] == [5, 5, 5]
    assert h.clusters.reads == len(NAMED_A) + 1 + len(TAGGED_C)


def test_a_stale_listing_in_a_message_is_not_planned_from() -> None:
    h = fleet()
    h.timer.run()
    h.messages.reconciles.clear()
    cluster = NAMED_A[0]
    pools = h.clusters.snapshot(list(h.clusters.pools[cluster].values()))
    old = reconcile_message(cluster, "timer", None, pools, h.clock() - timedelta(minutes=10))
    h.reconciler.handle_message(json.dumps(old))
    assert h.clusters.reads == 1 and batch(h, cluster) == 5


def test_a_selector_the_file_no_longer_has_gives_no_schedule() -> None:
    h = fleet()
    message = reconcile_message(TAGGED_C[0], "timer", "team=gone")
    h.reconciler.handle_message(json.dumps(message))
    assert h.clusters.writes == [] and batch(h, TAGGED_C[0]) == 1


def test_a_wake_up_keeps_the_tag_selection_of_the_tick_that_queued_it() -> None:
    h = fleet()
    cluster = TAGGED_C[0]
    h.clusters.fail_next.append(
        GatewayError("InternalServerError", "500", transient=True, retry_after=30)
    )
    h.timer.run()
    h.messages.reconciles = [(w, r) for w, r in h.messages.reconciles if r["cluster"] == "aks-c0"]
    h.settle(limit_seconds=0)
    assert batch(h, cluster) == 1  # the write failed
    (wake,) = [r for _, r in h.messages.reconciles]
    assert wake["reason"] == "wake" and wake["selected_by"] == "scaler-schedule=office-hours"
    h.settle(limit_seconds=120)
    assert batch(h, cluster) == 4


def test_a_throttled_write_is_deferred_counted_and_spends_no_attempt() -> None:
    h = fleet(SCALER_MAX_ATTEMPTS=1)
    cluster = NAMED_B
    throttled = GatewayError("Throttled", "429", transient=True, retry_after=60, throttled=True)
    h.timer.run()
    h.messages.reconciles = [(w, r) for w, r in h.messages.reconciles if r["cluster"] == "aks-b0"]
    h.clusters.fail_next.extend([throttled, throttled])
    h.settle(limit_seconds=0)
    (deferred,) = [o for o in h.messages.published if o["cluster"] == cluster.resource_id]
    assert deferred["outcome"] == "deferred" and deferred["throttled"] == 1
    assert deferred["pools"][0]["error"]["code"] == "Throttled"
    h.settle(limit_seconds=59)
    assert batch(h, cluster) == 1  # Retry-After is honoured
    h.settle(limit_seconds=600)
    assert batch(h, cluster) == 5  # then applied: nothing lost


def test_an_intent_throttled_past_its_attempt_budget_is_not_poisoned() -> None:
    h = fleet(SCALER_MAX_ATTEMPTS=2)
    throttled = GatewayError("Throttled", "429", transient=True, retry_after=10, throttled=True)
    h.clusters.fail_next.extend([throttled] * 4)
    h.send(
        {
            "id": "burst",
            "subscription_id": SUB_B,
            "resource_group": "rg-b",
            "cluster": "aks-b0",
            "pools": {"batch": 3},
        }
    )
    h.settle()
    outcome = h.outcome("burst")
    assert outcome["outcome"] == "applied" and h.messages.parked == []
    assert batch(h, NAMED_B) == 3


def test_listing_snapshots_round_trip_through_the_message() -> None:
    h = fleet()
    listed = h.clusters.pools[NAMED_A[0]]["batch"]
    (restored,) = h.clusters.restore(json.loads(json.dumps(h.clusters.snapshot([listed]))))
    assert restored == replace(listed)


def test_the_reconcile_after_throttling_plans_from_the_pools_it_left_without_a_read() -> None:
    h = fleet()
    throttled = GatewayError("Throttled", "429", transient=True, retry_after=5, throttled=True)
    h.timer.run()
    h.messages.reconciles = [(w, r) for w, r in h.messages.reconciles if r["cluster"] == "aks-b0"]
    h.clusters.fail_next.append(throttled)
    h.settle(limit_seconds=0)
    assert h.clusters.reads == 1
    ((wake_at, wake),) = h.messages.reconciles
    assert wake["reason"] == "wake" and [p["name"] for p in wake["pools"]] == ["system", "batch"]
    assert wake_at - h.clock() == timedelta(seconds=5)  # Retry-After, not the 15 s backoff
    h.settle(limit_seconds=5)
    assert batch(h, NAMED_B) == 5 and h.clusters.reads == 1  # written, and no second read
