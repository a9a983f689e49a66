"""Planner: a write only where the pool differs, and every AKS rule refused before a call."""

from __future__ import annotations

import pytest

from scaler.domain.planner import Action, plan_pool, plan_pools
from scaler.domain.pools import Autoscale, ManualCount, PoolRequest, PoolState, Power


def pool(name: str = "batch", **overrides: object) -> PoolState:
    fields: dict[str, object] = dict(
        name=name,
        mode="User",
        count=2,
        autoscale=False,
        min_count=None,
        max_count=None,
        power="Running",
        provisioning_state="Succeeded",
        etag="e1",
    )
    fields.update(overrides)
    return PoolState(**fields)  # type: ignore[arg-type]


SYSTEM = pool("system", mode="System", count=3)
MANUAL = pool("batch", count=2)
AUTO = pool("web", count=4, autoscale=True, min_count=2, max_count=10)
STOPPED = pool("gpu", count=0, power="Stopped")
SPOT = pool("spot", count=0, spot=True)


@pytest.mark.parametrize(
    ("current", "request_", "action", "target"),
    [
        (MANUAL, ManualCount(2), Action.NONE, None),
        (MANUAL, ManualCount(6), Action.SCALE, 6),
        (MANUAL, ManualCount(0), Action.SCALE, 0),
        (SPOT, ManualCount(3), Action.SCALE, 3),
        (SYSTEM, ManualCount(5), Action.SCALE, 5),
        (AUTO, Autoscale(2, 10), Action.NONE, None),
        (AUTO, Autoscale(1, 3), Action.AUTOSCALE, 3),  # count 4 clamped into the new bounds
        (AUTO, Autoscale(6, 20), Action.AUTOSCALE, 6),
        (MANUAL, Autoscale(1, 5), Action.AUTOSCALE, 2),  # turns the autoscaler on
        (MANUAL, Power("Stopped"), Action.STOP, None),
        (SPOT, Power("Stopped"), Action.STOP, None),
        (STOPPED, Power("Stopped"), Action.NONE, None),
        (STOPPED, Power("Running"), Action.START, None),
        (MANUAL, Power("Running"), Action.NONE, None),
        (STOPPED, ManualCount(0), Action.NONE, None),  # a stopped pool runs no nodes already
    ],
)
def test_plans_the_minimal_action(
    current: PoolState, request_: PoolRequest, action: Action, target: int | None
) -> None:
    plan = plan_pool(current, current.name, request_)
    assert plan.refusal is None
    assert (plan.action, plan.target_count) == (action, target)
    assert plan.needs_write is (action is not Action.NONE)


@pytest.mark.parametrize(
    ("current", "request_", "code", "message"),
    [
        (
            SYSTEM,
            ManualCount(0),
            "SystemPoolMinimum",
            "'system' is a System pool and keeps at least 1 node",
        ),
        (
            SYSTEM,
            Autoscale(0, 3),
            "SystemPoolMinimum",
            "'system' is a System pool and keeps at least 1 node (min)",
        ),
        (
            SYSTEM,
            Power("Stopped"),
            "SystemPoolStop",
            "'system' is a System pool; a cluster needs its system pools running",
        ),
        (
            AUTO,
            ManualCount(5),
            "AutoscalerEnabled",
            "pool 'web' has the autoscaler on (2-10); change its bounds with "
            '{"min": A, "max": B} instead of a node count',
        ),
        (
            STOPPED,
            ManualCount(3),
            "PoolStopped",
            'pool \'gpu\' is stopped; start it with {"power": "Running"} first (it resumes with '
            "its previous size), then scale it",
        ),
        (
            STOPPED,
            Autoscale(1, 3),
            "PoolStopped",
            'pool \'gpu\' is stopped; start it with {"power": "Running"} first (it resumes with '
            "its previous size), then scale it",
        ),
    ],
)
def test_refuses_what_aks_would_refuse(
    current: PoolState, request_: PoolRequest, code: str, message: str
) -> None:
    plan = plan_pool(current, current.name, request_)
    assert plan.refusal is not None and not plan.refusal.transient
    assert (plan.refusal.code, plan.refusal.message) == (code, message)
    assert not plan.needs_write


def test_a_missing_pool_is_refused() -> None:
    (plan,) = plan_pools([MANUAL], {"ghost": ManualCount(1)})
    assert plan.refusal is not None
    assert (plan.refusal.code, plan.refusal.message) == (
        "PoolNotFound",
        "pool 'ghost' does not exist in this cluster",
    )


def test_a_busy_pool_that_needs_a_change_waits() -> None:
    busy = pool("batch", provisioning_state="Scaling")
    plan = plan_pool(busy, "batch", ManualCount(5))
    assert plan.refusal is not None and plan.refusal.transient and plan.refusal.code == "PoolBusy"
    assert not plan.needs_write


def test_a_busy_pool_already_as_asked_needs_nothing() -> None:
    busy = pool("batch", count=5, provisioning_state="Scaling")
    plan = plan_pool(busy, "batch", ManualCount(5))
    assert plan.refusal is None and plan.action is Action.NONE


def test_only_the_requested_pools_are_planned_in_request_order() -> None:
    plans = plan_pools([SYSTEM, MANUAL, AUTO], {"web": Autoscale(2, 10), "batch": ManualCount(4)})
    assert [(p.name, p.action) for p in plans] == [("web", Action.NONE), ("batch", Action.SCALE)]


@pytest.mark.parametrize("request_", [ManualCount(3), Autoscale(1, 3)])
def test_the_schedule_starts_a_stopped_pool_before_sizing_it(request_: PoolRequest) -> None:
    plan = plan_pool(STOPPED, "gpu", request_, start_stopped=True)
    assert plan.refusal is None and plan.action is Action.START


def test_start_stopped_does_not_lift_other_refusals() -> None:
    plan = plan_pool(SYSTEM, "system", ManualCount(0), start_stopped=True)
    assert plan.refusal is not None and plan.refusal.code == "SystemPoolMinimum"
