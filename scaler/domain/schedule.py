"""Schedules, the model: which state each pool should have when, and evaluating that.

`scaler.domain.schedule_file.load_schedule` builds a `Schedule` from the TOML file (its docstring
describes the format and what each rule means); this module holds the result and answers
questions about it. Everything here is pure: `ClusterSchedule.decide(instant, pool)` gives the
state the schedule asks for at an instant and the rule that says so, `Schedule.desired_at`
the pool requests for every cluster. Time zones come from `zoneinfo` (with the `tzdata`
package, since the Functions Linux image has no system zone files and `WEBSITE_TIME_ZONE` does
not exist on Linux plans).

Precedence for a pool at an instant (an active hold from a queue intent outranks all of these,
and is applied by the caller):

1. the first exception, in file order, that covers the pool at that instant;
2. the window that contains the instant;
3. `outside`;
4. otherwise the schedule has no opinion and the pool is left alone.

Windows are evaluated on the local wall clock: on the spring-forward day a 02:00–04:00 window
runs from 03:00 to 04:00 (02:xx does not exist), and on the autumn day it covers the repeated
hour both times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
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
