"""Current pools + desired state → the smallest list of pool writes.

Pure: no I/O. A pool already in the desired state gets no write; every AKS rule a write would
break is refused here, before any call, with the same meaning the service would give it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from scaler.domain.pools import Autoscale, ManualCount, PoolRequest, PoolState, Power


class Action(StrEnum):
    NONE = "none"
    SCALE = "scale"
    AUTOSCALE = "autoscale"
    STOP = "stop"
    START = "start"


@dataclass(frozen=True)
class Refusal:
    """Why a pool will not be written. `transient` refusals are worth retrying later."""

    code: str
    message: str
    transient: bool = False
    retry_after: int | None = None


@dataclass(frozen=True)
class PoolPlan:
    name: str
    requested: PoolRequest
    before: PoolState | None
    action: Action
    # For SCALE and AUTOSCALE: the node count the write sends (clamped into autoscaler bounds).
    target_count: int | None = None
    refusal: Refusal | None = None

    @property
    def needs_write(self) -> bool:
        return self.refusal is None and self.action is not Action.NONE


def plan_pools(
    current: Iterable[PoolState],
    requested: Mapping[str, PoolRequest],
    start_stopped: bool = False,
) -> list[PoolPlan]:
    by_name = {pool.name: pool for pool in current}
    return [
        plan_pool(by_name.get(name), name, request, start_stopped)
        for name, request in requested.items()
    ]


def plan_pool(
    pool: PoolState | None, name: str, request: PoolRequest, start_stopped: bool = False
) -> PoolPlan:
    """`start_stopped`: a size asked of a stopped pool starts it (AKS cannot scale a stopped
    pool); the size follows on a later run. The schedule wants that; an intent is refused."""
    if pool is None:
        return PoolPlan(
            name,
            request,
            None,
            Action.NONE,
            refusal=_refused("PoolNotFound", f"pool '{name}' does not exist in this cluster"),
        )
    action, target, refusal = _decide(pool, request)
    if start_stopped and refusal is not None and refusal.code == STOPPED:
        action, target, refusal = Action.START, None, None
    if refusal is None and action is not Action.NONE and pool.is_busy:
        # AKS answers 409 to any write while an operation runs: wait rather than ask.
        refusal = Refusal(
            "PoolBusy",
            f"pool '{name}' is {pool.provisioning_state}; it is written once that finishes",
            transient=True,
        )
    return PoolPlan(name, request, pool, action, target, refusal)


def _decide(pool: PoolState, request: PoolRequest) -> tuple[Action, int | None, Refusal | None]:
    name = pool.name
    if isinstance(request, Power):
        if request.code == "Stopped":
            if pool.is_system:
                return (
                    Action.NONE,
                    None,
                    _refused(
                        "SystemPoolStop",
                        f"'{name}' is a System pool; a cluster needs its system pools running",
                    ),
                )
            return (Action.NONE if pool.is_stopped else Action.STOP), None, None
        return (Action.START if pool.is_stopped else Action.NONE), None, None

    if isinstance(request, ManualCount):
        if pool.is_system and request.count < 1:
            return (
                Action.NONE,
                None,
                _refused(
                    "SystemPoolMinimum", f"'{name}' is a System pool and keeps at least 1 node"
                ),
            )
        if pool.autoscale:
            return (
                Action.NONE,
                None,
                _refused(
                    "AutoscalerEnabled",
                    f"pool '{name}' has the autoscaler on ({pool.min_count}-{pool.max_count}); "
                    'change its bounds with {"min": A, "max": B} instead of a node count',
                ),
            )
        if pool.is_stopped:
            if request.count == 0:
                return Action.NONE, None, None  # a stopped pool already runs no nodes
            return Action.NONE, None, _stopped(name)
        if pool.count == request.count:
            return Action.NONE, None, None
        return Action.SCALE, request.count, None

    assert isinstance(request, Autoscale)
    if pool.is_system and request.min_count < 1:
        return (
            Action.NONE,
            None,
            _refused(
                "SystemPoolMinimum", f"'{name}' is a System pool and keeps at least 1 node (min)"
            ),
        )
    if pool.autoscale and (pool.min_count, pool.max_count) == (
        request.min_count,
        request.max_count,
    ):
        return Action.NONE, None, None
    if pool.is_stopped:
        return Action.NONE, None, _stopped(name)
    # AKS refuses a count outside the new bounds; the autoscaler would move it there anyway.
    target = min(max(pool.count, request.min_count), request.max_count)
    return Action.AUTOSCALE, target, None


def _refused(code: str, message: str) -> Refusal:
    return Refusal(code, message)


STOPPED = "PoolStopped"


def _stopped(name: str) -> Refusal:
    return _refused(
        STOPPED,
        f'pool \'{name}\' is stopped; start it with {{"power": "Running"}} first '
        "(it resumes with its previous size), then scale it",
    )
