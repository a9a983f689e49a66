"""Queue message → validated intent → recorded source → reconcile request.

    Intake.handle_message(body, message_id, enqueued_at) → Outcome | None

The intent function does no ARM work of its own: it records what is asked (one conditional
insert) and makes sure a reconcile of the cluster is queued. The reconcile publishes the final
outcome. Outcomes published here, at once: a rejection before anything is recorded (invalid,
not allowed, an id already used for something else) and a dry run.

A redelivery (the same queue message again, or the same id asking the same thing) changes
nothing; the same lease id sent again renews the lease.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import Intent, intent_id_of, parse_intent
from scaler.domain.outcomes import Outcome, Overall, Problem
from scaler.domain.sources import SourceKind, source_of
from scaler.service_layer.messages import publish, reconcile_message
from scaler.service_layer.ports import Clock, DesiredStateStore, MessageGateway, SourceRecord
from scaler.service_layer.reconcile import Reconciler, Report
from scaler.service_layer.retry import RetryPolicy
from scaler.settings import Settings

log = logging.getLogger("scaler")


def _problem_text(problem: Problem | None) -> str:
    return f"{problem.code}: {problem.message}" if problem else "unknown"


def cluster_refusal(settings: Settings, cluster: ClusterRef) -> Problem | None:
    """The refusal every entry point gives a cluster outside SCALER_ALLOWED_CLUSTERS, before
    anything reads or writes it."""
    if settings.allows(cluster):
        return None
    return Problem(
        "ClusterNotAllowed",
        f"cluster {cluster.short_name} is not in SCALER_ALLOWED_CLUSTERS",
        field="cluster",
    )


class Intake:
    def __init__(
        self,
        settings: Settings,
        store: DesiredStateStore,
        messages: MessageGateway,
        reconciler: Reconciler,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._messages = messages
        self._reconciler = reconciler
        self._clock = clock
        self._defaults = settings.intent_defaults()
        self._retry = RetryPolicy.from_settings(settings)
        # cluster → when the reconcile this process queued becomes visible. Until then a new
        # source needs no message of its own: that reconcile reads the store after it.
        self._queued: dict[ClusterRef, datetime] = {}
        self._lock = threading.Lock()

    def parse(self, body: bytes | str) -> Intent:
        return parse_intent(body, self._defaults, self._clock())

    def handle_message(
        self,
        body: bytes | str,
        message_id: str,
        enqueued_at: datetime | None = None,
    ) -> Outcome | None:
        """Everything the intent trigger does with one message. Returns the outcome published
        now, if any. Raises only when storage fails, so the host's retry takes the message
        back (and its redelivery is recognised)."""
        now = self._clock()  # when the intent is accepted: holds and leases run from here
        try:
            intent = parse_intent(body, self._defaults, now)
        except InvalidInput as error:
            problem = Problem("InvalidIntent", str(error), field=error.field or None)
            return self._refuse(intent_id_of(body) or message_id, message_id, problem, now)
        if not intent.id:  # keyed by the message, so a redelivery is recognised
            intent = replace(intent, id=message_id)
        if intent.issued_at is None:
            intent = replace(intent, issued_at=min(enqueued_at or now, now))
        refusal = cluster_refusal(self._settings, intent.cluster)
        if refusal is not None:
            return self._refuse(intent.id, message_id, refusal, now, intent.cluster)
        if intent.dry_run:
            return self._dry_run(intent, message_id, now)
        record = SourceRecord(source_of(intent, now), message_id)
        stored = self._store.record(intent.cluster, record)
        if stored is None:
            self._request_reconcile(intent.cluster, now)
            return None
        return self._again(intent, record, stored, now)

    def plan(self, intent: Intent) -> Report:
        """What the intent would change now, with every other source (the CLI's `plan`)."""
        now = self._clock()
        hypothetical = replace(
            intent, id=intent.id or "this-intent", issued_at=intent.issued_at or now
        )
        source = source_of(hypothetical, now)
        return self._reconciler.preview(intent.cluster, source)

    # -- steps -------------------------------------------------------------------------------

    def _again(
        self, intent: Intent, record: SourceRecord, stored: SourceRecord, now: datetime
    ) -> Outcome | None:
        """The id is already recorded for this cluster."""
        if stored.message_id == record.message_id or (
            stored.source.same_request(record.source) and stored.source.kind is not SourceKind.LEASE
        ):
            log.info(
                "intent %s: redelivery; it has (or will get) its one final outcome",
                intent.id,
                extra={"correlation_id": intent.id},
            )
            self._request_reconcile(intent.cluster, now)  # in case the first try stopped early
            return None
        if stored.source.same_request(record.source):  # the same lease again: renew it
            renewed = replace(
                stored,
                source=replace(stored.source, until=record.source.until, accepted_at=now),
                message_id=record.message_id,
                status=record.status,
                active=True,
                outcome=None,
                published=False,
                attempt=0,
                renewal=stored.renewal + 1,
            )
            if not self._store.commit(intent.cluster, [renewed]):
                raise RuntimeError(f"lease {intent.id} changed while renewing it; retrying")
            self._request_reconcile(intent.cluster, now)
            return None
        problem = Problem(
            "DuplicateId",
            f"id {intent.id!r} is already used by another intent for this cluster (asking "
            f"{stored.source.kind} of {', '.join(sorted(stored.source.pools)) or 'a release'});"
            " use a new id",
            field="id",
        )
        return self._refuse(intent.id, record.message_id, problem, now, intent.cluster)

    def _dry_run(self, intent: Intent, message_id: str, now: datetime) -> Outcome:
        outcome = replace(
            self.preview(intent), message_id=message_id, at=now, attempt=intent.attempt
        )
        if outcome.outcome is Overall.DEFERRED:
            # A dry run records nothing for a reconcile to retry: it goes back on the queue.
            if intent.attempt >= self._settings.max_attempts:
                self._messages.park(intent.to_message())
                problem = Problem(
                    "RetriesExhausted",
                    f"gave up after {intent.attempt} attempts and parked the intent in the "
                    f"poison queue; last error {_problem_text(outcome.problem)}",
                )
                return self._publish(replace(outcome, outcome=Overall.POISONED, problem=problem))
            retry_after = outcome.problem.retry_after if outcome.problem else None
            retry = self._retry.delay(intent.attempt, retry_after)
            again = replace(intent, attempt=intent.attempt + 1)
            self._messages.retry_intent(again.to_message(), retry)
            outcome = replace(outcome, retry_in_seconds=retry)
        return self._publish(outcome)

    def preview(self, intent: Intent) -> Outcome:
        """The dry-run outcome of `intent`: what it would change now, resolved with every
        other recorded source and the schedule. Reads only (dry runs and the CLI's `plan`)."""
        report = self.plan(intent)
        pools = tuple(
            replace(report.pools[name], requested=request.to_json())
            for name, request in intent.pools.items()
            if name in report.pools
        )
        if report.problem is not None:
            overall = Overall.DEFERRED if report.retrying else Overall.REJECTED
        else:
            overall = Overall.DRY_RUN
        return Outcome(
            intent.id,
            overall,
            self._clock(),
            "queue",
            cluster_id=intent.cluster.resource_id,
            pools=pools,
            problem=report.problem,
            reason=intent.reason,
        )

    def _refuse(
        self,
        intent_id: str,
        message_id: str,
        problem: Problem,
        now: datetime,
        cluster: ClusterRef | None = None,
    ) -> Outcome:
        outcome = Outcome(
            intent_id,
            Overall.REJECTED,
            now,
            "queue",
            cluster_id=cluster.resource_id if cluster else None,
            problem=problem,
            message_id=message_id,
        )
        return self._publish(outcome)

    def _publish(self, outcome: Outcome) -> Outcome:
        return publish(self._messages, outcome)

    def _request_reconcile(self, cluster: ClusterRef, now: datetime) -> None:
        delay = self._settings.coalesce_seconds
        with self._lock:
            queued = self._queued.get(cluster)
            if queued is not None and now < queued - timedelta(milliseconds=200):
                return  # that reconcile reads the store after this source was recorded
            self._queued[cluster] = now + timedelta(seconds=delay)
        self._messages.request_reconcile(reconcile_message(cluster, "intent"), int(delay + 0.999))
