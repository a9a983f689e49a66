"""The fleet benchmark without running it (bench/fleet.py, bench/report.py): the bound its
converge time is judged against, the fleet, schedule and targets it builds, and the report's
verdicts on made-up runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.fleet import (
    FIFTH_POOL,
    FULL,
    INTENT_COUNT,
    INTENT_POOL,
    TARGETS,
    Cluster,
    FleetResult,
    Need,
    SubscriptionReads,
    TickTiming,
    TransitionRun,
    Variant,
    build_fleet,
    intent_clusters,
    matches,
    off_target,
    pool_names,
    schedule_text,
    targets,
    transition_bound,
    transition_needs,
)
from bench.report import fleet_results, render_fleet
from local.aks_emulator.throttle import DEFAULT_LIMITS
from scaler.domain.schedule_file import load_schedule

# As control.throttle() reports them.
AZURE = {name: limit.to_dict() for name, limit in DEFAULT_LIMITS.items()}


def lowered(**limits: dict[str, float]) -> dict[str, dict[str, float]]:
    return {**AZURE, **{name: {**AZURE[name], **v} for name, v in limits.items()}}


def test_the_issue_fleet_at_azure_numbers_is_bound_by_each_subscriptions_writes() -> None:
    _, clusters = build_fleet(FULL.fleet)  # 200 clusters x 5 pools in 4 subscriptions
    needs = transition_needs(clusters, 5, list_min_clusters=3, page_size=100)
    bound = transition_bound(needs, AZURE)
    # 250 writes per subscription: 200 from the burst, 50 more at 10 a second.
    assert bound.seconds == pytest.approx(5.0)
    assert bound.need is not None and bound.need.limit == "arm_writes"
    assert bound.need.tokens == 250
    assert len(bound.waits) == 4  # one per subscription, side by side


def test_lowered_write_limits_and_the_time_scale_move_the_bound() -> None:
    _, clusters = build_fleet(FULL.fleet)
    needs = transition_needs(clusters, 5, list_min_clusters=3, page_size=100)
    slow = lowered(arm_writes={"burst": 50, "refill_per_second": 5})
    assert transition_bound(needs, slow).seconds == pytest.approx(40.0)
    assert transition_bound(needs, slow, time_scale=4).seconds == pytest.approx(10.0)


def test_reads_per_cluster_in_one_big_subscription_are_bound_by_the_other_apis_bucket() -> None:
    _, clusters = build_fleet(FULL.fleet)
    one_subscription = [Cluster("sub-1", c.resource_group, c.name, False) for c in clusters]
    per_cluster = transition_needs(one_subscription, 1, list_min_clusters=0, page_size=100)
    # 200 pool lists from a bucket of 60 refilled at 1 a second; 200 writes fit in the burst.
    bound = transition_bound(per_cluster, AZURE)
    assert bound.seconds == pytest.approx(140.0) and bound.need is not None
    assert bound.need.limit == "aks_other"
    listed = transition_needs(one_subscription, 1, list_min_clusters=3, page_size=100)
    assert {n.limit: n.tokens for n in listed if n.limit.startswith("aks_list")} == {
        "aks_list_managed_clusters_subscription": 2
    }
    assert transition_bound(listed, AZURE).seconds == 0.0


def test_a_subscription_below_the_list_threshold_reads_per_cluster() -> None:
    _, clusters = build_fleet(FULL.small)  # 5 clusters in each of 2 subscriptions
    needs = transition_needs(clusters, 5, list_min_clusters=6, page_size=100)
    assert {n.limit for n in needs if n.limit.startswith("aks_")} == {
        "aks_other",
        "aks_put_agent_pool",
    }


def test_a_bound_of_nothing_and_of_a_window_limit() -> None:
    assert transition_bound([Need("arm_writes", "s", 200)], AZURE).need is None
    # Resource Graph: 15 queries a 5-second window; 31 queries need two more windows.
    bound = transition_bound([Need("resource_graph", "p", 31)], AZURE)
    assert bound.seconds == pytest.approx(10.0)


def test_the_schedule_is_valid_for_the_app_and_asks_for_every_target() -> None:
    _, clusters = build_fleet(FULL.small)
    start = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # the window crosses midnight
    text = schedule_text(clusters, pool_names(FULL.small), start)
    schedule = load_schedule(text, "fleet.toml", 100)
    assert len(schedule.clusters) == 5 and len(schedule.selections) == 1
    assert set(pool_names(FULL.small)) == set(TARGETS) and FIFTH_POOL in TARGETS


def test_targets_match_the_pools_as_the_emulator_shows_them() -> None:
    seed, clusters = build_fleet(FULL.small)
    held = intent_clusters(clusters, 2)
    wanted = targets(clusters, pool_names(FULL.small), held)
    before = {
        f"{c['resourceGroup']}/{c['name']}": {p["name"]: p["properties"] for p in c["agentPools"]}
        for c in seed["clusters"]
    }
    assert len(off_target(before, wanted)) == 5 * len(clusters)  # every pool changes
    assert wanted[held[0].key][INTENT_POOL] == ("count", INTENT_COUNT)
    assert matches({"count": 2, "enableAutoScaling": False}, ("count", 2))
    assert not matches({"count": 2, "powerState": {"code": "Stopped"}}, ("count", 2))
    assert matches({"enableAutoScaling": True, "minCount": 2, "maxCount": 8}, ("autoscale", (2, 8)))
    assert matches({"powerState": {"code": "Stopped"}}, ("power", "Stopped"))


def _run(limits: str, list_min_clusters: int, converge: float | None) -> TransitionRun:
    _, clusters = build_fleet(FULL.small)
    needs = transition_needs(clusters, 5, list_min_clusters, 100)
    emulator = (
        AZURE if limits == "azure" else lowered(arm_writes={"burst": 5, "refill_per_second": 2})
    )
    return TransitionRun(
        variant=Variant(limits, list_min_clusters),
        clusters=10,
        pools=50,
        subscriptions=2,
        workers=2,
        limits=emulator,
        time_scale=1.0,
        page_size=100,
        bound=transition_bound(needs, emulator),
        tick_seconds=0.05,
        converge_seconds=converge,
        reached=[0.5, 1.0, converge or 2.0],
        schedule_converge_seconds=converge,
        first_write_seconds=0.2,
        burst_spent={"sub": 0.4} if limits != "azure" else {},
        write_span={"sub": (0.2, converge or 2.0)},
        off_target=[] if converge else ["rg/aks/batch"],
        requests=60,
        status_429=3,
        by_kind={"PutAgentPool": {"200": 50, "429": 3}},
        throttled_by={"arm_writes": 3},
        reads={"sub": SubscriptionReads(1, 2, 1, 1, 5)},
        writes=53,
        writes_accepted=50,
        write_statuses={"200": 50, "429": 3},
        intents=["i-1", "i-2"],
        finals={"i-1": [{"outcome_id": "i-1", "outcome": "applied"}], "i-2": []},
        history={"i-1": ["applied"], "i-2": []},
        race_lost=1,
        written_by_loser=[],
        outcomes={"applied": 10, "deferred": 2},
        timer_outcomes={"applied": 10},
        outcome_throttled=3,
        workers_report=[{"calls": {"scale_reconcile": 12}, "failures": {}, "limiter": {}}],
        poison={"scale-intents-poison": 0},
        seconds=5.0,
    )


def test_the_report_judges_each_goal_from_the_numbers() -> None:
    tick = TickTiming(200, 4, [0.8, 0.9, 1.0], 1.2, {"ListManagedClusters": 4}, 200, {"total": 1})
    small = TickTiming(10, 2, [0.05, 0.06, 0.07], 0.1, {"ListManagedClusters": 2}, 10)
    runs = [_run("azure", 3, 1.0), _run("azure", 0, 1.2), _run("lowered", 3, 12.0)]
    runs.append(_run("lowered", 0, None))
    result = FleetResult(FULL, tick, small, runs, 60.0)
    rows = {row.measurement.split(" (")[0]: row for row in fleet_results(result)}
    assert not rows["tick duration, 200 clusters in 4 subscriptions"].met  # 0.9 / 0.06 = 15
    assert not rows["intents lost during the transitions"].met  # i-2 has no final outcome
    assert "i-2" in rows["intents lost during the transitions"].why_missed
    text = render_fleet(result, quick=False, seconds=60.0)
    assert "## Fleet: one schedule transition over 200 clusters" in text
    assert "| per-cluster reads, writes lowered to 5 burst, 2/s | — |" in text  # never converged
