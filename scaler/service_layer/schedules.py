"""The schedule as the use cases see it: read (file or blob), validated whole, and looked up
per cluster. A schedule that cannot be read or is invalid has no opinion on any pool (the
timer reports it); it never stops intents from being applied."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.pools import PoolState
from scaler.domain.schedule import ClusterSchedule, Schedule, ScheduleTarget
from scaler.domain.schedule_file import load_schedule
from scaler.domain.tags import TagRules
from scaler.service_layer.ports import ScheduleSource

log = logging.getLogger("scaler")


class Schedules:
    def __init__(
        self, source: ScheduleSource | None, max_count: int, default_subscription: str
    ) -> None:
        self._source = source
        self._max_count = max_count
        self._default_subscription = default_subscription
        self._lock = threading.Lock()
        self._parsed: tuple[str, str, Schedule] | None = None  # (text, name, schedule)

    def load(self, now: datetime) -> tuple[Schedule, str]:
        """The whole schedule and its name; InvalidInput when unreadable or invalid. Parsed
        once per version of the text, however often it is read."""
        if self._source is None:
            return Schedule(()), "no schedule"
        text, name = self._source.read()
        with self._lock:
            if self._parsed is not None and self._parsed[:2] == (text, name):
                return self._parsed[2], name
        schedule = load_schedule(text, name, self._max_count, now)
        with self._lock:
            self._parsed = (text, name, schedule)
        return schedule, name

    def for_cluster(
        self, cluster: ClusterRef, now: datetime, selected_by: str | None = None
    ) -> tuple[ClusterSchedule | None, str]:
        """The cluster's entry in the file; else, when a tick picked the cluster by tag
        (`selected_by`, the selector's text), that `select` entry if the file still has it."""
        try:
            schedule, name = self.load(now)
        except InvalidInput as error:
            log.warning("schedule unusable, no pool follows it for now: %s", error)
            return None, "schedule"
        found = self.find(schedule, cluster)
        if found is None and selected_by is not None:
            found = schedule.selected(cluster, {}, selected_by)
        return found, name

    def find(self, schedule: Schedule, cluster: ClusterRef) -> ClusterSchedule | None:
        wanted = _key(cluster)
        for candidate in schedule.clusters:
            if _key(candidate.target.ref(self._default_subscription)) == wanted:
                return candidate
        return None

    def with_tag_profiles(
        self,
        cluster: ClusterRef,
        found: ClusterSchedule | None,
        pools: Iterable[PoolState],
        rules: TagRules,
        now: datetime,
    ) -> ClusterSchedule | None:
        """The cluster's schedule once pools tagged `scaler-schedule=<profile>` follow their
        profile (explicit entries in the file win: domain/schedule.for_tagged_pools)."""
        tagged = {pool.name: name for pool in pools if (name := rules.profile(pool))}
        if not tagged:
            return found
        try:
            schedule, source = self.load(now)
        except InvalidInput:
            return found
        for pool, name in tagged.items():
            if schedule.profile(name) is None:
                log.warning(
                    "pool %s of %s is tagged %s=%r, a profile %s does not define",
                    pool,
                    cluster.short_name,
                    rules.profile_name,
                    name,
                    source,
                )
        target = found.target if found is not None else _target(cluster)
        return schedule.for_tagged_pools(found, target, tagged)

    def cluster_ref(self, candidate: ClusterSchedule) -> ClusterRef:
        return candidate.target.ref(self._default_subscription)


def _target(cluster: ClusterRef) -> ScheduleTarget:
    return ScheduleTarget(cluster.resource_group, cluster.name, cluster.subscription_id)


def _key(cluster: ClusterRef) -> tuple[str, str, str]:
    return (
        cluster.subscription_id.lower(),
        cluster.resource_group.lower(),
        cluster.name.lower(),
    )
