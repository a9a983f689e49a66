"""Nothing lost, nothing wasted, under injected faults and AKS's throttling.

A seeded stream of intents (plain ones, holds and leases that outlast the run, invalid ones,
shuffled, some sent twice) runs through the local Functions host (both queue triggers) against
Azurite and the AKS emulator while ~20% of ARM requests fail (429 with Retry-After, 409, 412,
500, connection reset), the token endpoint fails at first, the emulator throttles like AKS (20
writes per pool, refilling 1 a minute, on a clock THROTTLE_TIME_SCALE times faster) and Azurite
restarts once mid-run. The fast variant runs in scripts/test; the long one is

    FAULT_INTENTS=1000 .venv/bin/python -m pytest tests/resilience -s

(FAULT_SEED picks another seed; -s prints the counts).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.resilience.harness import (
    FINAL_OUTCOMES,
    POOLS,
    RunReport,
    account_for_writes,
    app_settings,
    assert_final_states,
    assert_no_lost_update,
    assert_writes_accounted_for,
    deciding_intents,
    expected_states,
    load_stack,
    run,
    throttle_like_aks,
    workload,
)

INTENTS = int(os.environ.get("FAULT_INTENTS", "150"))
SEED = int(os.environ.get("FAULT_SEED", "7"))
# AKS refills a pool's bucket of 20 writes at 1 a minute; on a clock THROTTLE_TIME_SCALE times
# faster that is one every 60/scale seconds: slow enough that a run's writes empty the busiest
# pools' buckets, fast enough that the writes it defers get through within CI time.
TIME_SCALE = float(os.environ.get("THROTTLE_TIME_SCALE", "3"))
# AKS's per-pool write bucket holds 20; the scaler coalesces so well (about 4 accepted writes a
# pool for 150 intents) that a run of CI size never empties it. The refill stays AKS's (1 a
# minute, on the faster clock) and the burst shrinks to THROTTLE_BURST, so writes do meet 429s.
BURST = int(os.environ.get("THROTTLE_BURST", "3"))
# Producers send this many intents a second: spread out enough that reconciles interleave with
# the intake and keep changing the pools (a burst would coalesce into a handful of writes).
RATE = float(os.environ.get("FAULT_RATE", str(max(5.0, INTENTS / 40))))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with load_stack(tmp_path_factory.mktemp("faults"), operation_seconds=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def report(stack: LocalStack) -> RunReport:
    load = workload(INTENTS, SEED)
    throttle_like_aks(stack, TIME_SCALE, write_burst=BURST)
    stack.emulator.control.set_faults(
        # The first token requests fail: the whole app waits for its identity, then goes on.
        [{"kind": "token_500", "times": 3}, {"kind": "412", "method": "PUT", "times": 2}],
        random={
            "rate": 0.2,
            "seed": SEED,
            "kinds": ["429", "409", "412", "500", "reset"],
            "retry_after": 1,
        },
    )
    with app_settings(stack):
        result = run(stack, load, workers=1, restart_azurite_at=0.5, rate=RATE)
    stack.emulator.control.clear_faults()
    accounting = account_for_writes(result)
    print(f"\nseed {SEED}, throttle time scale {TIME_SCALE}, burst {BURST}: {result.summary()}")
    print(
        f"writes: {accounting.writes} accepted, {accounting.reported} reported started, "
        f"{accounting.matched} matched, {len(accounting.in_failed_reconciles)} made by a "
        f"reconcile that failed before recording its outcome, {len(accounting.retry_writes)} "
        f"by a retry deferred again, {len(accounting.racing_writes)} while reconciles raced "
        f"(the known gaps), {len(accounting.unexplained)} unexplained"
    )
    return result


def test_faults_and_throttling_really_happened(report: RunReport) -> None:
    faults = {r["fault"] for r in report.requests if r["fault"]}
    assert {"429", "409", "412", "500", "reset", "token_500"} <= faults
    injected = sum(1 for r in report.arm_requests() if r["fault"])
    assert 0.1 < injected / len(report.arm_requests()) < 0.35  # 20% drawn, plus scripted
    assert report.restarts == 1
    throttled = [r for r in report.arm_requests() if r.get("throttled") == "aks_put_agent_pool"]
    assert throttled, "no write met an empty AKS bucket: the run does not exercise throttling"


def test_both_queue_triggers_ran(report: RunReport) -> None:
    queues = Counter(i.queue for i in report.invocations)
    assert queues["scale-intents"] >= len(report.workload.messages)
    assert queues["scale-reconcile"] > 0


def test_every_intent_ends_with_exactly_one_final_outcome(report: RunReport) -> None:
    finals = report.final_by_intent()
    load = report.workload
    assert set(finals) == load.intent_ids
    accepted = {i: len(finals[i]) for i in load.accepted_ids}
    assert set(accepted.values()) == {1}, {i: n for i, n in accepted.items() if n != 1}
    # An invalid intent leaves nothing behind, so each message that carries it gets its own
    # rejection (at least each one that got onto the queue; a send that failed in the restart
    # may have arrived all the same).
    for intent_id in load.invalid:
        assert report.sent[intent_id] <= len(finals[intent_id]) <= report.attempted[intent_id]
    assert set(report.counts) <= FINAL_OUTCOMES


def test_outcomes_are_the_ones_each_kind_of_intent_can_have(report: RunReport) -> None:
    finals = report.final_by_intent()
    by_kind: dict[str, Counter[str]] = {}
    for intent_id, kind in report.workload.kinds.items():
        by_kind.setdefault(kind, Counter()).update(o["outcome"] for o in finals[intent_id])
    assert set(by_kind["invalid"]) == {"rejected"}
    assert set(by_kind["plain"]) <= {"applied", "unchanged", "superseded"}
    assert set(by_kind.get("hold", {})) <= {"applied", "unchanged", "superseded"}
    # A lease is never replaced: leases add up with whatever decides the pool.
    assert set(by_kind["lease"]) <= {"applied", "unchanged"}
    assert report.counts["poisoned"] == 0


def test_the_intent_that_decides_a_pool_says_so(report: RunReport) -> None:
    """The newest hold (else plain intent) of each pool reports that pool written or already
    as asked, never superseded, and the state it reports wanting is the expected one."""
    finals = report.final_by_intent()
    for (cluster, pool), intent_id in deciding_intents(report.workload).items():
        (outcome,) = finals[intent_id]
        entry = next(p for p in outcome["pools"] if p["pool"] == pool)
        assert entry["outcome"] in ("started", "unchanged"), (cluster, pool, outcome)
        assert entry["why"]["source"] in ("intent", "hold"), entry


def test_every_pool_ends_in_the_state_resolution_gives_its_sources(report: RunReport) -> None:
    expected = expected_states(report.workload)
    assert set(expected) == set(POOLS)
    assert_final_states(report, expected)


def test_every_accepted_write_was_based_on_the_version_it_replaced(report: RunReport) -> None:
    raced = assert_no_lost_update(report)
    print(f"writes refused for a stale eTag (raced, then re-planned): {raced}")


def test_every_accepted_write_is_accounted_for(report: RunReport) -> None:
    accounting = account_for_writes(report)
    assert not accounting.phantom, "outcomes report writes that Resource Manager never accepted"
    assert_writes_accounted_for(accounting)


def test_a_throttled_write_is_deferred_then_applied(report: RunReport) -> None:
    """A 429 from AKS's bucket never ends an intent: the intents it delayed were deferred and
    then got a final outcome that is not a rejection (the pools' final state is checked above)."""
    throttled = [
        p
        for o in report.documents()
        for p in o.get("pools") or []
        if (p.get("error") or {}).get("code") in ("Throttled", "SubscriptionRequestsThrottled")
    ]
    assert throttled, "no outcome reports a throttled write"
    assert {p["outcome"] for p in throttled} == {"deferred"}
    finals = report.final_by_intent()
    deferred_ids = {
        o["intent_id"]
        for o in report.documents()
        if o["outcome"] == "deferred" and o["source"] == "queue"
    }
    assert {finals[i][0]["outcome"] for i in deferred_ids} <= {
        "applied",
        "unchanged",
        "superseded",
    }


def test_nothing_is_left_in_flight(report: RunReport) -> None:
    assert report.left_in_intents == 0
    assert report.left_in_poison == {"scale-intents-poison": 0, "scale-reconcile-poison": 0}
    assert all(
        p["provisioningState"] == "Succeeded" for c in report.pools.values() for p in c.values()
    )
