"""The service layer on in-memory fakes (tests/fakes.py): intake → record → reconcile, in
milliseconds. Each test states a promise of the desired-state model (issue 9)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from scaler.domain.clusters import ClusterRef
from scaler.service_layer.ports import GatewayError
from tests.fakes import CLUSTER, SUB, Harness, pool

OTHER = ClusterRef(SUB, "rg-demo", "aks-other")

# batch: 6 nodes on weekdays 07:00-19:00 Amsterdam time (UTC+1 in November), stopped otherwise.
SCHEDULE = """
timezone = "Europe/Amsterdam"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = { power = "Stopped" }
windows = [ { days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 } ]
"""


def demo(schedule: str = "", **settings: Any) -> Harness:
    harness = Harness(schedule, **settings)
    harness.clusters.add(
        CLUSTER,
        pool("system", 1, mode="System"),
        pool("batch", 2),
        pool("web", 3, autoscale=(1, 5)),
        pool("gpu", 0),
        pool("spot", 1, power="Stopped"),
    )
    harness.clusters.add(OTHER, pool("batch", 1))
    return harness


def test_an_intent_is_recorded_then_reconciled_once() -> None:
    h = demo()
    h.send({"id": "a", "pools": {"batch": 5}})
    assert h.clusters.reads == 0, "the intent trigger itself never calls ARM"
    h.settle()
    assert h.clusters.state("batch").count == 5
    outcome = h.outcome("a")
    assert outcome["outcome"] == "applied"
    assert outcome["pools"][0]["why"]["source"] == "intent"
    assert (h.clusters.reads, len(h.clusters.writes)) == (1, 1)


def test_a_burst_of_100_intents_costs_one_read_and_one_write() -> None:
    h = demo()
    for n in range(100):
        h.send({"id": f"burst-{n}", "pools": {"batch": n % 7 + 3}})
        h.clock.advance(0.01)
    h.settle()
    assert h.clusters.state("batch").count == 99 % 7 + 3
    assert (h.clusters.reads, len(h.clusters.writes)) == (1, 1)
    results = [h.outcome(f"burst-{n}")["outcome"] for n in range(100)]
    assert results[-1] == "applied"
    assert set(results[:-1]) <= {"superseded", "unchanged"}
    assert "superseded" in results


def test_the_running_reconcile_picks_up_sources_recorded_meanwhile() -> None:
    h = demo(SCALER_COALESCE_SECONDS=0)
    h.send({"id": "first", "pools": {"web": {"min": 2, "max": 6}}})
    original = h.store.load

    def load_and_receive(cluster: ClusterRef) -> Any:
        records = original(cluster)
        if not any(r.source.id == "second" for r in records.sources.values()):
            h.store.load = original  # type: ignore[method-assign]
            h.intake.handle_message('{"id": "second", "pools": {"batch": 4}}', "m-x", h.clock())
        return records

    h.store.load = load_and_receive  # type: ignore[method-assign]
    h.messages.reconciles.clear()  # only the running reconcile may handle "second"
    h.reconciler.reconcile(CLUSTER, "intent")
    assert h.clusters.state("batch").count == 4
    assert h.outcome("second")["outcome"] == "applied"
    assert h.clusters.reads == 1


def test_a_redelivered_message_gets_no_second_outcome() -> None:
    h = demo()
    h.send({"id": "a", "pools": {"batch": 5}}, message_id="m-1")
    h.settle()
    h.send({"id": "a", "pools": {"batch": 5}}, message_id="m-1")
    h.send({"id": "a", "pools": {"batch": 5}}, message_id="m-2")  # the producer sent it twice
    h.settle()
    assert len(h.messages.finals("a")) == 1
    assert len(h.clusters.writes) == 1


def test_an_intent_without_id_is_keyed_by_its_message() -> None:
    h = demo()
    h.send({"pools": {"batch": 5}}, message_id="msg-7")
    h.send({"pools": {"batch": 5}}, message_id="msg-7")
    h.settle()
    assert h.outcome("msg-7")["outcome"] == "applied"


def test_an_id_cannot_be_taken_over() -> None:
    h = demo(SCALER_ALLOWED_CLUSTERS="rg-demo/*")
    h.send({"id": "a", "pools": {"batch": 5}})
    h.send({"id": "a", "pools": {"web": {"min": 1, "max": 2}}})
    h.send({"id": "a", "cluster": "aks-other", "pools": {"batch": 3}}, message_id="m-other")
    h.settle()
    refused = [o for o in h.messages.published if o["outcome"] == "rejected"]
    assert [o["error"]["code"] for o in refused] == ["DuplicateId", "DuplicateId"]
    assert h.clusters.state("batch").count == 5
    assert h.clusters.state("batch", OTHER).count == 1


def test_a_dry_run_with_someone_elses_id_changes_nothing() -> None:
    h = demo()
    h.send({"id": "real", "pools": {"batch": 5}, "dry_run": True})
    h.send({"id": "real", "pools": {"batch": 5}})
    h.settle()
    assert h.clusters.state("batch").count == 5
    assert [o["outcome"] for o in h.messages.published] == ["dry_run", "applied"]


def test_a_refused_hold_leaves_no_hold_behind() -> None:
    h = demo(SCHEDULE)
    h.clusters.fail_next.append(GatewayError("AuthorizationFailed", "no", transient=False))
    h.send({"id": "held", "pools": {"batch": 9}, "hold": "PT2H"})
    h.settle()
    outcome = h.outcome("held")
    assert outcome["outcome"] == "rejected"
    assert "hold" not in outcome
    assert not h.store.source(CLUSTER, "held").active  # type: ignore[union-attr]
    h.tick()
    h.settle()
    # Wednesday 13:00 Amsterdam: the schedule's 6 nodes, not the refused 9.
    assert h.clusters.state("batch").count == 6


def test_a_guardrail_rejects_the_whole_intent_and_nothing_is_written() -> None:
    h = demo()
    h.send({"id": "bad", "pools": {"batch": 4, "system": 0}})
    h.settle()
    outcome = h.outcome("bad")
    assert outcome["outcome"] == "rejected"
    assert outcome["error"]["code"] == "SystemPoolMinimum"
    assert h.clusters.writes == []


def test_an_issued_at_far_in_the_future_is_rejected() -> None:
    h = demo()
    h.send({"id": "future", "pools": {"batch": 4}, "issued_at": "2099-01-01T00:00:00Z"})
    outcome = h.messages.published[0]
    assert outcome["outcome"] == "rejected"
    assert outcome["error"]["field"] == "issued_at"
    h.send({"id": "now", "pools": {"batch": 3}})
    h.settle()
    assert h.clusters.state("batch").count == 3


def test_a_short_hold_survives_a_transient_failure() -> None:
    h = demo(SCHEDULE, SCALER_RETRY_BASE_SECONDS=1)
    h.clusters.fail_next.append(GatewayError("InternalServerError", "500", transient=True))
    h.send({"id": "short", "pools": {"batch": 9}, "hold": "PT10S"})
    h.settle(limit_seconds=5)
    finals = h.messages.finals("short")
    assert finals and finals[0]["outcome"] == "applied"
    assert finals[0]["hold"]["until"]
    assert h.clusters.state("batch").count == 9


def test_a_hold_beats_the_schedule_and_a_newer_intent() -> None:
    h = demo(SCHEDULE)
    h.send({"id": "hold", "pools": {"batch": 9}, "hold": "PT1H"})
    h.settle(limit_seconds=60)
    h.clock.advance(120)
    h.send({"id": "later", "pools": {"batch": 3}})
    h.settle(limit_seconds=60)
    h.tick()
    assert h.clusters.state("batch").count == 9
    assert h.outcome("later")["outcome"] == "superseded"
    h.clock.advance(3600)
    h.tick()
    h.settle()
    # The hold ended; the newer plain intent lasts until the window's end at 19:00.
    assert h.clusters.state("batch").count == 3


def test_a_plain_intent_lasts_until_the_schedules_next_transition() -> None:
    h = demo(SCHEDULE)
    h.tick()
    h.clock.advance(120)
    h.settle()
    h.send({"id": "ten", "pools": {"batch": 10}})
    h.settle()
    h.clock.advance(3600)
    h.tick()
    assert h.clusters.state("batch").count == 10  # still inside the 07:00-19:00 window
    h.clock.now = h.clock.now.replace(hour=18, minute=5)  # 19:05 Amsterdam
    h.tick()
    assert h.clusters.state("batch").is_stopped


def test_leases_add_up_and_give_back() -> None:
    h = demo()
    h.send({"id": "pipeline-a", "pools": {"gpu": 4}, "lease": "PT2H"})
    h.send({"id": "pipeline-b", "pools": {"gpu": 4}, "lease": "PT2H"})
    h.settle()
    assert h.clusters.state("gpu").count == 8
    h.clock.advance(300)
    h.send({"release": "pipeline-a"})
    h.settle()
    assert h.clusters.state("gpu").count == 4, "B keeps its nodes when A is done"
    h.clock.advance(300)
    h.send({"release": "pipeline-b"})
    h.settle()
    assert h.clusters.state("gpu").count == 0, "back to the state before the first lease"


def test_an_expired_lease_ends_by_itself() -> None:
    h = demo()
    h.send({"id": "crashed", "pools": {"batch": 5}, "lease": "PT30M"})
    h.settle(limit_seconds=60)
    assert h.clusters.state("batch").count == 5
    h.settle()  # the wake-up queued for the lease's end
    assert h.clusters.state("batch").count == 2


def test_a_lease_raises_an_autoscaled_pools_minimum_and_starts_a_stopped_pool() -> None:
    h = demo()
    h.send({"id": "l1", "pools": {"web": 4, "spot": 2}, "lease": "PT1H"})
    h.settle(limit_seconds=600)
    web = h.clusters.state("web")
    assert (web.min_count, web.max_count) == (4, 5)
    assert not h.clusters.state("spot").is_stopped


def test_a_lease_renewal_extends_it() -> None:
    h = demo()
    h.send({"id": "l", "pools": {"batch": 5}, "lease": "PT30M"})
    h.settle(limit_seconds=60)
    h.clock.advance(20 * 60)
    h.send({"id": "l", "pools": {"batch": 5}, "lease": "PT30M"})
    h.settle(limit_seconds=15 * 60)
    assert h.clusters.state("batch").count == 5, "renewed: still leased at minute 35"
    renewals = [o for o in h.messages.published if o["intent_id"] == "l"]
    assert [o.get("renewal", 0) for o in renewals] == [0, 1]


def test_a_busy_pool_is_not_read_in_a_loop() -> None:
    h = demo()
    h.send({"id": "a", "pools": {"batch": 5}})
    h.settle(limit_seconds=5)
    h.clock.advance(10)
    h.send({"id": "b", "pools": {"batch": 7}})
    h.settle()
    assert h.clusters.state("batch").count == 7
    assert len(h.clusters.writes) == 2
    assert h.clusters.reads <= 3
    assert h.outcome("b")["outcome"] == "applied"


def test_a_412_reads_once_more() -> None:
    h = demo()
    h.clusters.meddle.append("batch")
    h.send({"id": "a", "pools": {"batch": 5}})
    h.settle()
    assert h.clusters.reads == 2
    assert h.clusters.state("batch").count == 5


def test_transient_failures_are_retried_then_parked() -> None:
    h = demo(SCALER_MAX_ATTEMPTS=3, SCALER_RETRY_BASE_SECONDS=1)
    for _ in range(5):
        h.clusters.fail_next.append(GatewayError("InternalServerError", "500", transient=True))
    h.send({"id": "a", "pools": {"batch": 5}})
    h.settle()
    outcome = h.outcome("a")
    assert outcome["outcome"] == "poisoned"
    assert h.messages.parked[0]["id"] == "a"
    assert "500" in outcome["error"]["message"]


def test_enforce_false_lets_manual_changes_stand_until_the_next_transition() -> None:
    schedule = SCHEDULE.replace("[clusters.pools.batch]", "[clusters.pools.batch]\nenforce = false")
    h = demo(schedule)
    h.tick()
    assert h.clusters.state("batch").count == 6
    h.clock.advance(120)
    h.clusters.pools[CLUSTER]["batch"] = pool("batch", 3)  # someone scales it by hand
    h.tick()
    assert h.clusters.state("batch").count == 3
    h.clock.now = h.clock.now.replace(hour=18, minute=5)
    h.tick()
    assert h.clusters.state("batch").is_stopped


@pytest.mark.parametrize("enforce", ["true", "false"])
def test_the_schedule_converges_through_the_same_reconcile(enforce: str) -> None:
    h = demo(
        SCHEDULE.replace("[clusters.pools.batch]", f"[clusters.pools.batch]\nenforce = {enforce}")
    )
    outcomes = h.tick()
    assert [o["source"] for o in outcomes] == ["timer"]
    assert h.clusters.state("batch").count == 6
    h.clock.advance(600)
    assert h.tick() == []
    assert len(h.clusters.writes) == 1


def test_a_dry_run_that_meets_a_transient_failure_comes_back_then_is_parked() -> None:
    h = demo(SCALER_MAX_ATTEMPTS=2)
    h.clusters.fail_reads.extend(
        [GatewayError("InternalServerError", "500", transient=True) for _ in range(2)]
    )
    h.send({"id": "dry", "pools": {"batch": 5}, "dry_run": True})
    assert [o["outcome"] for o in h.messages.published] == ["deferred"]
    ((_, again),) = h.messages.retried
    assert again["_retry"] == {"attempt": 2} and again["dry_run"] is True
    h.send(again)
    assert [o["outcome"] for o in h.messages.published] == ["deferred", "poisoned"]
    assert h.messages.parked[0]["id"] == "dry"
    assert h.clusters.writes == []


def test_a_pool_tagged_off_is_never_written() -> None:
    h = demo(SCHEDULE)
    tagged = replace(h.clusters.state("batch"), tags={"Scaler": "OFF"})
    h.clusters.pools[CLUSTER]["batch"] = tagged
    h.send({"id": "plain", "pools": {"batch": 5}})
    h.send({"id": "lease", "pools": {"batch": 3, "gpu": 1}, "lease": "PT1H"})
    h.settle(limit_seconds=60)
    h.tick()
    assert not [name for name, _ in h.clusters.writes if name == "batch"]
    for intent_id in ("plain", "lease"):
        outcome = h.outcome(intent_id)
        assert outcome["outcome"] == "rejected"
        assert outcome["error"]["code"] == "Excluded"
        assert "Scaler=OFF" in outcome["error"]["message"]
        assert [p["outcome"] for p in outcome["pools"] if p["pool"] == "batch"] == ["excluded"]
