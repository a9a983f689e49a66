"""Two reconciles of one cluster at once, pinned down on the in-memory fakes.

The load suites run many reconciles of a cluster side by side (the host runs a batch of
`scale-reconcile` messages in parallel, and each burst of intents queues several). There the
final state of a pool sometimes differed from what resolution says, and some accepted writes
were reported by no outcome. This is the interleaving behind both, made deterministic:

1. reconcile R1 loads the records: intent `a` (batch 5) is pending;
2. meanwhile intent `b` (batch 7, newer) is recorded and reconcile R2 runs to the end: it
   writes 7 and records `a` superseded, `b` applied;
3. R1 reads the pools (7, settled), resolves with what it loaded (only `a`) and writes 5: the
   If-Match is on the eTag it just read, so ARM accepts it;
4. R1's commit loses to R2's, it reads the records again, finds nothing pending, and stops.
"""

from __future__ import annotations

from datetime import timedelta

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import PoolState
from tests.fakes import CLUSTER, Harness, pool


def race() -> Harness:
    h = Harness(SCALER_COALESCE_SECONDS="0", SCALER_OPERATION_SECONDS="1")
    h.clusters.add(CLUSTER, pool("system", 1, mode="System"), pool("batch", 2))
    h.send({"id": "a", "pools": {"batch": 5}})
    h.messages.reconciles.clear()  # R1 is started by hand below
    list_pools = h.clusters.list_pools
    raced = False

    def list_pools_after_r2(cluster: ClusterRef) -> list[PoolState]:
        nonlocal raced
        if not raced:
            raced = True
            h.clock.advance(1)
            h.send({"id": "b", "pools": {"batch": 7}})
            h.messages.reconciles.clear()
            h.reconciler.reconcile(CLUSTER, "intent")  # R2, start to end
            h.clock.advance(5)  # R2's operation has finished
        return list_pools(cluster)

    h.clusters.list_pools = list_pools_after_r2  # type: ignore[method-assign]
    h.reconciler.reconcile(CLUSTER, "intent")  # R1
    h.clusters.list_pools = list_pools  # type: ignore[method-assign]
    h.settle(limit_seconds=timedelta(hours=1).total_seconds())
    return h


def test_the_pool_ends_in_the_newest_state_when_two_reconciles_race() -> None:
    h = race()
    assert h.outcome("b")["outcome"] == "applied"
    assert h.clusters.state("batch").count == 7, "b is the newest intent and says applied"


def test_every_accepted_write_of_a_racing_reconcile_is_reported() -> None:
    h = race()
    written = [name for name, _ in h.clusters.writes]
    reported = [
        p["pool"] for o in h.messages.published for p in o["pools"] if p["outcome"] == "started"
    ]
    assert sorted(written) == sorted(reported), (written, reported)
