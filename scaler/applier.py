"""The shared core every entry point goes through: guardrails → one read → plan → writes.

    Applier.apply(intent) → Outcome

It knows nothing of queues or timers: the queue use case adds parsing, retries and outcomes
around it, the timer adds the schedule, the CLI's `plan` calls it with `dry_run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from scaler.domain.clusters import is_allowed
from scaler.domain.intents import Intent
from scaler.domain.outcomes import Outcome, Overall, PoolOutcome, PoolResult, Problem, overall_of
from scaler.domain.planner import Action, PoolPlan, plan_pools
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

# Asked between a round's read and its writes, with the pools about to be settled: returns the
# outcomes of those a newer intent has claimed. Claiming after the read is what makes "latest
# wins" hold under concurrency: a newer intent that writes first either shows in our read or
# makes our If-Match write fail, so an older intent can never overwrite it.
ClaimPools = Callable[[list[str]], dict[str, PoolOutcome]]


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
        claim: ClaimPools | None = None,
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
            pools = self._converge(intent, mode, claim)
        except GatewayError as error:
            # The read itself failed: nothing was planned, nothing was written.
            problem = Problem(error.code, error.message, retry_after=error.retry_after)
            overall = Overall.DEFERRED if error.transient else Overall.REJECTED
            return replace(base, outcome=overall, problem=problem)
        return replace(base, outcome=overall_of(pools), pools=tuple(pools))

    def _converge(self, intent: Intent, mode: Mode, claim: ClaimPools | None) -> list[PoolOutcome]:
        done: dict[str, PoolOutcome] = {}
        pending = dict(intent.pools)
        for read in range(MAX_READS_PER_INTENT):
            current = self._clusters.list_pools(intent.cluster)
            plans = plan_pools(current, pending, mode.start_stopped)
            refused = [p for p in plans if p.refusal and not p.refusal.transient]
            if refused and mode.all_or_nothing and read == 0:
                return [_refused_or_skipped(plan) for plan in plans]
            if claim is not None:
                lost = claim([plan.name for plan in plans if plan not in refused])
                done.update(lost)
                plans = [plan for plan in plans if plan.name not in lost]
            pending = {}
            for plan in plans:
                if plan in refused:
                    done[plan.name] = _refused_or_skipped(plan)
                    continue
                if intent.dry_run or not plan.needs_write:
                    done[plan.name] = _without_write(plan, intent.dry_run)
                    continue
                try:
                    after = self._clusters.start_update(intent.cluster, plan)
                except StaleEtag:
                    pending[plan.name] = plan.requested
                    continue
                except GatewayError as error:
                    done[plan.name] = _failed(plan, error)
                    continue
                done[plan.name] = PoolOutcome.from_plan(plan, PoolResult.STARTED, after=after)
            if not pending:
                break
        for plan in plans:
            if plan.name in pending:
                done[plan.name] = _failed(plan, StaleEtag("the pool kept changing under us"))
        return [done[name] for name in intent.pools]


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
