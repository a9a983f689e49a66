"""Use cases: what each entry point does, around the shared core (`scaler.applier`).

handle_queue_message   parse → drop duplicates → apply, claiming pools (latest intent wins,
                       holds) → retry later / park / finish → publish the outcome
run_schedule           load the schedule → desired state now → per cluster: skip held pools
                       → apply → publish what changed or failed
apply_intent           the core alone (the CLI's `plan`)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from scaler.applier import SCHEDULE, Applier
from scaler.clock import utc_now
from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import Intent, intent_id_of, parse_intent
from scaler.domain.outcomes import Outcome, Overall, PoolOutcome, PoolResult, Problem, overall_of
from scaler.domain.planner import Action
from scaler.domain.pool_records import PoolRecord
from scaler.domain.pools import PoolRequest
from scaler.domain.schedule_file import load_schedule
from scaler.pool_claims import IntentClaims
from scaler.ports import ClusterGateway, MessageGateway, ScheduleSource, StateStore
from scaler.settings import Settings

log = logging.getLogger("scaler")


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
        state: StateStore | None = None,
        schedule: ScheduleSource | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._messages = messages
        self._state = state
        self._schedule = schedule
        self._clock = clock
        self._applier = Applier(settings, clusters, clock)
        self._defaults = settings.intent_defaults()
        self._retry = RetryPolicy(
            settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds
        )

    @property
    def _outbox(self) -> MessageGateway:
        if self._messages is None:  # e.g. the CLI's plan, which only reads
            raise RuntimeError("this ScaleService was built without a MessageGateway")
        return self._messages

    @property
    def _store(self) -> StateStore:
        if self._state is None:
            raise RuntimeError("this ScaleService was built without a StateStore")
        return self._state

    # -- the queue use case ------------------------------------------------------------------

    def handle_queue_message(
        self,
        body: bytes | str,
        message_id: str | None = None,
        enqueued_at: datetime | None = None,
    ) -> Outcome | None:
        """Everything the queue trigger does with one message. Returns None for a second
        delivery of an intent that already has its final outcome. Raises only when storage
        itself fails, so the host's own retry (host.json) takes the message back."""
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
        if intent.issued_at is None:
            # Order by when the producer enqueued it; retries carry this time along.
            intent = replace(intent, issued_at=enqueued_at or self._clock())
        finished = self._store.finished(intent.id)
        if finished is not None:
            if not finished.published:  # the last delivery stopped between record and publish
                self._outbox.publish_outcome(finished.outcome)
                self._store.mark_published(intent.id)
            log.info(
                "intent %s already has its final outcome; duplicate delivery ignored",
                intent.id,
                extra={"correlation_id": intent.id},
            )
            return None
        outcome = replace(self._apply_latest(intent), message_id=message_id)
        if outcome.outcome is Overall.DEFERRED:
            outcome = self._retry_or_park(intent, outcome)
        if not outcome.final:
            return self._publish(outcome)
        if not self._store.mark_finished(intent.id, outcome.to_json()):
            # A concurrent delivery of the same intent finished first; its outcome is the final
            # one. Ours is still reported (it may have written), but not as final.
            return self._publish(replace(outcome, duplicate=True))
        self._publish(outcome)
        self._store.mark_published(intent.id)
        return outcome

    def parse(self, body: bytes | str) -> Intent:
        return parse_intent(body, self._defaults, self._clock())

    def apply_intent(self, intent: Intent, source: str) -> Outcome:
        return self._applier.apply(intent, source)

    # -- the timer use case ------------------------------------------------------------------

    def run_schedule(self, past_due: bool = False) -> list[Outcome]:
        """Converge every scheduled cluster to the schedule's state at this instant. A broken
        schedule changes nothing; a failing cluster does not stop the others. Each run is
        idempotent: a converged cluster costs one read and no write."""
        if self._schedule is None:
            raise RuntimeError("this ScaleService was built without a ScheduleSource")
        now = self._clock()
        run_id = f"schedule-{now:%Y%m%dT%H%M%SZ}"
        if past_due:
            log.warning(
                "schedule run %s is late (past due); converging to the state of now", run_id
            )
        try:
            text, source = self._schedule.read()
            schedule = load_schedule(text, source, self._settings.max_count, now)
        except InvalidInput as error:
            problem = Problem("InvalidSchedule", str(error), field=error.field or None)
            refused = Outcome(run_id, Overall.REJECTED, now, "timer", problem=problem)
            return [self._publish(refused)]
        for warning in schedule.warnings:
            log.warning("schedule %s: %s", source, warning)
        outcomes = []
        for target, pools in schedule.desired_at(now).items():
            cluster = target.ref(self._settings.subscription_id)
            intent = Intent(f"{run_id}-{target.key.replace('/', '-')}", cluster, pools, now)
            try:
                outcome = self._converge_scheduled(intent, now, source)
            except Exception as error:  # one broken cluster must not stop the others
                log.exception("schedule run %s failed for %s", run_id, target.key)
                problem = Problem("ScheduleRunFailed", f"{type(error).__name__}: {error}")
                outcome = Outcome(
                    intent.id,
                    Overall.DEFERRED,
                    now,
                    "timer",
                    cluster_id=cluster.resource_id,
                    problem=problem,
                )
            if outcome.outcome is Overall.UNCHANGED:
                log.debug("schedule run %s: %s unchanged", run_id, target.key)
            else:
                self._publish(outcome)
            outcomes.append(outcome)
        return outcomes

    def _converge_scheduled(self, intent: Intent, now: datetime, source: str) -> Outcome:
        records = self._store.pool_records(intent.cluster)
        self._forget_expired_holds(intent.cluster, records.values(), now)
        held = {name: r for name, r in records.items() if name in intent.pools and r.holds_at(now)}
        wanted = {name: want for name, want in intent.pools.items() if name not in held}
        to_apply = replace(intent, pools=wanted, reason=f"schedule {source}")
        if wanted:
            outcome = self._applier.apply(to_apply, "timer", SCHEDULE)
        else:  # every scheduled pool is held: not even a read
            outcome = Outcome(
                intent.id,
                Overall.UNCHANGED,
                now,
                "timer",
                cluster_id=intent.cluster.resource_id,
                reason=to_apply.reason,
            )
        if not held:
            return outcome
        pools = [*outcome.pools, *(_held(r, intent.pools[name]) for name, r in held.items())]
        # Without pool outcomes (a failed read) the outcome stands as it is.
        overall = overall_of(pools) if outcome.pools else outcome.outcome
        return replace(outcome, pools=tuple(pools), outcome=overall)

    def _forget_expired_holds(
        self, cluster: ClusterRef, records: Iterable[PoolRecord], now: datetime
    ) -> None:
        for record in records:
            if record.hold_until is not None and not record.holds_at(now):
                # Conditional: if an intent rewrote the record meanwhile, its version stands.
                self._store.save_pool_record(cluster, replace(record, hold_until=None), record)

    # -- latest intent wins ------------------------------------------------------------------

    def _apply_latest(self, intent: Intent) -> Outcome:
        """Apply the pools this intent is (still) the newest for; report the others stale."""
        if intent.dry_run:
            return self._applier.apply(intent, "queue")  # records nothing
        outcome = self._applier.apply(intent, "queue", claims=IntentClaims(self._store, intent))
        if intent.hold_until is not None and outcome.outcome is not Overall.STALE:
            outcome = replace(outcome, hold_until=intent.hold_until)
        return outcome

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


def _held(record: PoolRecord, scheduled: PoolRequest) -> PoolOutcome:
    assert record.hold_until is not None
    return PoolOutcome(
        pool=record.pool,
        requested=scheduled.to_json(),
        action=Action.NONE,
        result=PoolResult.HELD,
        problem=Problem(
            "Held",
            f"intent {record.intent_id} holds this pool until {record.hold_until.isoformat()}",
        ),
    )
