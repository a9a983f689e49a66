"""The timer: the schedule is one more source, and a tick only fans it out.

    ScheduleTick.run() → outcomes of the tick itself (an unusable schedule, a refused cluster)

1. load the schedule (an unusable one changes nothing and is reported once: `InvalidSchedule`);
2. its clusters: the entries that name one, plus (one paged Azure Resource Graph query) the
   clusters a `select = { tag = ... }` entry picks; always intersected with the allowlist (a
   cluster outside it is never read, whatever its tags);
3. per subscription with at least SCALER_FLEET_LIST_MIN_CLUSTERS of them: one paged
   `LIST managedClusters`, whose pools (with their eTags) travel in the reconcile messages, so
   the reconciles read nothing themselves;
4. one `scale-reconcile` message per cluster, sent concurrently; the queue trigger reconciles
   them (coalescing, idempotency, If-Match writes: service_layer/reconcile.py), so Flex
   Consumption spreads a fleet over instances.

A tick's own Resource Manager work is O(subscriptions) (pages of a list), not O(clusters) or
O(pools); its messages are one per cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.outcomes import Outcome, Overall, Problem
from scaler.domain.schedule import Schedule
from scaler.service_layer.intake import cluster_refusal
from scaler.service_layer.messages import publish, reconcile_message, run_outcome_id
from scaler.service_layer.ports import (
    Clock,
    ClusterDirectory,
    ClusterGateway,
    ClusterListing,
    GatewayError,
    MessageGateway,
)
from scaler.service_layer.schedules import Schedules
from scaler.settings import Settings

log = logging.getLogger("scaler")


@dataclass(frozen=True)
class _Target:
    cluster: ClusterRef
    selected_by: str | None = None  # the `select` entry's tag, for clusters picked by tag


class ScheduleTick:
    def __init__(
        self,
        settings: Settings,
        schedules: Schedules,
        clusters: ClusterGateway,
        messages: MessageGateway,
        clock: Clock,
        directory: ClusterDirectory | None = None,
    ) -> None:
        self._settings = settings
        self._schedules = schedules
        self._clusters = clusters
        self._messages = messages
        self._clock = clock
        self._directory = directory

    def run(self, past_due: bool = False) -> list[Outcome]:
        now = self._clock()
        run_id = run_outcome_id("schedule", now)
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
        targets = self._named(schedule, now, outcomes)
        targets += self._tagged(schedule, targets, run_id, now, outcomes)
        by_subscription: dict[str, list[_Target]] = {}
        for target in targets:
            by_subscription.setdefault(target.cluster.subscription_id.lower(), []).append(target)
        listed = 0
        for group in by_subscription.values():
            listings = self._listings(group)
            listed += bool(listings)
            requests = [self._request(target, listings, now) for target in group]
            self._messages.request_reconciles(requests)
        log.info(
            "schedule run %s: %d clusters queued for a reconcile, %d subscriptions, %d listed",
            run_id,
            len(targets),
            len(by_subscription),
            listed,
        )
        return outcomes

    def _named(self, schedule: Schedule, now: datetime, outcomes: list[Outcome]) -> list[_Target]:
        """The clusters the file names; one the allowlist refuses gets a rejected outcome."""
        targets = []
        for entry in schedule.clusters:
            cluster = self._schedules.cluster_ref(entry)
            refusal = cluster_refusal(self._settings, cluster)
            if refusal is None:
                targets.append(_Target(cluster))
            else:
                outcomes.append(self._refused(now, cluster, refusal))
        return targets

    def _tagged(
        self,
        schedule: Schedule,
        named: Sequence[_Target],
        run_id: str,
        now: datetime,
        outcomes: list[Outcome],
    ) -> list[_Target]:
        """The clusters `select` entries pick, found with one Resource Graph query. A cluster
        the file also names keeps its own entry; one the allowlist does not cover is skipped
        (quietly: a tag is no request to be scaled, and the allowlist is the operator's)."""
        selectors = [entry.selector for entry in schedule.selections if entry.selector]
        if not selectors:
            return []
        if self._directory is None:
            log.warning("schedule selects clusters by tag, but no Resource Graph client is set")
            return []
        try:
            found = self._directory.find_tagged(selectors, self._settings.allowed_subscriptions())
        except GatewayError as error:
            # The named clusters still go ahead; the tagged ones wait for the next tick.
            problem = Problem(error.code, error.message, retry_after=error.retry_after)
            outcomes.append(
                self._publish(
                    Outcome(f"{run_id}-select", Overall.DEFERRED, now, "timer", problem=problem)
                )
            )
            return []
        seen = {_key(target.cluster) for target in named}
        targets = []
        for listing in found:
            cluster = listing.cluster
            if _key(cluster) in seen or not self._settings.allows(cluster):
                continue
            entry = schedule.selected(cluster, listing.tags)
            if entry is None or entry.selector is None:  # e.g. another subscription
                continue
            seen.add(_key(cluster))
            targets.append(_Target(cluster, entry.selector.text))
        return targets

    def _listings(self, group: Sequence[_Target]) -> dict[str, ClusterListing]:
        """One paged LIST managedClusters for the subscription, when the tick reconciles enough
        of its clusters for the list to be the cheaper read (documented in the README: the
        list's pages cost one read each, a cluster's own read one per cluster from a bucket of
        60 shared by the subscription). A failed list leaves each cluster to read its own."""
        wanted = self._settings.fleet_list_min_clusters
        if not wanted or len(group) < wanted:
            return {}
        subscription = group[0].cluster.subscription_id
        try:
            return {
                _key(listing.cluster): listing
                for listing in self._clusters.list_clusters(subscription)
            }
        except GatewayError as error:
            log.warning(
                "listing the clusters of %s failed (%s); each reads its own pools",
                subscription,
                error,
            )
            return {}

    def _request(
        self, target: _Target, listings: dict[str, ClusterListing], now: datetime
    ) -> dict[str, Any]:
        listing = listings.get(_key(target.cluster))
        pools = self._clusters.snapshot(listing.pools) if listing is not None else None
        return reconcile_message(target.cluster, "timer", target.selected_by, pools, now)

    def _refused(self, now: datetime, cluster: ClusterRef, problem: Problem) -> Outcome:
        return self._publish(
            Outcome(
                run_outcome_id("schedule", now, cluster),
                Overall.REJECTED,
                now,
                "timer",
                cluster_id=cluster.resource_id,
                problem=problem,
            )
        )

    def _publish(self, outcome: Outcome) -> Outcome:
        return publish(self._messages, outcome)


def _key(cluster: ClusterRef) -> str:
    return cluster.resource_id.lower()
