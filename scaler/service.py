"""Use cases: the one path every entry point takes to change pools.

    validate → guardrails → read pools (one ARM read per cluster) → plan → start writes

`apply_intent` is that path; `handle_queue_message` adds what the queue needs around it
(parsing the message, retrying transient failures later, parking spent ones, publishing the
outcome). The timer trigger will call `apply_intent` too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from scaler.clock import utc_now
from scaler.domain.clusters import is_allowed
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import Intent, intent_id_of, parse_intent
from scaler.domain.outcomes import Outcome, Overall, PoolOutcome, PoolResult, Problem, overall_of
from scaler.domain.planner import Action, PoolPlan, plan_pools
from scaler.ports import ClusterGateway, GatewayError, MessageGateway, StaleEtag
from scaler.settings import Settings

log = logging.getLogger("scaler")

# Reads per intent when writes keep meeting 412 (another writer got there first): the first
# read, then one re-read per race. Past that the intent is deferred rather than spin.
MAX_READS_PER_INTENT = 3


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: int
    max_seconds: int

    def delay(self, attempt: int, retry_after: int | None) -> int:
        """Exponential backoff per attempt, never sooner than Resource Manager's Retry-After."""
        backoff = min(self.base_seconds << min(attempt - 1, 20), self.max_seconds)
        return max(backoff, retry_after or 0)


class ScaleService:
    def __init__(
        self,
        settings: Settings,
        clusters: ClusterGateway,
        messages: MessageGateway | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._clusters = clusters
        self._messages = messages
        self._clock = clock
        self._defaults = settings.intent_defaults()
        self._retry = RetryPolicy(
            settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds
        )

    @property
    def _outbox(self) -> MessageGateway:
        if self._messages is None:  # e.g. the CLI's plan, which only reads
            raise RuntimeError("this ScaleService was built without a MessageGateway")
        return self._messages

    # -- the queue use case ------------------------------------------------------------------

    def handle_queue_message(self, body: bytes | str, message_id: str | None = None) -> Outcome:
        """Everything the queue trigger does with one message. Raises only when storage itself
        fails, so the host's own retry (host.json) takes the message back."""
        try:
            intent = self.parse(body)
        except InvalidInput as error:
            outcome = Outcome(
                intent_id=intent_id_of(body) or message_id or "unknown",
                outcome=Overall.REJECTED,
                at=self._clock(),
                source="queue",
                problem=Problem("InvalidIntent", str(error), field=error.field or None),
                message_id=message_id,
            )
            return self._publish(outcome)
        outcome = replace(self.apply_intent(intent, source="queue"), message_id=message_id)
        if outcome.outcome is Overall.DEFERRED:
            outcome = self._retry_or_park(intent, outcome)
        return self._publish(outcome)

    def parse(self, body: bytes | str) -> Intent:
        return parse_intent(body, self._defaults, self._clock())

    # -- the shared core ---------------------------------------------------------------------

    def apply_intent(self, intent: Intent, source: str) -> Outcome:
        base = Outcome(
            intent_id=intent.id,
            outcome=Overall.REJECTED,
            at=self._clock(),
            source=source,
            cluster_id=intent.cluster.resource_id,
            attempt=intent.attempt,
            reason=intent.reason,
        )
        if not is_allowed(
            intent.cluster, self._settings.allowed_clusters, self._settings.default_cluster
        ):
            return replace(
                base,
                problem=Problem(
                    "ClusterNotAllowed",
                    f"cluster {intent.cluster.short_name} is not in SCALER_ALLOWED_CLUSTERS",
                    field="cluster",
                ),
            )
        try:
            pools = self._converge(intent)
        except GatewayError as error:
            # The read itself failed: nothing was planned, nothing was written.
            problem = Problem(error.code, error.message, retry_after=error.retry_after)
            overall = Overall.DEFERRED if error.transient else Overall.REJECTED
            return replace(base, outcome=overall, problem=problem)
        return replace(base, outcome=overall_of(pools), pools=tuple(pools))

    def _converge(self, intent: Intent) -> list[PoolOutcome]:
        done: dict[str, PoolOutcome] = {}
        pending = dict(intent.pools)
        for read in range(MAX_READS_PER_INTENT):
            plans = plan_pools(self._clusters.list_pools(intent.cluster), pending)
            if read == 0 and any(p.refusal and not p.refusal.transient for p in plans):
                # All or nothing: one refused pool means the intent as sent is wrong.
                return [_refused_or_skipped(plan) for plan in plans]
            pending = {}
            for plan in plans:
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

    # -- retries -----------------------------------------------------------------------------

    def _retry_or_park(self, intent: Intent, outcome: Outcome) -> Outcome:
        if intent.attempt >= self._retry.max_attempts:
            self._outbox.park(intent.to_message())
            last = outcome.problem or next(p.problem for p in outcome.pools if p.problem)
            problem = Problem(
                "RetriesExhausted",
                f"gave up after {intent.attempt} attempts and parked the intent in the poison "
                f"queue; last error {last.code}: {last.message}",
            )
            return replace(outcome, outcome=Overall.POISONED, problem=problem)
        retry_after = max(
            [p.problem.retry_after or 0 for p in outcome.pools if p.problem]
            + [outcome.problem.retry_after or 0 if outcome.problem else 0]
        )
        delay = self._retry.delay(intent.attempt, retry_after)
        self._outbox.retry_later(replace(intent, attempt=intent.attempt + 1).to_message(), delay)
        return replace(outcome, retry_in_seconds=delay)

    def _publish(self, outcome: Outcome) -> Outcome:
        document = outcome.to_json()
        log.info(
            "intent %s: %s",
            outcome.intent_id,
            outcome.outcome.value,
            extra={"correlation_id": outcome.intent_id, "outcome": json.dumps(document)},
        )
        self._outbox.publish_outcome(document)
        return outcome


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
