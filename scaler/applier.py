"""The shared core every entry point goes through: guardrails → one read → plan → writes.

    Applier.apply(intent) → Outcome

It knows nothing of queues or timers: the queue use case adds parsing, retries and outcomes
around it, the timer adds the schedule, the CLI's `plan` calls it with `dry_run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from scaler.domain.clusters import is_allowed
from scaler.domain.intents import Intent
from scaler.domain.outcomes import Outcome, Overall, PoolOutcome, PoolResult, Problem, overall_of
from scaler.domain.planner import Action, PoolPlan, plan_pools
from scaler.domain.pool_records import PoolRecord
from scaler.ports import ClusterGateway, GatewayError, StaleEtag
from scaler.settings import Settings

# Reads per intent when writes keep meeting 412 (another writer got there first): the first
# read, then one re-read per race. Past that the intent is deferred rather than spin.
MAX_READS_PER_INTENT = 3


@dataclass(frozen=True)
class Mode:
    """How the core treats an intent; the entry point chooses."""

    # One refused pool rejects the whole intent: a queue intent is what someone sent, and half
    # of a mistaken intent is still a mistake. A schedule converges every pool it can.
    all_or_nothing: bool = True
    # A size asked of a stopped pool starts it first (the schedule) or is refused (an intent).
    start_stopped: bool = False


INTENT = Mode()
SCHEDULE = Mode(all_or_nothing=False, start_stopped=True)


class PoolClaims(Protocol):
    """ "Latest intent wins" for one intent's processing (the queue use case provides it).

    The order is what makes it hold under concurrency: claim *before* the read, check *after*
    each write. A newer intent that claimed before our check is told by the check (we retry and
    converge to its state); one that claims after our check reads after our write."""

    def claim(self, pools: list[str]) -> dict[str, PoolRecord]:
        """Record the intent as the newest for these pools where it is; return newer records."""
        ...

    def check(self, pools: list[str]) -> dict[str, PoolRecord]:
        """The records newer than the intent now (a read)."""
        ...

    def release(self) -> None:
        """Undo the claims: the intent was rejected and must not count as the newest word."""
        ...

    def settled(self, record: PoolRecord) -> bool:
        """Has the newer intent finished? If not, it converges the pool itself."""
        ...


class Applier:
    def __init__(
        self, settings: Settings, clusters: ClusterGateway, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        self._clusters = clusters
        self._clock = clock

    def not_allowed(self, intent: Intent) -> Problem | None:
        settings = self._settings
        if is_allowed(
            intent.cluster,
            settings.allowed_clusters,
            settings.default_cluster,
            settings.subscription_id,
        ):
            return None
        return Problem(
            "ClusterNotAllowed",
            f"cluster {intent.cluster.short_name} is not in SCALER_ALLOWED_CLUSTERS",
            field="cluster",
        )

    def apply(
        self,
        intent: Intent,
        source: str,
        mode: Mode = INTENT,
        claims: PoolClaims | None = None,
    ) -> Outcome:
        base = Outcome(
            intent_id=intent.id,
            outcome=Overall.REJECTED,
            at=self._clock(),
            source=source,
            cluster_id=intent.cluster.resource_id,
            attempt=intent.attempt,
            reason=intent.reason,
        )
        problem = self.not_allowed(intent)
        if problem is not None:
            return replace(base, problem=problem)
        try:
            pools = self._converge(intent, mode, claims)
        except GatewayError as error:
            # The read itself failed: nothing was planned, nothing was written.
            problem = Problem(error.code, error.message, retry_after=error.retry_after)
            overall = Overall.DEFERRED if error.transient else Overall.REJECTED
            return replace(base, outcome=overall, problem=problem)
        return replace(base, outcome=overall_of(pools), pools=tuple(pools))

    def _converge(self, intent: Intent, mode: Mode, claims: PoolClaims | None) -> list[PoolOutcome]:
        done: dict[str, PoolOutcome] = {}
        newer = claims.claim(list(intent.pools)) if claims else {}
        if (
            claims is not None
            and newer.keys() == intent.pools.keys()
            and not any(claims.settled(record) for record in newer.values())
        ):
            # Stale for every pool, and the newer intents are still on their way: they converge
            # the pools themselves, so this one needs not even a read.
            return [
                _as_asked(_untouched(intent, name), intent, newer[name]) for name in intent.pools
            ]
        pending = dict(intent.pools)
        for read in range(MAX_READS_PER_INTENT):
            current = self._clusters.list_pools(intent.cluster)
            plans = plan_pools(current, pending, mode.start_stopped)
            refused = [p for p in plans if p.refusal and not p.refusal.transient]
            if refused and mode.all_or_nothing and read == 0:
                if claims:
                    claims.release()
                return [_refused_or_skipped(plan) for plan in plans]
            # Where a newer intent is recorded, ours is stale. If the newer one has finished, make
            # sure the pool is in *its* state (a write of ours may have landed after its read);
            # if it has not, it will converge the pool itself.
            wanted = {name: newer[name].requested for name in pending if name in newer}
            replanned = {p.name: p for p in plan_pools(current, wanted, mode.start_stopped)}
            plans = [_for_newer(replanned.get(p.name), p, newer, claims) for p in plans]
            pending = {}
            written = []
            for plan in plans:
                if plan.refusal and not plan.refusal.transient:
                    done[plan.name] = _refused_or_skipped(plan)
                    continue
                if intent.dry_run or not plan.needs_write:
                    done[plan.name] = _without_write(plan, intent.dry_run)
                    continue
                try:
                    after = self._clusters.start_update(intent.cluster, plan)
                except StaleEtag:
                    pending[plan.name] = intent.pools[plan.name]
                    continue
                except GatewayError as error:
                    done[plan.name] = _failed(plan, error)
                    continue
                done[plan.name] = PoolOutcome.from_plan(plan, PoolResult.STARTED, after=after)
                written.append(plan.name)
            if claims and written:
                for name, record in claims.check(written).items():
                    if name not in newer:  # claimed while our write was in flight
                        newer[name] = record
                        done[name] = replace(
                            done[name],
                            result=PoolResult.DEFERRED,
                            problem=Problem(
                                "SupersededWhileWriting",
                                f"intent {record.intent_id} claimed the pool during this write; "
                                "retrying to converge to its state",
                            ),
                        )
            if not pending:
                break
        for plan in plans:
            if plan.name in pending:
                done[plan.name] = _failed(plan, StaleEtag("the pool kept changing under us"))
        return [_as_asked(done[name], intent, newer.get(name)) for name in intent.pools]


def _untouched(intent: Intent, pool: str) -> PoolOutcome:
    return PoolOutcome(pool, intent.pools[pool].to_json(), Action.NONE, PoolResult.UNCHANGED)


def _for_newer(
    replanned: PoolPlan | None,
    plan: PoolPlan,
    newer: dict[str, PoolRecord],
    claims: PoolClaims | None,
) -> PoolPlan:
    if replanned is None:
        return plan  # ours to apply
    if not replanned.needs_write or (claims and claims.settled(newer[plan.name])):
        return replanned
    return replace(replanned, action=Action.NONE)  # the newer intent is on its way


def _as_asked(outcome: PoolOutcome, intent: Intent, newer: PoolRecord | None) -> PoolOutcome:
    """Report the pool against what this intent asked; a superseded pool is `stale`, and says
    whether this run carried out the newer intent's state."""
    outcome = replace(outcome, requested=intent.pools[outcome.pool].to_json())
    if newer is None or outcome.result is PoolResult.DEFERRED:
        return outcome  # deferred: the retry converges to whatever is newest then
    carried_out = " (this run applied its state)" if outcome.result is PoolResult.STARTED else ""
    problem = Problem(
        "Superseded",
        f"intent {newer.intent_id} issued at {newer.issued_at.isoformat()} asked for this pool "
        f"later and wins{carried_out}",
    )
    return replace(outcome, result=PoolResult.STALE, problem=problem)


def _without_write(plan: PoolPlan, dry_run: bool) -> PoolOutcome:
    # Only transient refusals (a busy pool) get here; a dry run reports them and is done.
    problem = Problem(plan.refusal.code, plan.refusal.message) if plan.refusal else None
    if plan.action is Action.NONE:
        return PoolOutcome.from_plan(plan, PoolResult.UNCHANGED)
    if dry_run:
        return PoolOutcome.from_plan(plan, PoolResult.WOULD_CHANGE, problem=problem)
    return PoolOutcome.from_plan(plan, PoolResult.DEFERRED, problem=problem)


def _refused_or_skipped(plan: PoolPlan) -> PoolOutcome:
    if plan.refusal is None or plan.refusal.transient:
        return PoolOutcome.from_plan(plan, PoolResult.NOT_ATTEMPTED)
    problem = Problem(plan.refusal.code, plan.refusal.message, field=f"pools.{plan.name}")
    return PoolOutcome.from_plan(plan, PoolResult.REFUSED, problem=problem)


def _failed(plan: PoolPlan, error: GatewayError) -> PoolOutcome:
    result = PoolResult.DEFERRED if error.transient else PoolResult.FAILED
    problem = Problem(error.code, error.message, retry_after=error.retry_after)
    return PoolOutcome.from_plan(plan, result, problem=problem)
