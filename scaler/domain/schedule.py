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

Day rules (`DayRule`): plain weekdays ("Mon-Fri"), nth weekdays of the month ("Mon#1", "Fri#L"
for the last Friday), days of the month (1-31, "L" for the last) and months. A day matches when
its weekday (or nth weekday) is listed and, if given, its day of the month and its month are
too. Days are local dates in the cluster's zone. A window belongs to the day it starts: a
Fri#L 22:00–06:00 window runs from 22:00 on the last Friday of the month to 06:00 the next
morning (a Saturday, possibly in the next month), and not from the Saturday after another
Friday. Weekly windows are evaluated with a mask of the minutes of the week; windows with
date-dependent rules with the same mask (the weekdays they can fall on) and then by local date.
Public holidays (`HolidayCalendar`, from the `holidays` library) are local dates too.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo

import holidays as holiday_data

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import PoolRequest
from scaler.domain.tags import ClusterSelector

KEEP: Final = "keep"
"""The state meaning: the schedule leaves this pool alone right now."""

Keep: TypeAlias = Literal["keep"]
ScheduledState: TypeAlias = PoolRequest | Keep

DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES: Final = tuple(calendar.month_abbr)[1:]  # "Jan" … "Dec"
LAST: Final = -1
"""In nth weekdays ("Fri#L") and month days ("L"): the last one of the month."""
MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
_WHOLE_WEEK: Final = (1 << MINUTES_PER_WEEK) - 1

TRANSITION_HORIZON: Final = timedelta(days=400)
"""How far ahead `next_transition` looks by default: over a year, so that rules by month, nth
weekday or public holiday are seen too. The search stops at the first change."""
# next_transition collects change points a few days at a time and stops at the first change.
_SEARCH_CHUNK: Final = timedelta(days=4)

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
class DayRule:
    """Which local dates a window or an exception applies on. A date matches when its weekday
    is in `weekdays` or it is one of the `nth` weekdays of its month, and it is in `monthdays`
    and `months` when those are given."""

    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday
    nth: frozenset[tuple[int, int]] = frozenset()  # (weekday, 1..5 or LAST)
    monthdays: frozenset[int] | None = None  # 1..31 and/or LAST; None: any
    months: frozenset[int] | None = None  # 1..12; None: any
    text: str = field(default="daily", compare=False)  # normalised, as `describe()` shows it

    @property
    def weekly(self) -> bool:
        """Only plain weekdays: the same every week."""
        return not self.nth and self.monthdays is None and self.months is None

    @property
    def possible_weekdays(self) -> frozenset[int]:
        return self.weekdays | {weekday for weekday, _ in self.nth}

    def matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        length = calendar.monthrange(day.year, day.month)[1]
        if self.monthdays is not None and not (
            day.day in self.monthdays or (LAST in self.monthdays and day.day == length)
        ):
            return False
        weekday = day.weekday()
        if weekday in self.weekdays:
            return True
        return (weekday, (day.day - 1) // 7 + 1) in self.nth or (
            day.day + 7 > length and (weekday, LAST) in self.nth
        )

    def describe(self) -> str:
        return self.text


def weekly_rule(days: Iterable[int], text: str) -> DayRule:
    return DayRule(frozenset(days), text=text)


@dataclass(frozen=True)
class Window:
    """`start`–`end` local wall-clock time on each day `calendar` (or, without one, `days`)
    matches. A window that crosses midnight belongs to the day it starts: it runs from `start`
    on a matching day until `end` the next day, whatever the next day is."""

    days: frozenset[int]  # 0 = Monday, as datetime.weekday(); with `calendar`: where it can fall
    days_text: str  # normalised: "Mon-Fri", "Mon,Wed-Fri", "daily", "Mon#1; monthdays 1-7"
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, 1..1440; below start: ends the next day
    state: ScheduledState
    mask: int = field(default=0, repr=False, compare=False)  # bit n: week minute n (Mon 00:00 = 0)
    calendar: DayRule | None = None  # None: weekly, on `days`
    state_name: str | None = None  # the named state (`[states]`) the file used, if any

    def __post_init__(self) -> None:
        if not self.mask:
            object.__setattr__(self, "mask", _window_mask(self.days, self.start, self.end))

    @property
    def rule(self) -> DayRule:
        return self.calendar or weekly_rule(self.days, self.days_text)

    def describe(self) -> str:
        return f"{self.days_text} {hhmm(self.start)}-{hhmm(self.end)}"

    def contains(self, week_minute: int) -> bool:
        """Whether the weekly mask covers `week_minute`: the whole answer for a weekly window,
        a necessary condition for one with a `calendar` (see `contains_local`)."""
        return bool(self.mask >> week_minute & 1)

    def contains_local(self, day: date, minute: int) -> bool:
        """Whether the window covers local wall-clock `minute` on local date `day`."""
        if not self.contains(day.weekday() * MINUTES_PER_DAY + minute):
            return False
        if self.calendar is None:
            return True
        if minute >= self.start:  # the part on the day it starts
            return self.calendar.matches(day)
        return self.calendar.matches(day - timedelta(days=1))  # the part after midnight


@dataclass(frozen=True)
class HolidayCalendar:
    """Public holidays of a country (ISO 3166-1 alpha-2) and optionally a subdivision, from the
    `holidays` library; a date is a holiday if the library lists it for that place."""

    country: str
    subdiv: str | None = None

    @property
    def label(self) -> str:
        return self.country if self.subdiv is None else f"{self.country}-{self.subdiv}"

    def name_of(self, day: date) -> str | None:
        """The holiday's name on local date `day`, or None."""
        try:
            return _holiday_data(self.country, self.subdiv).get(day)
        except (NotImplementedError, ValueError, OverflowError):
            return None

    def between(self, first: date, last: date) -> list[tuple[date, str]]:
        found = []
        day = first
        while day <= last:
            name = self.name_of(day)
            if name is not None:
                found.append((day, name))
            day += timedelta(days=1)
        return found


@functools.cache
def _holiday_data(country: str, subdiv: str | None) -> holiday_data.HolidayBase:
    """The library's calendar; it fills in years as they are asked for."""
    return holiday_data.country_holidays(country, subdiv=subdiv)


def check_holiday_calendar(country: str, subdiv: str | None) -> None:
    """Raise NotImplementedError when the library knows no such country or subdivision."""
    _holiday_data(country, subdiv)


def holiday_name(calendars: Iterable[HolidayCalendar], day: date) -> str | None:
    for holidays in calendars:
        name = holidays.name_of(day)
        if name is not None:
            return name
    return None


@dataclass(frozen=True)
class PoolSchedule:
    """A pool's windows and `outside`; also a profile (`[profiles.<name>]`), whose `name` is
    the profile's until `ClusterSchedule.with_profile` gives it to a pool."""

    name: str
    windows: tuple[Window, ...] = ()
    outside: ScheduledState | None = None  # None: no opinion outside the windows
    enforce: bool = True  # resolved at load: the pool's own, else its cluster's, else the file's
    outside_name: str | None = None  # the named state `outside` used, if any
    own_enforce: bool | None = None  # `enforce` as written in this block (None: inherited)
    profile: str | None = None  # the profile this pool follows (from its tag), if any


@dataclass(frozen=True)
class ExceptionRule:
    """A dated exception: single dates and/or an inclusive range, or a rule with `until`."""

    pools: frozenset[str] | None  # None: every pool of the cluster's schedule ("*")
    state: ScheduledState
    dates: frozenset[date] = frozenset()
    date_range: tuple[date, date] | None = None
    until: datetime | None = None  # aware; the rule applies while instant < until
    until_text: str = ""
    on_holidays: bool = False  # `on = "holidays"`: every public holiday of the cluster
    days: DayRule | None = None  # recurring: every local day the rule matches
    state_name: str | None = None  # the named state the file used, if any

    def covers_pool(self, pool: str) -> bool:
        return self.pools is None or pool in self.pools

    def reason(
        self, instant: datetime, local_day: date, holidays: Iterable[HolidayCalendar] = ()
    ) -> str | None:
        """Why this rule applies at `instant` (whose local date is `local_day`), or None.
        `holidays`: the cluster's calendars, for `on = "holidays"`."""
        if self.until is not None:
            return f"until {self.until_text}" if instant < self.until else None
        if self.on_holidays:
            name = holiday_name(holidays, local_day)
            return None if name is None else f"holiday {local_day.isoformat()} {name}"
        if self.days is not None:
            return f"exception {self.days.describe()}" if self.days.matches(local_day) else None
        if local_day in self.dates:
            return f"exception {local_day.isoformat()}"
        if self.date_range and self.date_range[0] <= local_day <= self.date_range[1]:
            first, last = self.date_range
            return f"exception {first.isoformat()} to {last.isoformat()}"
        return None

    def last_day(self) -> date | None:
        """The last local date the rule can apply on (None for an `until` rule and for
        recurring ones: holidays and day rules)."""
        if self.until is not None or self.on_holidays or self.days is not None:
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
    state_name: str | None = None  # the named state (`[states]`) the deciding rule used


NO_OPINION_REASON: Final = "no rule applies"
NOT_SCHEDULED_REASON: Final = "not in the schedule"


@dataclass(frozen=True)
class ClusterSchedule:
    target: ScheduleTarget
    timezone: str
    pools: tuple[PoolSchedule, ...] = ()
    exceptions: tuple[ExceptionRule, ...] = ()
    enforce: bool = True  # resolved at load: the cluster's own, else the file's, else true
    holidays: tuple[HolidayCalendar, ...] = ()  # the cluster's own, else the file's
    # Entries that pick clusters by tag (`select = { tag = ... }`): which tag; `target` is then
    # the cluster it was applied to (see Schedule.selected), or a placeholder in the file.
    selector: ClusterSelector | None = None

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

    def profile_of(self, pool: str) -> str | None:
        """The profile `pool` follows (given by `with_profile`), or None."""
        schedule = self.pool(pool)
        return None if schedule is None else schedule.profile

    def with_profile(self, pool: str, profile: PoolSchedule) -> ClusterSchedule:
        """This cluster's schedule with `pool` following `profile` (from `Schedule.profile`),
        evaluated like any pool of the cluster: in its zone, under its exceptions (`pools = "*"`
        covers the pool too) and holidays. A pool the file gives its own `[clusters.pools.X]`
        block keeps it: explicit entries win over tags, and `self` is returned unchanged.
        `enforce`: the profile's own, else the cluster's."""
        if self.pool(pool) is not None:
            return self
        own = PoolSchedule(
            pool,
            profile.windows,
            profile.outside,
            self.enforce if profile.own_enforce is None else profile.own_enforce,
            profile.outside_name,
            profile.own_enforce,
            profile.name,
        )
        return replace(self, pools=(*self.pools, own))

    def holiday(self, day: date) -> str | None:
        """The name of the public holiday on local date `day` in this cluster, or None."""
        return holiday_name(self.holidays, day)

    def decide(self, instant: datetime, pool: str) -> Decision:
        require_aware(instant)
        if pool not in self.pool_names:
            return Decision(None, NOT_SCHEDULED_REASON)
        local = instant.astimezone(self.zone)
        day = local.date()
        for rule in self.exceptions:
            if rule.covers_pool(pool):
                why = rule.reason(instant, day, self.holidays)
                if why is not None:
                    return Decision(rule.state, why, rule.state_name)
        schedule = self.pool(pool)
        if schedule is None:
            return Decision(None, NO_OPINION_REASON)
        suffix = "" if schedule.profile is None else f" (profile {schedule.profile})"
        minute = local.hour * 60 + local.minute
        for window in schedule.windows:
            if window.contains_local(day, minute):
                return Decision(
                    window.state, f"window {window.describe()}{suffix}", window.state_name
                )
        if schedule.outside is not None:
            return Decision(schedule.outside, f"outside windows{suffix}", schedule.outside_name)
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
        low = start
        while low < end:
            high = low + _SEARCH_CHUNK if end - low > _SEARCH_CHUNK else end
            for instant in sorted(self._change_points(pool, low, high)):
                if self.decide(instant, pool).state != current:
                    return instant
            low = high
        return None

    def _change_points(self, pool: str, start: datetime, end: datetime) -> set[datetime]:
        """Every instant in (start, end] at which `decide(·, pool)` can change (UTC): when
        the wall clock reaches a window's start or end or midnight (a new day: date exceptions,
        holidays, day rules, another weekday), when an `until` passes, and when the clock jumps
        (DST), which is also when a boundary inside a skipped stretch of wall time happens."""
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
    profiles: tuple[PoolSchedule, ...] = ()  # `[profiles.<name>]`, in file order
    timezone: str | None = None  # the top-level zone: clusters the file does not list
    holidays: tuple[HolidayCalendar, ...] = ()  # the top-level calendars
    enforce: bool = True  # the top-level `enforce`
    states: tuple[tuple[str, ScheduledState], ...] = ()  # `[states]`, in file order
    # `[[clusters]]` entries with `select = { tag = ... }`, in file order (not in `clusters`:
    # they name no cluster until Resource Graph or a cluster's own tags say which).
    selections: tuple[ClusterSchedule, ...] = ()

    def cluster(self, target: ScheduleTarget | str) -> ClusterSchedule | None:
        key = target.key if isinstance(target, ScheduleTarget) else target
        return next((c for c in self.clusters if c.target.key.lower() == key.lower()), None)

    def selected(
        self, cluster: ClusterRef, tags: Mapping[str, str], selector_text: str | None = None
    ) -> ClusterSchedule | None:
        """The schedule of a cluster the file does not name but a `select` entry picks by its
        tags: the first such entry in file order. With `selector_text` (a tick already matched
        the tags through Resource Graph), the entry with that selector, if the file still has
        it. None when no entry applies."""
        for entry in self.selections:
            assert entry.selector is not None
            if selector_text is None:
                chosen = entry.selector.matches(cluster.subscription_id, tags)
            else:
                chosen = entry.selector.text == selector_text
            if chosen and entry.selector.covers(cluster.subscription_id):
                target = ScheduleTarget(
                    cluster.resource_group, cluster.name, cluster.subscription_id
                )
                return replace(entry, target=target)
        return None

    def profile(self, name: str) -> PoolSchedule | None:
        """The profile called `name` (exactly, as a `scaler-schedule` tag's value), or None."""
        return next((p for p in self.profiles if p.name == name), None)

    def unlisted_cluster(self, target: ScheduleTarget) -> ClusterSchedule | None:
        """A schedule with no pools for a cluster the file does not list, to give profiles to:
        the top-level zone, holidays and enforce, no exceptions. None without a top-level
        timezone (which the file requires whenever it has profiles)."""
        if self.timezone is None:
            return None
        return ClusterSchedule(target, self.timezone, (), (), self.enforce, self.holidays)

    def for_tagged_pools(
        self,
        found: ClusterSchedule | None,
        target: ScheduleTarget,
        tagged: Mapping[str, str],
    ) -> ClusterSchedule | None:
        """The cluster's schedule once its tagged pools follow their profiles. `found`: the
        cluster's entry in this file, or None when it has none (then `target` names it and the
        top-level zone, holidays and enforce apply); `tagged`: pool name → the value of its
        `scaler-schedule` tag. A pool the file gives its own block keeps it (explicit entries win);
        a tag naming no profile is skipped (`profile()` is None for it: report it). None when
        nothing is scheduled at all."""
        cluster = found
        for pool, name in tagged.items():
            profile = self.profile(name)
            if profile is None:
                continue
            if cluster is None:
                cluster = self.unlisted_cluster(target)
                if cluster is None:
                    return None
            cluster = cluster.with_profile(pool, profile)
        return cluster

    def for_tagged_pool(
        self, target: ScheduleTarget | str, pool: str, profile_name: str
    ) -> ClusterSchedule | None:
        """`for_tagged_pools` for one pool, the cluster looked up by resource group and name."""
        found = self.cluster(target)
        if found is not None:
            target = found.target
        elif not isinstance(target, ScheduleTarget):
            group, _, name = target.partition("/")
            target = ScheduleTarget(group, name)
        return self.for_tagged_pools(found, target, {pool: profile_name})

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


# Every kind of day (month, day of the month, weekday, length of the month) occurs in 28
# consecutive years without a skipped leap year; whether a day rule can ever match, and whether
# two windows can ever overlap, is decided over these.
CYCLE_START: Final = date(2026, 1, 1)
_CYCLE_DAYS: Final = (date(2054, 1, 1) - CYCLE_START).days


@functools.cache
def day_bits(rule: DayRule) -> int:
    """Bit n: `rule` matches the date n days after `CYCLE_START` (over 28 years)."""
    bits = 0
    for offset in range(_CYCLE_DAYS):
        if rule.matches(CYCLE_START + timedelta(days=offset)):
            bits |= 1 << offset
    return bits


def first_match(rule: DayRule) -> date | None:
    """The first date from `CYCLE_START` that `rule` matches; None: it never matches any."""
    bits = day_bits(rule)
    return CYCLE_START + timedelta(days=(bits & -bits).bit_length() - 1) if bits else None


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
