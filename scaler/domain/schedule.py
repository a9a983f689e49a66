"""Schedules, the model: which state each pool should have when, and evaluating that.

`scaler.domain.schedule_file.load_schedule` builds a `Schedule` from the TOML file (its docstring
describes the format and what each rule means); this module holds the result and answers
questions about it. Everything here is pure: `ClusterSchedule.decide(instant, pool)` gives the
state the schedule asks for at an instant and the rule that says so, `Schedule.desired_at`
the pool requests for every cluster, and `next_transition` the next instant that answer
changes. Time zones come from `zoneinfo` (with the `tzdata` package, since the Functions Linux
image has no system zone files and `WEBSITE_TIME_ZONE` does not exist on Linux plans).

Precedence for a pool at an instant (an active hold from a queue intent outranks all of these,
and is applied by the caller):

1. the first exception, in file order, that covers the pool at that instant;
2. the window that contains the instant;
3. `outside`;
4. otherwise the schedule has no opinion and the pool is left alone.

Windows are evaluated on the local wall clock: on the spring-forward day a 02:00–04:00 window
runs from 03:00 to 04:00 (02:xx does not exist), and on the autumn day it covers the repeated
hour both times. So a boundary whose local time falls in a gap happens when the clock jumps
(at the first minute that exists after it), and one in a repeated hour can happen twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import PoolRequest

KEEP: Final = "keep"
"""The state meaning: the schedule leaves this pool alone right now."""

Keep: TypeAlias = Literal["keep"]
ScheduledState: TypeAlias = PoolRequest | Keep

DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
_WHOLE_WEEK: Final = (1 << MINUTES_PER_WEEK) - 1

TRANSITION_HORIZON: Final = timedelta(days=14)
"""How far ahead `next_transition` looks by default."""

# Offset changes (DST) are found by comparing UTC offsets this far apart, then bisecting. No
# zone changes its offset twice within a few hours, so none is missed.
_OFFSET_PROBE_SECONDS: Final = 6 * 3600
# Where the search stops at the latest: any zone can still show this instant as a local time.
_LATEST: Final = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)


@dataclass(frozen=True)
class ScheduleTarget:
    resource_group: str
    cluster: str
    subscription_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.resource_group}/{self.cluster}"

    def ref(self, default_subscription_id: str) -> ClusterRef:
        """The cluster to act on; the schedule's subscription, else the app's default."""
        return ClusterRef(
            self.subscription_id or default_subscription_id, self.resource_group, self.cluster
        )


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    days_text: str  # normalised: "Mon-Fri", "Mon,Wed-Fri", "daily"
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, 1..1440; below start: ends the next day
    state: ScheduledState
    mask: int = field(default=0, repr=False, compare=False)  # bit n: week minute n (Mon 00:00 = 0)

    def __post_init__(self) -> None:
        if not self.mask:
            object.__setattr__(self, "mask", _window_mask(self.days, self.start, self.end))

    def describe(self) -> str:
        return f"{self.days_text} {hhmm(self.start)}-{hhmm(self.end)}"

    def contains(self, week_minute: int) -> bool:
        return bool(self.mask >> week_minute & 1)


@dataclass(frozen=True)
class PoolSchedule:
    name: str
    windows: tuple[Window, ...] = ()
    outside: ScheduledState | None = None  # None: no opinion outside the windows
    enforce: bool = True  # resolved at load: the pool's own, else its cluster's, else the file's


@dataclass(frozen=True)
class ExceptionRule:
    """A dated exception: single dates and/or an inclusive range, or a rule with `until`."""

    pools: frozenset[str] | None  # None: every pool of the cluster's schedule ("*")
    state: ScheduledState
    dates: frozenset[date] = frozenset()
    date_range: tuple[date, date] | None = None
    until: datetime | None = None  # aware; the rule applies while instant < until
    until_text: str = ""

    def covers_pool(self, pool: str) -> bool:
        return self.pools is None or pool in self.pools

    def reason(self, instant: datetime, local_day: date) -> str | None:
        """Why this rule applies at `instant` (whose local date is `local_day`), or None."""
        if self.until is not None:
            return f"until {self.until_text}" if instant < self.until else None
        if local_day in self.dates:
            return f"exception {local_day.isoformat()}"
        if self.date_range and self.date_range[0] <= local_day <= self.date_range[1]:
            first, last = self.date_range
            return f"exception {first.isoformat()} to {last.isoformat()}"
        return None

    def last_day(self) -> date | None:
        """The last local date the rule can apply on (None for an `until` rule)."""
        if self.until is not None:
            return None
        candidates: list[date] = [*self.dates]
        if self.date_range:
            candidates.append(self.date_range[1])
        return max(candidates)


@dataclass(frozen=True)
class Decision:
    """What the schedule wants for one pool at one instant, and which rule says so."""

    state: ScheduledState | None  # None: no opinion
    reason: str


NO_OPINION_REASON: Final = "no rule applies"
NOT_SCHEDULED_REASON: Final = "not in the schedule"


@dataclass(frozen=True)
class ClusterSchedule:
    target: ScheduleTarget
    timezone: str
    pools: tuple[PoolSchedule, ...] = ()
    exceptions: tuple[ExceptionRule, ...] = ()
    enforce: bool = True  # resolved at load: the cluster's own, else the file's, else true

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    @property
    def pool_names(self) -> tuple[str, ...]:
        """Every pool the cluster's schedule names, in file order: what "*" stands for."""
        names = dict.fromkeys(pool.name for pool in self.pools)
        for rule in self.exceptions:
            names.update(dict.fromkeys(sorted(rule.pools or ())))
        return tuple(names)

    def pool(self, name: str) -> PoolSchedule | None:
        """The pool's windows and `outside`, or None if only exceptions name it (or nothing)."""
        return next((p for p in self.pools if p.name == name), None)

    def enforces(self, pool: str) -> bool:
        """Whether the schedule converges `pool` on every run (true) or only acts at its
        transitions (false). A pool named only in exceptions follows the cluster."""
        schedule = self.pool(pool)
        return self.enforce if schedule is None else schedule.enforce

    def decide(self, instant: datetime, pool: str) -> Decision:
        require_aware(instant)
        if pool not in self.pool_names:
            return Decision(None, NOT_SCHEDULED_REASON)
        local = instant.astimezone(self.zone)
        for rule in self.exceptions:
            if rule.covers_pool(pool):
                why = rule.reason(instant, local.date())
                if why is not None:
                    return Decision(rule.state, why)
        schedule = self.pool(pool)
        if schedule is None:
            return Decision(None, NO_OPINION_REASON)
        week_minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
        for window in schedule.windows:
            if window.contains(week_minute):
                return Decision(window.state, f"window {window.describe()}")
        if schedule.outside is not None:
            return Decision(schedule.outside, "outside windows")
        return Decision(None, NO_OPINION_REASON)

    def next_transition(
        self, pool: str, after: datetime, horizon: timedelta = TRANSITION_HORIZON
    ) -> datetime | None:
        """The first instant strictly after `after` (timezone-aware) at which the state the
        schedule asks for `pool` differs from the state at `after`, in UTC; None if it does not
        change within `horizon` of elapsed time (up to and including that instant) or the pool
        is not in the schedule. Only the state counts: a window that ends into an `outside` of
        the same state is no transition. A boundary whose wall-clock time the clock skips
        (spring forward) happens when it jumps, as `decide` sees it."""
        require_aware(after)
        if pool not in self.pool_names:
            return None
        start = after.astimezone(UTC)
        end = start + horizon if horizon < _LATEST - start else _LATEST
        current = self.decide(start, pool).state
        for instant in sorted(self._change_points(pool, start, end)):
            if self.decide(instant, pool).state != current:
                return instant
        return None

    def _change_points(self, pool: str, start: datetime, end: datetime) -> set[datetime]:
        """Every instant in (start, end] at which `decide(·, pool)` can change (UTC): when
        the wall clock reaches a window's start or end or midnight (a new day: date exceptions,
        another weekday), when an `until` passes, and when the clock jumps (DST), which is also
        when a boundary inside a skipped stretch of wall time happens."""
        zone = self.zone
        points = {
            rule.until
            for rule in self.exceptions
            if rule.until is not None and rule.covers_pool(pool) and start < rule.until <= end
        }
        points.update(t for t in _offset_changes(zone, start, end) if start < t <= end)
        minutes = {0}
        schedule = self.pool(pool)
        for window in schedule.windows if schedule else ():
            minutes.update((window.start, window.end % MINUTES_PER_DAY))
        # An instant's local date may be a day off its neighbours' (a fall-back at midnight).
        first = start.astimezone(zone).date()
        days = (end.astimezone(zone).date() - first).days
        for offset in range(-1, days + 2):
            for minute in minutes:
                for instant in _wall_instants(first, offset, minute, zone):
                    if start < instant <= end:
                        points.add(instant)
        return points


@dataclass(frozen=True)
class Schedule:
    clusters: tuple[ClusterSchedule, ...]
    warnings: tuple[str, ...] = ()  # things worth telling a person, never a reason to refuse

    def cluster(self, target: ScheduleTarget | str) -> ClusterSchedule | None:
        key = target.key if isinstance(target, ScheduleTarget) else target
        return next((c for c in self.clusters if c.target.key.lower() == key.lower()), None)

    def desired_at(self, instant: datetime) -> dict[ScheduleTarget, dict[str, PoolRequest]]:
        """Pool requests per cluster at `instant` (timezone-aware). Pools the schedule leaves
        alone ("keep", or no rule) are omitted, and so are clusters with nothing to ask."""
        require_aware(instant)
        desired: dict[ScheduleTarget, dict[str, PoolRequest]] = {}
        for cluster in self.clusters:
            pools: dict[str, PoolRequest] = {}
            for name in cluster.pool_names:
                state = cluster.decide(instant, name).state
                if state is not None and not isinstance(state, str):
                    pools[name] = state
            if pools:
                desired[cluster.target] = pools
        return desired

    def decide(self, instant: datetime, target: ScheduleTarget | str, pool: str) -> Decision:
        require_aware(instant)
        cluster = self.cluster(target)
        if cluster is None:
            return Decision(None, NOT_SCHEDULED_REASON)
        return cluster.decide(instant, pool)

    def explain_at(self, instant: datetime, target: ScheduleTarget | str, pool: str) -> str:
        """Which rule decides the pool's state at `instant`: "window Mon-Fri 07:00-19:00",
        "outside windows", "exception 2026-12-24", "until 2027-01-15", "no rule applies"."""
        return self.decide(instant, target, pool).reason

    def next_transition(
        self,
        target: ScheduleTarget | str,
        pool: str,
        after: datetime,
        horizon: timedelta = TRANSITION_HORIZON,
    ) -> datetime | None:
        """`ClusterSchedule.next_transition` for the cluster `target`; None if the schedule
        does not name the cluster."""
        require_aware(after)
        cluster = self.cluster(target)
        return None if cluster is None else cluster.next_transition(pool, after, horizon)


# --- helpers ---------------------------------------------------------------------------------


def require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got {instant.isoformat()}")


def hhmm(minutes: int) -> str:
    """Minutes after midnight as "HH:MM" (1440 is "24:00")."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def first_stretch(mask: int) -> str:
    """The first contiguous run of set minutes in a weekly mask, as "Mon 07:00–19:00"."""
    if mask == _WHOLE_WEEK:
        return "the whole week"
    previous = ((mask << 1) | (mask >> (MINUTES_PER_WEEK - 1))) & _WHOLE_WEEK
    starts = mask & ~previous
    start = (starts & -starts).bit_length() - 1
    end = start
    while mask >> (end % MINUTES_PER_WEEK) & 1:
        end += 1
    day, minute = divmod(start, MINUTES_PER_DAY)
    if end - day * MINUTES_PER_DAY <= MINUTES_PER_DAY:
        return f"{DAY_NAMES[day]} {hhmm(minute)}–{hhmm(end - day * MINUTES_PER_DAY)}"
    end_day, end_minute = divmod(end, MINUTES_PER_DAY)
    if end_minute == 0:
        end_day, end_minute = end_day - 1, MINUTES_PER_DAY
    return f"{DAY_NAMES[day]} {hhmm(minute)}–{DAY_NAMES[end_day % 7]} {hhmm(end_minute)}"


def _window_mask(days: frozenset[int], start: int, end: int) -> int:
    length = end - start if end > start else end + MINUTES_PER_DAY - start
    one_day = (1 << length) - 1
    mask = 0
    for day in days:
        first = day * MINUTES_PER_DAY + start
        mask |= one_day << first
    # What ran past Sunday 24:00 continues on Monday morning.
    return (mask & _WHOLE_WEEK) | (mask >> MINUTES_PER_WEEK)


def _wall_instants(first: date, offset: int, minute: int, zone: tzinfo) -> Iterator[datetime]:
    """The UTC instants at which the wall clock in `zone` shows `minute` on the day `offset`
    days after `first`: none in a gap, two in a repeated hour, otherwise one."""
    try:
        wall = datetime.combine(first + timedelta(days=offset), time(minute // 60, minute % 60))
        for fold in (0, 1):
            instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall:  # naive ==: fold ignored
                yield instant
    except OverflowError:  # the ends of the calendar
        return


def _offset_changes(zone: tzinfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants in [start, end] (to the second) at which `zone`'s UTC offset changes."""

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    try:
        low, stop = math.floor(start.timestamp()), math.ceil(end.timestamp())
        while low < stop:
            high = min(low + _OFFSET_PROBE_SECONDS, stop)
            before = offset(low)
            if offset(high) != before:
                first, last = low, high  # offset(first) == before != offset(last)
                while last - first > 1:
                    middle = (first + last) // 2
                    first, last = (middle, last) if offset(middle) == before else (first, middle)
                yield datetime.fromtimestamp(last, UTC)
            low = high
    except (OverflowError, OSError, ValueError):  # the ends of the calendar
        return
