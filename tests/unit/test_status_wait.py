"""`send --wait`'s decisions on in-memory ports: which row answers for the message just sent
(its own, an earlier send of the same intent, a lease renewal not taken yet, another intent's
id), the exit status per outcome, timeouts on a fake clock, and readiness per pool form."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scaler.cli import wait
from scaler.cli.intents import outcome_lines
from scaler.cli.io import CliError
from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.ports import GatewayError, SourceRecord, Status
from tests.fakes import CLUSTER, pool

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock that moves only when the waiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def waiter(timeout: float, lines: list[str] | None = None) -> tuple[wait.Waiter, Ticks]:
    ticks = Ticks()
    progress = lines.append if lines is not None else (lambda line: None)
    return wait.Waiter(timeout, progress, ticks.clock, ticks.sleep), ticks


def source(kind: SourceKind = SourceKind.INTENT, count: int = 4, id: str = "i-1") -> Source:
    until = T0 + timedelta(hours=1) if kind is not SourceKind.INTENT else None
    return Source(id, kind, {"batch": ManualCount(count)}, T0, T0, until=until)


def final(outcome: str, **extra: Any) -> dict[str, Any]:
    return {"intent_id": "i-1", "outcome": outcome, "error": None, "pools": [], **extra}


class Scripted:
    """A store whose point read answers from a script, one answer per read."""

    def __init__(self, *answers: SourceRecord | Exception | None) -> None:
        self.answers = list(answers)
        self.reads = 0

    def source(self, cluster: object, intent_id: str) -> SourceRecord | None:
        self.reads += 1
        answer = self.answers[min(self.reads, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        ("applied", wait.DONE, 0),
        ("unchanged", wait.DONE, 0),
        ("superseded", wait.DONE, 0),
        ("rejected", wait.REJECTED, 4),
        ("poisoned", wait.POISONED, 5),
    ],
)
def test_the_own_rows_final_outcome_decides(outcome: str, status: str, code: int) -> None:
    mine = SourceRecord(source(), "msg-1")
    done = replace(mine, status=Status.FINAL, outcome=final(outcome))
    store = Scripted(None, mine, replace(mine, status=Status.DEFERRED, attempt=1), done)
    lines: list[str] = []
    the_waiter, ticks = waiter(60, lines)
    waited = wait.wait_for_outcome(store, CLUSTER, source(), "msg-1", the_waiter)
    assert (waited.status, wait.EXIT_CODES[waited.status]) == (status, code)
    assert waited.outcome == final(outcome)
    assert store.reads == 4 and ticks.sleeps == 3
    assert lines == [
        "intent i-1: recorded, waiting for its reconcile",
        "intent i-1: deferred (attempt 1); the app retries it",
    ]
    if outcome == "superseded":
        assert waited.note is not None and waited.note.startswith("done: a newer")
        assert outcome_lines("i-1", waited)[1].startswith("  (done: a newer")


def test_an_earlier_send_of_the_same_intent_gives_its_outcome() -> None:
    earlier = SourceRecord(source(), "msg-0", Status.FINAL, outcome=final("applied"))
    waited = wait.wait_for_outcome(Scripted(earlier), CLUSTER, source(), "msg-1", waiter(5)[0])
    assert waited.status == wait.DONE and waited.outcome == final("applied")
    assert waited.note is not None and "sent before (message msg-0)" in waited.note


def test_a_lease_renewal_waits_for_its_own_message() -> None:
    lease = source(SourceKind.LEASE)
    old = SourceRecord(lease, "msg-0", Status.FINAL, outcome=final("applied", renewal=0))
    renewed = SourceRecord(lease, "msg-1", Status.FINAL, outcome=final("unchanged", renewal=1))
    store = Scripted(old, old, renewed)
    waited = wait.wait_for_outcome(store, CLUSTER, lease, "msg-1", waiter(60)[0])
    assert waited.outcome == final("unchanged", renewal=1) and store.reads == 3


def test_an_id_taken_by_another_request_is_rejected_as_the_app_does() -> None:
    other = SourceRecord(source(count=9), "msg-0", Status.FINAL, outcome=final("applied"))
    waited = wait.wait_for_outcome(Scripted(other), CLUSTER, source(), "msg-1", waiter(5)[0])
    assert waited.status == wait.REJECTED and waited.outcome is None
    assert waited.note is not None and waited.note.startswith("DuplicateId: id 'i-1'")
    assert outcome_lines("i-1", waited) == [f"intent i-1: rejected: {waited.note}"]


def test_no_outcome_in_time_is_a_timeout() -> None:
    the_waiter, ticks = waiter(3.5)
    waited = wait.wait_for_outcome(Scripted(None), CLUSTER, source(), "msg-1", the_waiter)
    assert waited.status == wait.TIMED_OUT and waited.last_seen == "not recorded yet"
    assert ticks.now == pytest.approx(3.5)


def test_storage_errors_are_retried_then_reported_as_unreachable() -> None:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    blip = ServiceRequestError("connection refused")
    mine = SourceRecord(source(), "msg-1", Status.FINAL, outcome=final("applied"))
    waited = wait.wait_for_outcome(Scripted(blip, mine), CLUSTER, source(), "msg-1", waiter(9)[0])
    assert waited.status == wait.DONE
    with pytest.raises(CliError) as down:
        wait.wait_for_outcome(Scripted(blip), CLUSTER, source(), "msg-1", waiter(2)[0])
    assert down.value.code == 3
    forbidden = HttpResponseError("This request is not authorized")
    forbidden.status_code = 403
    with pytest.raises(CliError) as refused:
        wait.wait_for_outcome(Scripted(forbidden), CLUSTER, source(), "msg-1", waiter(60)[0])
    assert refused.value.code == 3 and "Storage Table Data Reader" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT5M", 300), ("90", 90), ("2.5", 2.5), ("P1DT1S", 86401)]
)
def test_durations(text: str, seconds: float) -> None:
    assert wait.duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "0", "-5", "PT0S", "P1M"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        wait.duration(text)


def test_readiness_per_pool_form() -> None:
    assert wait.is_ready(pool("batch", 4), ManualCount(4))
    assert not wait.is_ready(pool("batch", 4, state="Scaling"), ManualCount(4))
    assert not wait.is_ready(pool("batch", 3), ManualCount(4))
    assert not wait.is_ready(pool("batch", 4, autoscale=(1, 5)), ManualCount(4))
    assert wait.is_ready(pool("web", 3, autoscale=(2, 5)), Autoscale(2, 5))
    assert not wait.is_ready(pool("web", 1, autoscale=(2, 5)), Autoscale(2, 5))
    assert not wait.is_ready(pool("web", 3, autoscale=(2, 6)), Autoscale(2, 5))
    assert wait.is_ready(pool("gpu", 0, power="Stopped"), Power("Stopped"))
    assert not wait.is_ready(pool("gpu", 0, power="Stopped"), Power("Running"))
    assert wait.is_ready(pool("gpu", 2), None) and not wait.is_ready(None, None)


def test_targets_come_from_the_outcomes_desired_state() -> None:
    outcome = final(
        "applied",
        pools=[
            {"pool": "batch", "desired": {"count": 7}},
            {"pool": "web", "desired": {"min": 2, "max": 6}},
            {"pool": "gpu", "desired": None},
        ],
    )
    assert wait.targets_of(outcome) == {
        "batch": ManualCount(7),
        "web": Autoscale(2, 6),
        "gpu": None,
    }


class Pools:
    def __init__(self, *reads: list[Any] | GatewayError) -> None:
        self.reads = list(reads)
        self.count = 0

    def list_pools(self, cluster: object) -> list[Any]:
        self.count += 1
        answer = self.reads[min(self.count, len(self.reads)) - 1]
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    def start_update(self, cluster: object, plan: object) -> Any:
        raise AssertionError("reads only")


def test_until_ready_reads_until_succeeded() -> None:
    busy = [pool("batch", 5, state="Scaling")]
    throttled = GatewayError("TooManyRequests", "slow down", transient=True)
    gateway = Pools(busy, throttled, busy, [pool("batch", 5)])
    lines: list[str] = []
    ready, last = wait.wait_until_ready(
        gateway, CLUSTER, {"batch": ManualCount(5)}, waiter(60, lines)[0]
    )
    assert ready and last["batch"].provisioning_state == "Succeeded" and gateway.count == 4
    assert lines == [
        "batch: 5 nodes, Scaling (operation in progress); waiting for 5 nodes, "
        "provisioningState Succeeded"
    ]
    ready, last = wait.wait_until_ready(
        Pools(busy), CLUSTER, {"batch": ManualCount(5)}, waiter(2)[0]
    )
    assert not ready and last["batch"].is_busy
    gone = GatewayError("ResourceNotFound", "no such cluster", transient=False)
    with pytest.raises(CliError) as unreadable:
        wait.wait_until_ready(Pools(gone), CLUSTER, {"batch": None}, waiter(60)[0])
    assert unreadable.value.code == 3
