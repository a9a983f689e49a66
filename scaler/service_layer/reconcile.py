"""Reconcile one cluster: its pools converge to what their sources ask, at the least cost.

    Reconciler.reconcile(cluster, trigger) → Report

1. one partition read of the desired-state store (sources, pool memos, marker);
2. pending sources are checked (id claimed across clusters, not expired, releases applied);
3. one ARM read of the cluster's pools, only if some pool has a source or a schedule;
4. resolve every such pool (domain/resolution.py), plan it (domain/planner.py); a pending
   intent that a guardrail refuses is rejected whole and resolution runs again without it;
5. write only the pools that differ, `If-Match` on each; a 412 re-reads once; a busy pool is
   not written: the reconcile comes back when its operation should have finished;
6. every pending intent gets its outcome; one conditional transaction records them;
7. before finishing, the store is read once more: sources recorded meanwhile are resolved
   against the pools as just written (no second ARM read), so a burst costs one pass;
8. the next wake-up (a busy pool, a retry, a hold or lease ending) is queued as one delayed
   message.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from scaler.domain.clusters import ClusterRef
from scaler.domain.events import UpcomingChange, upcoming_changes
from scaler.domain.outcomes import (
    Outcome,
    Overall,
    PoolOutcome,
    PoolResult,
    Problem,
    bounded,
    overall_of,
)
from scaler.domain.planner import Action, PoolPlan, plan_pool
from scaler.domain.pools import PoolState
from scaler.domain.resolution import Resolution, Why, resolve_pool
from scaler.domain.schedule import ClusterSchedule
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.events import Events
from scaler.service_layer.messages import (
    ReconcileRequest,
    cluster_of,
    log_outcome,
    publish,
    reconcile_message,
    run_outcome_id,
    source_message,
)
from scaler.service_layer.ports import (
    Clock,
    ClusterGateway,
    ClusterRecords,
    DesiredStateStore,
    GatewayError,
    Marker,
    MemoRecord,
    MessageGateway,
    SourceRecord,
    StaleEtag,
    Status,
    Write,
)
from scaler.service_layer.retry import RetryPolicy
from scaler.service_layer.schedules import Schedules
from scaler.settings import Settings

log = logging.getLogger("scaler")

# Passes of step 7 per reconcile: sources that keep arriving are left to the next reconcile.
MAX_PASSES = 3
# How long the reconcile that recorded a final outcome has to publish it before another
# reconcile takes it for a crash and publishes it instead.
PUBLISH_GRACE = timedelta(seconds=5)
# Azure queues hide a message for at most 7 days; a later wake-up is re-queued on arrival.
MAX_WAKE_DELAY = timedelta(days=6)
# A reconcile that lost the commit race looks again within this many seconds (random).
RACE_REQUEUE_MAX_SECONDS = 5
# How old a tick's listing in a reconcile message may be and still replace the cluster's read.
LISTING_MAX_AGE = timedelta(seconds=120)


@dataclass
class Report:
    """What one reconcile did (for the timer's outcome, the CLI and tests)."""

    cluster: ClusterRef
    reads: int = 0
    writes: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    pools: dict[str, PoolOutcome] = field(default_factory=dict)  # what each pool got
    problem: Problem | None = None  # the cluster could not be read
    retrying: bool = False  # ... and it is retried later (a transient failure)
    throttled: bool = False  # ... because Resource Manager's limits said wait
    skipped: str | None = None  # why nothing was done (coalescing, nothing to do)
    # Timer runs: the schedule's capacity cuts within SCALER_NOTICE_MINUTES (for events).
    upcoming: list[UpcomingChange] = field(default_factory=list)


@dataclass
class _Pass:
    """The working state of one pass over a cluster."""

    now: datetime
    records: ClusterRecords
    current: dict[str, PoolState]
    sources: dict[str, SourceRecord]  # the ones still asking (active), by id
    pending: dict[str, SourceRecord]  # waiting for an outcome, by id
    finished: dict[str, tuple[SourceRecord, Outcome]] = field(default_factory=dict)
    memos: dict[str, MemoRecord] = field(default_factory=dict)
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    plans: dict[str, PoolPlan] = field(default_factory=dict)
    results: dict[str, PoolOutcome] = field(default_factory=dict)
    wake: list[tuple[datetime, str]] = field(default_factory=list)
    retry_after: int = 0
    cluster: ClusterRef | None = None
    selected_by: str | None = None  # the tag selector that gave the cluster its schedule
    throttled: dict[str, int] = field(default_factory=dict)  # pool → 429s / pacing met
    failed: bool = False  # a transient failure other than throttling was met


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        clusters: ClusterGateway,
        store: DesiredStateStore,
        messages: MessageGateway,
        schedules: Schedules,
        clock: Clock,
        events: Events | None = None,
    ) -> None:
        self._settings = settings
        self._clusters = clusters
        self._store = store
        self._messages = messages
        self._schedules = schedules
        self._clock = clock
        self._events = events
        self._retry = RetryPolicy.from_settings(settings)

    def _listed(self, request: ReconcileRequest) -> list[PoolState] | None:
        """The pools a tick's listing put in the message, if young enough to plan from (a
        stale eTag would only cost a 412 and a read, but an old picture of a busy pool would
        cost a wasted write attempt)."""
        if request.pools is None or request.read_at is None:
            return None
        age = self._clock() - request.read_at
        if not timedelta(seconds=-5) <= age <= LISTING_MAX_AGE:
            return None
        try:
            return self._clusters.restore(request.pools)
        except ValueError as error:
            log.warning("listing in reconcile message ignored: %s", str(error)[:200])
            return None

    # -- the use cases -----------------------------------------------------------------------

    def handle_message(self, body: bytes | str, dequeue_count: int = 1) -> Report | None:
        """The `scale-reconcile` queue trigger. Messages come from the app itself (a tick, an
        intent, a wake-up); a malformed one or one for a cluster the allowlist does not cover
        is logged and dropped (there is nobody to send an outcome to)."""
        try:
            request = cluster_of(body)
        except ValueError as error:
            log.warning("reconcile message ignored: %s", str(error)[:200])
            return None
        cluster = request.cluster
        if not self._settings.allows(cluster):
            log.warning("reconcile message for %s ignored: not allowed", cluster.short_name)
            return None
        report = self.reconcile(
            cluster,
            trigger=request.reason,
            redelivered=dequeue_count > 1,
            listed=self._listed(request),
            selected_by=request.selected_by,
        )
        if self._events is not None and report.upcoming:
            self._events.upcoming(report.upcoming, self._clock())  # best effort, never raises
        return report

    def reconcile(
        self,
        cluster: ClusterRef,
        trigger: str = "wake",
        redelivered: bool = False,
        listed: list[PoolState] | None = None,
        selected_by: str | None = None,
    ) -> Report:
        """`listed`: the cluster's pools as a tick's LIST managedClusters read them moments
        ago (then this reconcile reads nothing itself). `selected_by`: the schedule's tag
        selector that picked the cluster. `redelivered`: the host gives this message again
        because the last try raised (e.g. publishing failed), so outcomes it recorded and did
        not publish are published first."""
        schedule, schedule_name = self._schedules.for_cluster(cluster, self._clock(), selected_by)
        report = Report(cluster)
        records = first = self._store.load(cluster)
        now = self._clock()
        if redelivered:
            self._publish_unpublished(cluster, records, now, grace=timedelta(0))
            records = first = self._store.load(cluster)
        if trigger == "intent":
            if not any(r.status is not Status.FINAL for r in records.sources.values()):
                # Another reconcile took care of the intents that asked for this one.
                report.skipped = "nothing pending"
                self._publish_unpublished(cluster, records, now)
                return report
            if self._still_arriving(cluster, records, now):
                report.skipped = "coalescing: intents are still arriving"
                return report
        current: dict[str, PoolState] | None = None
        seen_pending: set[str] = set()
        raced = False
        for number in range(MAX_PASSES):
            if number > 0:
                records = self._store.load(cluster)
                fresh = {
                    i for i, r in records.sources.items() if r.status is not Status.FINAL
                } - seen_pending
                if not fresh and not raced:
                    break
                now = self._clock()
            work = self._start(cluster, records, now)
            work.selected_by = selected_by
            if number > 0:  # only what arrived since: the rest has its outcome for this run
                work.pending = {i: r for i, r in work.pending.items() if i not in seen_pending}
            seen_pending |= set(work.pending)
            self._check_pending(cluster, work)
            pools = self._pools_in_question(work, schedule)
            if current is None:
                # The timer reads every cluster of the file (pools may follow profiles by tag).
                if not pools and not work.pending and not work.finished and trigger != "timer":
                    report.skipped = "no source or schedule asks for any pool"
                    self._publish_unpublished(cluster, records, now)
                    return report
                if listed is not None:
                    current = {p.name: p for p in listed}
                else:
                    try:
                        report.reads += 1
                        current = {p.name: p for p in self._clusters.list_pools(cluster)}
                    except GatewayError as error:
                        self._cluster_unreadable(cluster, work, error, report)
                        if trigger == "timer":  # nobody else would hear of it
                            self._publish(_unread_outcome(cluster, now, report), report)
                        return report
                schedule = self._tagged(cluster, schedule, current, now)
                pools = self._pools_in_question(work, schedule)
            work.current = current
            self._converge(cluster, work, schedule, pools, report)
            raced = not self._finish(cluster, work, report, schedule, trigger, schedule_name)
            if raced and not any(r.result is PoolResult.STARTED for r in work.results.values()):
                # Another reconcile recorded first, from records at least as new as ours, and
                # nothing of ours reached ARM: there is nothing to undo. Racing it again would
                # only feed a storm of reconciles of one cluster (each loser re-reading and
                # re-queuing); sources it did not see get one later reconcile, which skips
                # itself if they are decided by then.
                self._requeue_after_race(cluster, selected_by)
                return report
            if raced:
                # Our writes were planned from older records than the winner's: converge again
                # from fresh records and a fresh read of the pools.
                current = listed = None
                seen_pending = set()
                continue
            current = work.current
        if raced:  # still losing after every pass: come back soon rather than give up
            self._requeue_after_race(cluster, selected_by)
        self._publish_unpublished(cluster, first, now)
        return report

    def _requeue_after_race(self, cluster: ClusterRef, selected_by: str | None) -> None:
        """One later look after a lost race, spread over a few seconds so the reconciles that
        raced do not meet again; as an "intent" reconcile it skips itself when nothing is
        pending by then."""
        records = self._store.load(cluster)
        if any(r.status is not Status.FINAL for r in records.sources.values()):
            delay = random.randint(1, RACE_REQUEUE_MAX_SECONDS)
            message = reconcile_message(cluster, "intent", selected_by)
            self._messages.request_reconcile(message, delay)

    def preview(self, cluster: ClusterRef, extra: Source | None = None) -> Report:
        """What a reconcile would do now (with `extra` as if it were recorded): reads only.
        For dry runs and the CLI's `plan`."""
        schedule, _ = self._schedules.for_cluster(cluster, self._clock())
        report = Report(cluster)
        records = self._store.load(cluster)
        now = self._clock()
        work = self._start(cluster, records, now)
        if extra is not None:
            record = SourceRecord(extra, message_id="preview")
            work.sources[extra.id] = record
            work.pending[extra.id] = record
        pools = self._pools_in_question(work, schedule)
        try:
            report.reads += 1
            work.current = {p.name: p for p in self._clusters.list_pools(cluster)}
        except GatewayError as error:
            report.problem = Problem(error.code, error.message, retry_after=error.retry_after)
            report.retrying = error.transient
            return report
        schedule = self._tagged(cluster, schedule, work.current, now)
        pools = self._pools_in_question(work, schedule)
        self._resolve_and_plan(work, schedule, pools)
        for name, plan in work.plans.items():
            report.pools[name] = _pool_outcome(plan, work.resolutions[name], dry_run=True)
        for name, result in work.results.items():  # pools excluded by their tag
            report.pools.setdefault(name, result)
        report.resolutions = work.resolutions
        if extra is not None and extra.id in work.finished:
            report.problem = work.finished[extra.id][1].problem
        return report

    # -- steps -------------------------------------------------------------------------------

    def _tagged(
        self,
        cluster: ClusterRef,
        schedule: ClusterSchedule | None,
        current: Mapping[str, PoolState],
        now: datetime,
    ) -> ClusterSchedule | None:
        rules = self._settings.tag_rules
        return self._schedules.with_tag_profiles(cluster, schedule, current.values(), rules, now)

    def _still_arriving(self, cluster: ClusterRef, records: ClusterRecords, now: datetime) -> bool:
        """Trailing-edge coalescing: while intents keep arriving (the newest less than
        SCALER_COALESCE_SECONDS ago, the oldest less than SCALER_COALESCE_MAX_SECONDS ago),
        come back later instead of reading ARM: a burst then costs one read and one write."""
        quiet = timedelta(seconds=self._settings.coalesce_seconds)
        if not quiet:
            return False
        accepted = [
            r.source.accepted_at
            for r in records.sources.values()
            if r.status is Status.PENDING and r.attempt == 0
        ]
        if not accepted:
            return False
        newest, oldest = max(accepted), min(accepted)
        patience = timedelta(seconds=self._settings.coalesce_max_seconds)
        if now - newest >= quiet or now - oldest >= patience:
            return False
        delay = max(1, int((quiet - (now - newest)).total_seconds() + 0.999))
        self._messages.request_reconcile(reconcile_message(cluster, "intent"), delay)
        return True

    def _start(self, cluster: ClusterRef, records: ClusterRecords, now: datetime) -> _Pass:
        sources = {}
        for intent_id, record in records.sources.items():
            if record.active and record.source.active_at(now):
                sources[intent_id] = record
        pending = {i: r for i, r in records.sources.items() if r.status is not Status.FINAL}
        return _Pass(now, records, {}, sources, pending, memos=dict(records.memos), cluster=cluster)

    def _check_pending(self, cluster: ClusterRef, work: _Pass) -> None:
        """Before any ARM call: ids taken by another cluster, expired intents, releases."""
        unclaimed = [i for i, r in work.pending.items() if not r.claimed]
        taken = self._store.claim_ids(cluster, unclaimed) if unclaimed else {}
        for intent_id in unclaimed:
            record = work.pending[intent_id]
            if intent_id in taken:
                self._reject(
                    work,
                    record,
                    Problem(
                        "DuplicateId",
                        f"id {intent_id!r} is already used by an intent for cluster "
                        f"{taken[intent_id]}; ids are unique across clusters",
                        field="id",
                    ),
                )
            else:
                work.pending[intent_id] = replace(record, claimed=True)
                if intent_id in work.sources:
                    work.sources[intent_id] = work.pending[intent_id]
        for record in list(work.pending.values()):
            source = record.source
            if source.expires_at is not None and source.expires_at <= work.now:
                self._reject(
                    work,
                    record,
                    Problem(
                        "Expired",
                        f"the intent expired at {source.expires_at.isoformat()} before it "
                        "reached Resource Manager",
                        field="expires_at",
                    ),
                )
            elif source.kind is SourceKind.RELEASE:
                self._release(work, record)

    def _release(self, work: _Pass, record: SourceRecord) -> None:
        lease_id = record.source.releases
        lease = work.records.sources.get(lease_id or "")
        if lease is None or lease.source.kind is not SourceKind.LEASE:
            self._reject(
                work,
                record,
                Problem(
                    "UnknownLease",
                    f"no lease {lease_id!r} on this cluster",
                    field="release",
                ),
            )
            return
        ended = replace(lease, source=replace(lease.source, until=work.now), active=False)
        work.sources.pop(ended.source.id, None)
        if ended.source.id in work.pending:
            work.pending[ended.source.id] = ended
        work.finished.setdefault(ended.source.id, (ended, _NO_OUTCOME))
        # The release reports on the leased pools: what they get once the lease is gone.
        work.pending[record.source.id] = replace(
            record, source=replace(record.source, pools=dict(lease.source.pools))
        )

    def _pools_in_question(self, work: _Pass, schedule: ClusterSchedule | None) -> list[str]:
        names: dict[str, None] = {}
        for record in [*work.sources.values(), *work.pending.values()]:
            names.update(dict.fromkeys(record.source.pools))
        for name, memo in work.memos.items():
            if memo.memo.baseline is not None:
                names[name] = None
        if schedule is not None:
            names.update(dict.fromkeys(schedule.pool_names))
        return list(names)

    def _resolve_and_plan(
        self,
        work: _Pass,
        schedule: ClusterSchedule | None,
        pools: Iterable[str],
    ) -> None:
        """Resolve and plan every pool; a pending intent that a guardrail refuses is rejected
        whole (all or nothing: half of a mistaken intent is still a mistake) and the pools are
        resolved again without it."""
        pools = list(pools)
        rules = self._settings.tag_rules
        excluded = {n: t for n in pools if (t := rules.excluded(work.current.get(n))) is not None}
        while True:
            work.resolutions.clear()
            work.plans.clear()
            sources = [r.source for r in work.sources.values()]
            for name in pools:
                if name in excluded:
                    self._exclude(work, name, excluded[name])
                    continue
                memo = work.memos.get(name, MemoRecord(name)).memo
                resolution = resolve_pool(
                    name,
                    sources,
                    schedule,
                    memo,
                    work.current.get(name),
                    work.now,
                    self._settings.max_count,
                )
                work.resolutions[name] = resolution
                if resolution.request is not None:
                    work.plans[name] = plan_pool(
                        work.current.get(name), name, resolution.request, resolution.start_stopped
                    )
            culprits = self._refused_intents(work, excluded)
            if not culprits:
                return
            for intent_id, problem in culprits.items():
                record = work.pending[intent_id]
                self._reject(work, record, problem, self._as_far_as_planned(work, record.source))

    def _exclude(self, work: _Pass, name: str, tag: str) -> None:
        """The pool's owner opted it out: nobody's state is written to it, and it says why."""
        detail = f"the pool has the tag {tag}: the scaler never writes it"
        work.resolutions[name] = Resolution(name, None, Why("excluded", detail))
        work.results[name] = PoolOutcome(
            name,
            {},
            Action.NONE,
            PoolResult.EXCLUDED,
            work.current.get(name),
            problem=Problem("Excluded", f"pool '{name}': {detail}", field=f"pools.{name}"),
            why=work.resolutions[name].why.to_json(),
        )

    def _refused_intents(self, work: _Pass, excluded: Mapping[str, str]) -> dict[str, Problem]:
        culprits: dict[str, Problem] = {}
        for intent_id, record in work.pending.items():
            for name in record.source.pools:
                if name in excluded:
                    culprits[intent_id] = work.results[name].problem or _NO_PROBLEM
                    break
        for name, plan in work.plans.items():
            if plan.refusal is None or plan.refusal.transient:
                continue
            for intent_id in sorted(work.resolutions[name].carries):
                if intent_id in work.pending and intent_id not in culprits:
                    culprits[intent_id] = Problem(
                        plan.refusal.code, plan.refusal.message, field=f"pools.{name}"
                    )
        return culprits

    def _converge(
        self,
        cluster: ClusterRef,
        work: _Pass,
        schedule: ClusterSchedule | None,
        pools: list[str],
        report: Report,
    ) -> None:
        self._resolve_and_plan(work, schedule, pools)
        reread = False
        for name in list(work.plans):
            plan = work.plans[name]
            resolution = work.resolutions[name]
            if not plan.needs_write:
                self._no_write(work, name, plan)
                continue
            try:
                after = self._write(cluster, plan, report)
            except StaleEtag:
                if reread:
                    work.results[name] = _failed(plan, resolution, StaleEtag("changed again"))
                    work.wake.append(
                        (work.now + timedelta(seconds=self._retry.delay(1, None)), "412")
                    )
                    continue
                # Someone else wrote the pool since our read: read once more and re-plan.
                reread = True
                report.reads += 1
                try:
                    work.current = {p.name: p for p in self._clusters.list_pools(cluster)}
                except GatewayError as error:
                    work.results[name] = _failed(plan, resolution, error)
                    self._transient(work, error, [name])
                    continue
                plan = plan_pool(
                    work.current.get(name), name, plan.requested, resolution.start_stopped
                )
                work.plans[name] = plan
                if not plan.needs_write:
                    self._no_write(work, name, plan)
                    continue
                try:
                    after = self._write(cluster, plan, report)
                except GatewayError as error:
                    self._write_failed(work, name, plan, error)
                    continue
            except GatewayError as error:
                self._write_failed(work, name, plan, error)
                continue
            work.current[name] = after
            work.results[name] = _pool_outcome(plan, resolution, after=after)
            memo = work.memos.get(name, MemoRecord(name))
            work.memos[name] = replace(memo, last_write_at=work.now)
            # An operation now runs on the pool: sources that arrive meanwhile wait for it.
        self._remember(work)

    def _no_write(self, work: _Pass, name: str, plan: PoolPlan) -> None:
        """Already as resolved, refused, or busy (then: come back when it should be done)."""
        work.results[name] = _pool_outcome(plan, work.resolutions[name])
        if plan.refusal is not None and plan.refusal.transient:
            self._busy(work, name)

    def _write(self, cluster: ClusterRef, plan: PoolPlan, report: Report) -> PoolState:
        report.writes += 1
        return self._clusters.start_update(cluster, plan)

    def _write_failed(self, work: _Pass, name: str, plan: PoolPlan, error: GatewayError) -> None:
        resolution = work.resolutions[name]
        work.results[name] = _failed(plan, resolution, error)
        if error.transient:
            self._transient(work, error, [name])
            return
        # Resource Manager refused (400, 403, 404): the pending intents that asked for this
        # state are rejected and leave nothing behind; the next pass re-resolves without them.
        problem = Problem(error.code, error.message, field=f"pools.{name}")
        for intent_id in sorted(resolution.carries):
            if intent_id in work.pending:
                record = work.pending[intent_id]
                self._reject(work, record, problem, self._as_far_as_planned(work, record.source))
        work.wake.append((work.now, "a refused intent's other pools return"))

    def _busy(self, work: _Pass, name: str) -> None:
        """A pool whose operation still runs: come back when it should have finished (from our
        own write, if we started it), and never sooner than the backoff, so that a long AKS
        upgrade spends the retry budget over about as long as any other transient failure."""
        memo = work.memos.get(name)
        started = memo.last_write_at if memo and memo.last_write_at else work.now
        expected = started + timedelta(seconds=self._settings.operation_seconds)
        when = max(expected, work.now + timedelta(seconds=1))
        attempt = work.records.marker.attempt
        if attempt:  # busy (or failing) last time too: back off as for any transient failure
            when = max(when, work.now + timedelta(seconds=self._retry.delay(attempt, None)))
        work.wake.append((when, f"pool {name} busy"))

    def _transient(self, work: _Pass, error: GatewayError, pools: Iterable[str]) -> None:
        work.retry_after = max(work.retry_after, error.retry_after or 0)
        if error.throttled:
            # Resource Manager's limits, not a fault: come back when it says a token is there
            # (no exponential backoff: a fleet waits seconds, not the minutes a fault gets).
            for name in pools:
                work.throttled[name] = work.throttled.get(name, 0) + 1
            delay = timedelta(seconds=max(1, error.retry_after or 1))
        else:
            work.failed = True
            attempt = work.records.marker.attempt + 1
            delay = timedelta(seconds=self._retry.delay(attempt, error.retry_after))
        work.wake.append((work.now + delay, error.code))

    def _remember(self, work: _Pass) -> None:
        """Per pool: keep the lease baseline and the schedule state acted on, once reached."""
        for name, resolution in work.resolutions.items():
            memo = work.memos.get(name, MemoRecord(name))
            result = work.results.get(name)
            reached = result is not None and result.result in (
                PoolResult.STARTED,
                PoolResult.UNCHANGED,
            )
            after = resolution.memo_after
            if resolution.schedule_state is not None and reached:
                after = replace(after, schedule_seen=resolution.schedule_state)
            if resolution.why.source == "baseline" and not reached:
                after = memo.memo  # not back yet: keep the baseline for the next try
            if after != memo.memo:
                work.memos[name] = replace(memo, memo=after)

    # -- outcomes ----------------------------------------------------------------------------

    def _reject(
        self,
        work: _Pass,
        record: SourceRecord,
        problem: Problem,
        pools: tuple[PoolOutcome, ...] = (),
    ) -> None:
        """A rejected intent leaves no source behind: only its outcome stays."""
        outcome = self._outcome(work, record, Overall.REJECTED, pools, problem=problem)
        work.sources.pop(record.source.id, None)
        work.pending.pop(record.source.id, None)
        done = replace(record, active=False, status=Status.FINAL)
        work.finished[record.source.id] = (done, outcome)

    def _as_far_as_planned(self, work: _Pass, source: Source) -> tuple[PoolOutcome, ...]:
        """Each pool of a rejected intent: refused or failed where that happened, what was
        done where something was, `not_attempted` elsewhere."""
        pools = []
        for name, request in source.pools.items():
            plan = work.plans.get(name)
            resolution = work.resolutions.get(name)
            if name in work.results:
                pools.append(replace(work.results[name], requested=request.to_json()))
            elif plan is not None and resolution is not None and source.id in resolution.carries:
                outcome = _pool_outcome(plan, resolution)
                if outcome.result is not PoolResult.REFUSED:
                    outcome = replace(outcome, action=Action.NONE, result=PoolResult.NOT_ATTEMPTED)
                pools.append(replace(outcome, requested=request.to_json()))
            else:
                current = work.current.get(name)
                pools.append(
                    PoolOutcome(
                        name, request.to_json(), Action.NONE, PoolResult.NOT_ATTEMPTED, current
                    )
                )
        return tuple(pools)

    def _outcome(
        self,
        work: _Pass,
        record: SourceRecord,
        overall: Overall,
        pools: tuple[PoolOutcome, ...] = (),
        problem: Problem | None = None,
    ) -> Outcome:
        source = record.source
        recorded = overall not in (Overall.REJECTED, Overall.POISONED)
        return Outcome(
            intent_id=source.id,
            outcome=overall,
            at=work.now,
            source="queue",
            cluster_id=work.cluster.resource_id if work.cluster else None,
            attempt=record.attempt + 1,
            pools=pools,
            problem=problem,
            reason=source.reason,
            message_id=record.message_id,
            hold_until=source.until if recorded and source.kind is SourceKind.HOLD else None,
            lease_until=source.until if recorded and source.kind is SourceKind.LEASE else None,
            accepted_at=source.accepted_at,
            renewal=record.renewal,
            throttled=_throttled(work, source.pools),
        )

    def _decide_pending(self, cluster: ClusterRef, work: _Pass) -> None:
        for intent_id, record in list(work.pending.items()):
            pools = tuple(
                self._pool_for_source(work, record.source, name) for name in record.source.pools
            )
            overall = overall_of(pools) if pools else Overall.UNCHANGED
            if record.source.kind is SourceKind.RELEASE and overall is Overall.SUPERSEDED:
                overall = Overall.UNCHANGED  # the lease is gone; other sources decide: done
            outcome = self._outcome(work, record, overall, pools)
            if overall is Overall.DEFERRED:
                # Throttling is expected at fleet scale: waiting for it spends no attempt.
                throttled_only = all(
                    p.pool in work.throttled for p in pools if p.result is PoolResult.DEFERRED
                )
                spends = self._retry_is_due(work) and not throttled_only
                attempt = record.attempt + (1 if spends else 0)
                if attempt >= self._settings.max_attempts:
                    self._poison(work, record, outcome)
                    continue
                first = record.status is Status.PENDING
                deferred = replace(record, status=Status.DEFERRED, attempt=attempt)
                # When the reconcile comes back: the earliest wake-up (a busy pool's expected end,
                # a retry's backoff), as _next_wake queues it.
                soonest = min((when for when, _ in work.wake), default=None)
                delay = (
                    max(0, int((soonest - work.now).total_seconds() + 0.999))
                    if soonest is not None
                    else self._retry.delay(attempt, work.retry_after or None)
                )
                outcome = replace(outcome, retry_in_seconds=delay)
                wrote = any(p.result is PoolResult.STARTED for p in pools)
                # Published on the first deferral, and whenever this pass wrote one of the
                # intent's pools (every write is in some outcome); otherwise only logged.
                work.finished[intent_id] = (deferred, outcome if first or wrote else _NO_OUTCOME)
                continue
            active = record.active and record.source.kind is not SourceKind.RELEASE
            if overall is Overall.SUPERSEDED and self._replaced_by_newer_intent(work, record):
                active = False  # newer intents won every pool: this one never decides again
            done = replace(record, status=Status.FINAL, active=active)
            work.finished[intent_id] = (done, outcome)

    def _retry_is_due(self, work: _Pass) -> bool:
        """Does a deferral now spend one of the retry budget's attempts? Not while an earlier
        retry of this cluster is still queued: concurrent reconciles (a burst, wake-ups) must
        not spend in seconds the budget meant to cover SCALER_RETRY_MAX_SECONDS and more."""
        queued = work.records.marker.next_wake_at
        return queued is None or work.now >= queued - timedelta(seconds=1)

    def _replaced_by_newer_intent(self, work: _Pass, record: SourceRecord) -> bool:
        if record.source.kind is not SourceKind.INTENT:
            return False
        return all(
            name in work.resolutions and work.resolutions[name].why.source == "intent"
            for name in record.source.pools
        )

    def _pool_for_source(self, work: _Pass, source: Source, name: str) -> PoolOutcome:
        resolution = work.resolutions.get(name)
        result = work.results.get(name)
        requested = source.pools[name].to_json()
        if resolution is None or result is None:
            if not source.active_at(work.now):  # e.g. a short hold outlasted by retries
                ended = Problem(
                    "Ended",
                    f"the {source.kind} ended at {_iso(source.until)} before its state "
                    "reached Resource Manager",
                )
                return PoolOutcome(
                    name, requested, Action.NONE, PoolResult.SUPERSEDED, problem=ended
                )
            return PoolOutcome(name, requested, Action.NONE, PoolResult.UNCHANGED)
        if source.id in resolution.carries or source.kind is SourceKind.RELEASE:
            return replace(result, requested=requested)
        problem = Problem("Superseded", f"{resolution.why.detail} decides this pool (see why)")
        return replace(
            result,
            requested=requested,
            action=Action.NONE,
            result=PoolResult.SUPERSEDED,
            after=None,
            problem=problem,
        )

    def _poison(self, work: _Pass, record: SourceRecord, outcome: Outcome) -> None:
        last = next((p.problem for p in outcome.pools if p.problem), None)
        detail = f"; last error {last.code}: {last.message}" if last else ""
        problem = Problem(
            "RetriesExhausted",
            f"gave up after {record.attempt + 1} attempts and parked the intent in the poison "
            f"queue{detail}",
        )
        self._messages.park(source_message(record.source, work.cluster))
        work.sources.pop(record.source.id, None)
        done = replace(record, status=Status.FINAL, active=False, attempt=record.attempt + 1)
        work.finished[record.source.id] = (
            done,
            replace(
                outcome,
                outcome=Overall.POISONED,
                problem=problem,
                hold_until=None,
                lease_until=None,
            ),
        )

    def _unreported_outcome(
        self,
        cluster: ClusterRef,
        work: _Pass,
        trigger: str,
        schedule_name: str,
        problem: Problem | None = None,
    ) -> Outcome | None:
        """Every write is in some outcome. Pools that no intent's outcome of this pass reports
        (the schedule decided, a hold or lease ended, a lease's baseline came back, a pool had
        drifted from an earlier intent's state) get one of their own, when something changed
        or failed. Schedule-only: `source` "timer" (or "schedule" from a wake-up)."""
        reported: set[str] = set()
        for record, outcome in work.finished.values():
            if outcome is _NO_OUTCOME:  # an intent's retry, logged: its pools are its own
                reported.update(record.source.pools)
            else:
                reported.update(
                    p.pool for p in outcome.pools if p.result is not PoolResult.SUPERSEDED
                )
        quiet = (PoolResult.UNCHANGED, PoolResult.EXCLUDED)
        pools = tuple(
            result
            for name, result in work.results.items()
            if name not in reported and result.result not in quiet
        )
        if not pools:
            return None
        deciders = {
            work.resolutions[p.pool].why.source for p in pools if p.pool in work.resolutions
        }
        by_schedule = deciders == {"schedule"} and problem is None
        kind = "schedule" if by_schedule else "reconcile"
        return Outcome(
            intent_id=run_outcome_id(kind, work.now, cluster),
            outcome=overall_of(pools),
            at=work.now,
            source=("timer" if trigger == "timer" else "schedule") if by_schedule else "reconcile",
            cluster_id=cluster.resource_id,
            pools=pools,
            problem=problem,
            reason=f"schedule {schedule_name}"
            if by_schedule
            else "converging the cluster to its recorded sources",
            throttled=_throttled(work, (p.pool for p in pools)),
        )

    def _finish(
        self,
        cluster: ClusterRef,
        work: _Pass,
        report: Report,
        schedule: ClusterSchedule | None,
        trigger: str,
        schedule_name: str,
    ) -> bool:
        self._decide_pending(cluster, work)
        report.resolutions.update(work.resolutions)
        report.pools.update(work.results)
        writes: list[Write] = []
        to_publish: list[dict[str, Any]] = []
        for record, outcome in work.finished.values():
            document = bounded(outcome.to_json()) if outcome is not _NO_OUTCOME else None
            final = record.status is Status.FINAL
            if document is not None and final:
                record = replace(record, outcome=document, published=False)
            writes.append(record)
            if document is not None:
                to_publish.append(document)
                if final:
                    report.outcomes.append(outcome)
        for name, memo in work.memos.items():
            if memo != work.records.memos.get(name):
                writes.append(memo)
        marker = self._next_wake(cluster, work)
        if marker != work.records.marker:
            writes.append(marker)
        if writes and not self._store.commit(cluster, writes):
            # Another reconcile recorded first, perhaps from newer sources: what this pass
            # wrote is reported here, and the caller converges again from a fresh read.
            log.info("reconcile of %s raced another writer; reading again", cluster.short_name)
            work.finished.clear()
            raced = Problem(
                "RaceLost",
                "another reconcile of this cluster recorded its outcomes first; these writes "
                "were planned from older records and the cluster is converged again",
            )
            lost = self._unreported_outcome(cluster, work, trigger, schedule_name, raced)
            if lost is not None:
                self._publish(lost, report)
            return False
        if trigger == "timer" and schedule is not None:
            report.upcoming = self._upcoming(cluster, work, schedule)
        unreported = self._unreported_outcome(cluster, work, trigger, schedule_name)
        if unreported is not None:
            to_publish.append(bounded(unreported.to_json()))
            report.outcomes.append(unreported)
        for document in to_publish:
            log_outcome(document)
            self._messages.publish_outcome(document)
        published = [
            replace(r, published=True, version=None)
            for r, o in work.finished.values()
            if r.status is Status.FINAL and o is not _NO_OUTCOME
        ]
        if published:
            self._mark_published(cluster, published)
        return True

    def _upcoming(
        self, cluster: ClusterRef, work: _Pass, schedule: ClusterSchedule
    ) -> list[UpcomingChange]:
        """The schedule's capacity cuts within the notice period, from the pools as just
        written and the sources as just recorded (no further read)."""
        return upcoming_changes(
            cluster,
            schedule,
            schedule.pool_names,
            [r.source for r in work.sources.values()],
            {name: record.memo for name, record in work.memos.items()},
            work.current,
            work.now,
            timedelta(minutes=self._settings.notice_minutes),
            self._settings.max_count,
        )

    def _publish(self, outcome: Outcome, report: Report) -> None:
        report.outcomes.append(publish(self._messages, outcome))

    def _mark_published(self, cluster: ClusterRef, records: list[SourceRecord]) -> None:
        self._store.mark_published(cluster, [r.source.id for r in records])

    def _publish_unpublished(
        self,
        cluster: ClusterRef,
        records: ClusterRecords,
        now: datetime,
        grace: timedelta = PUBLISH_GRACE,
    ) -> None:
        """A crash between recording a final outcome and publishing it: publish it now (the
        same document, so consumers dedupe on outcome_id). Only once the outcome is older than
        PUBLISH_GRACE: a younger one is being published by the reconcile that recorded it, and
        publishing it here too would send it twice; for those, come back after the grace."""
        waiting = [
            r
            for r in records.sources.values()
            if r.status is Status.FINAL and not r.published and r.outcome is not None
        ]
        due = [r for r in waiting if _recorded_at(r) <= now - grace]
        for record in due:
            assert record.outcome is not None
            log_outcome(record.outcome)
            self._messages.publish_outcome(record.outcome)
        if due:
            self._mark_published(cluster, due)
        if len(due) < len(waiting):
            delay = int(grace.total_seconds()) + 1
            self._messages.request_reconcile(reconcile_message(cluster, "wake"), delay)

    def _next_wake(self, cluster: ClusterRef, work: _Pass) -> Marker:
        marker = work.records.marker
        wakes = list(work.wake)
        for record in work.sources.values():
            if record.source.until is not None and record.source.until > work.now:
                wakes.append((record.source.until, f"{record.source.kind} {record.source.id} ends"))
        deferred = any(r.status is Status.DEFERRED for r, _ in work.finished.values())
        if work.throttled and not work.failed:
            attempt = marker.attempt  # waiting on limits: no backoff grows from it
        else:
            attempt = marker.attempt + 1 if (work.retry_after or deferred) else 0
        if not wakes:
            return replace(marker, attempt=attempt)
        when, why = min(wakes)
        when = min(when, work.now + MAX_WAKE_DELAY)
        queued = marker.next_wake_at
        if queued is not None and work.now < queued <= when:
            return replace(marker, attempt=attempt)  # an earlier wake-up is already queued
        delay = max(0, int((when - work.now).total_seconds() + 0.999))
        pools = None
        if work.throttled and work.current and when - work.now <= LISTING_MAX_AGE:
            # Throttled pools were not written: the pools as this pass left them are what the
            # next one plans from, without spending a read on the same throttled limits.
            pools = self._clusters.snapshot(list(work.current.values()))
        message = reconcile_message(cluster, "wake", work.selected_by, pools, work.now)
        self._messages.request_reconcile(message, delay)
        log.info("reconcile of %s again in %s s: %s", cluster.short_name, delay, why)
        return replace(marker, next_wake_at=when, attempt=attempt)

    def _cluster_unreadable(
        self, cluster: ClusterRef, work: _Pass, error: GatewayError, report: Report
    ) -> None:
        problem = Problem(error.code, error.message, retry_after=error.retry_after)
        report.problem = problem
        report.retrying = error.transient
        report.throttled = error.throttled
        if error.transient:
            asked = {name for record in work.pending.values() for name in record.source.pools}
            self._transient(work, error, asked)
            self._defer_all(work, problem)
        else:
            for record in list(work.pending.values()):
                self._reject(work, record, problem)
        if not self._finish(cluster, work, report, None, "wake", ""):
            # Another reconcile recorded first; make sure someone looks again.
            message = reconcile_message(cluster, "wake", work.selected_by)
            self._messages.request_reconcile(message, 1)

    def _defer_all(self, work: _Pass, problem: Problem) -> None:
        for name in {n for r in work.pending.values() for n in r.source.pools}:
            work.results[name] = PoolOutcome(
                name, {}, Action.NONE, PoolResult.DEFERRED, problem=problem
            )
            unread = Why("none", "the cluster could not be read")
            work.resolutions.setdefault(
                name, Resolution(name, None, unread, frozenset(work.pending))
            )


_NO_PROBLEM = Problem("Excluded", "excluded by tag")
_NO_OUTCOME = Outcome("", Overall.UNCHANGED, datetime.min, "")  # a record change, no message


def _pool_outcome(
    plan: PoolPlan, resolution: Resolution, after: PoolState | None = None, dry_run: bool = False
) -> PoolOutcome:
    desired = resolution.request.to_json() if resolution.request is not None else None
    why = resolution.why.to_json()
    refusal = plan.refusal
    if refusal is not None and not refusal.transient:
        problem = Problem(refusal.code, refusal.message, field=f"pools.{plan.name}")
        return PoolOutcome.from_plan(
            plan, PoolResult.REFUSED, problem=problem, desired=desired, why=why
        )
    if after is not None:
        return PoolOutcome.from_plan(
            plan, PoolResult.STARTED, after=after, desired=desired, why=why
        )
    if plan.action is Action.NONE:
        return PoolOutcome.from_plan(plan, PoolResult.UNCHANGED, desired=desired, why=why)
    waiting = Problem(refusal.code, refusal.message) if refusal else None
    result = PoolResult.WOULD_CHANGE if dry_run else PoolResult.DEFERRED
    return PoolOutcome.from_plan(plan, result, problem=waiting, desired=desired, why=why)


def _failed(plan: PoolPlan, resolution: Resolution, error: GatewayError) -> PoolOutcome:
    result = PoolResult.DEFERRED if error.transient else PoolResult.FAILED
    problem = Problem(error.code, error.message, retry_after=error.retry_after)
    return replace(_pool_outcome(plan, resolution), result=result, problem=problem)


def _unread_outcome(cluster: ClusterRef, now: datetime, report: Report) -> Outcome:
    """A tick's reconcile that could not read its cluster: deferred (it comes back by itself)
    or rejected (Resource Manager refused: nothing to retry)."""
    return Outcome(
        run_outcome_id("schedule", now, cluster),
        Overall.DEFERRED if report.retrying else Overall.REJECTED,
        now,
        "timer",
        cluster_id=cluster.resource_id,
        problem=report.problem,
        throttled=int(report.throttled),
    )


def _throttled(work: _Pass, pools: Iterable[str]) -> int:
    return sum(work.throttled.get(name, 0) for name in pools)


def _recorded_at(record: SourceRecord) -> datetime:
    try:
        return datetime.fromisoformat(str((record.outcome or {}).get("at")))
    except ValueError:
        return datetime.min.replace(tzinfo=record.source.accepted_at.tzinfo)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "?"
