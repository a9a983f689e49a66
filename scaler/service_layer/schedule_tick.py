"""The timer: the schedule is one more source, so a tick only reconciles every scheduled
cluster through the same `Reconciler` that intents use.

A schedule that cannot be read or is invalid changes nothing and is reported once per tick
(`InvalidSchedule`); a cluster that fails does not stop the others; a converged cluster costs
one read and no write.
"""

from __future__ import annotations

import logging

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.outcomes import Outcome, Overall, Problem
from scaler.service_layer.events import Events
from scaler.service_layer.intake import cluster_refusal
from scaler.service_layer.messages import publish
from scaler.service_layer.ports import Clock, MessageGateway
from scaler.service_layer.reconcile import Reconciler
from scaler.service_layer.schedules import Schedules
from scaler.settings import Settings

log = logging.getLogger("scaler")


class ScheduleTick:
    def __init__(
        self,
        settings: Settings,
        schedules: Schedules,
        reconciler: Reconciler,
        messages: MessageGateway,
        clock: Clock,
        events: Events | None = None,
    ) -> None:
        self._settings = settings
        self._events = events
        self._schedules = schedules
        self._reconciler = reconciler
        self._messages = messages
        self._clock = clock

    def run(self, past_due: bool = False) -> list[Outcome]:
        now = self._clock()
        run_id = f"schedule-{now:%Y%m%dT%H%M%SZ}"
        if past_due:
            log.warning(
                "schedule run %s is late (past due); converging to the state of now", run_id
            )
        try:
            schedule, name = self._schedules.load(now)
        except InvalidInput as error:
            problem = Problem("InvalidSchedule", str(error), field=error.field or None)
            return [self._publish(Outcome(run_id, Overall.REJECTED, now, "timer", problem=problem))]
        for warning in schedule.warnings:
            log.warning("schedule %s: %s", name, warning)
        outcomes: list[Outcome] = []
        for entry in schedule.clusters:
            cluster = self._schedules.cluster_ref(entry)

            def about(cluster: ClusterRef, overall: Overall, problem: Problem) -> Outcome:
                return self._publish(
                    Outcome(
                        f"{run_id}-{cluster.resource_group}-{cluster.name}",
                        overall,
                        now,
                        "timer",
                        cluster_id=cluster.resource_id,
                        problem=problem,
                    )
                )

            refusal = cluster_refusal(self._settings, cluster)
            if refusal is not None:
                outcomes.append(about(cluster, Overall.REJECTED, refusal))
                continue
            try:
                report = self._reconciler.reconcile(cluster, "timer", (entry, name))
            except Exception as error:  # one broken cluster must not stop the others
                log.exception("schedule run %s failed for %s", run_id, cluster.short_name)
                problem = Problem("ScheduleRunFailed", f"{type(error).__name__}: {error}")
                outcomes.append(about(cluster, Overall.DEFERRED, problem))
                continue
            if report.problem is not None:
                overall = Overall.DEFERRED if report.retrying else Overall.REJECTED
                outcomes.append(about(cluster, overall, report.problem))
            outcomes.extend(o for o in report.outcomes if o.source == "timer")
            if self._events is not None and report.upcoming:
                # After the outcomes: best effort, never raises.
                self._events.upcoming(report.upcoming, now)
        return outcomes

    def _publish(self, outcome: Outcome) -> Outcome:
        return publish(self._messages, outcome)
