"""Schedule files: the hand-edited TOML that says which state each pool should have when.

`load_schedule` parses and validates a schedule as a whole into the model of
`scaler.domain.schedule`; any mistake raises `InvalidInput` naming the source and the field, so
nothing of a broken schedule is ever applied. Pure: the caller reads the file.

The format (TOML, so the file can carry comments)::

    timezone = "Europe/Amsterdam"          # default zone for every cluster
    # enforce = true                       # default for every cluster (see below)

    [[clusters]]
    resource_group = "rg-demo"
    cluster = "aks-demo"
    # subscription_id = "…"                # optional; default AZURE_SUBSCRIPTION_ID
    # timezone = "America/New_York"        # optional per-cluster override
    # enforce = false                      # optional per-cluster override

    [clusters.pools.batch]
    outside = { power = "Stopped" }        # state outside every window (optional: no opinion)
    windows = [
      { days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 },
    ]
    enforce = false                        # optional per-pool override

    [clusters.pools.web]
    outside = { min = 1, max = 5 }
    windows = [
      { days = "Mon-Fri", start = "08:00", end = "18:00", state = { min = 3, max = 20 } },
    ]

    [[clusters.exceptions]]                # dated exceptions
    dates = ["2026-12-24", "2026-12-31"]   # single dates, and/or from = "…", to = "…" (inclusive)
    pools = "*"                            # or ["batch", "web"]
    state = "keep"                         # the schedule leaves these pools alone; or a pool form

    [[clusters.exceptions]]
    until = "2027-01-15"                   # applies until then (exclusive), then lapses
    pools = ["gpu"]
    state = 0

Fields:

- `timezone`: an IANA name, at the top (default for every cluster) and/or per cluster.
- `enforce`: true or false, at the top (default for every cluster), per cluster (default for
  its pools) and/or per pool; the most specific one wins, and without any it is true. True: the
  schedule converges the pool to its state on every run, undoing manual changes. False: it acts
  only at the schedule's transitions (the instants the state it asks for changes, e.g. a window
  starting or ending), so a manual change made between transitions stands until the next one.
  A pool named only in exceptions follows its cluster's value.
- `days`: "Mon-Fri", "Sat,Sun", "Mon,Wed-Fri", "daily" or "*"; three-letter names, any case; a
  range may wrap ("Fri-Mon").
- `start`, `end`: "HH:MM", 24-hour, local wall-clock time in the cluster's zone; `end` may be
  "24:00". `start` later than `end` crosses midnight: the window runs from `start` on each listed
  day until `end` the next day (Sunday wraps to Monday). `start` equal to `end` is an error.
- `state` (windows and exceptions) and `outside`: a pool form exactly as in intents (`6`,
  `{count = 6}`, `{min = 1, max = 5}`, `{power = "Stopped"}`), or "keep": leave the pool alone.
- Exceptions: `dates` (a list of dates) and/or `from` + `to` (an inclusive range of dates), each
  covering whole local days; or `until` (a date, meaning its midnight, or a local date-time): the
  rule applies until that moment and simply lapses afterwards. `pools` is "*" (every pool this
  cluster's schedule names, under `pools` or in any exception) or a list of pool names.
  Dates may be TOML dates (`2026-12-24`) or strings (`"2026-12-24"`).

Calendars, states and profiles::

    holidays = { country = "NL" }          # or a list: [{ country = "US", subdiv = "CA" }, …]

    [states]                               # named states, used by name wherever a state goes
    office = { min = 3, max = 20 }
    night = { power = "Stopped" }

    [profiles.office-hours]                # a pool block for pools tagged scaler-schedule=…
    outside = "night"
    windows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = "office" }]

    # in [[clusters]]: holidays = …; windows: days = "Mon#1" / "Fri#L", monthdays, months;
    # exceptions: on = "holidays", or days/monthdays/months (whole local days, every year)

- `holidays`: a table or a list of tables with `country` (ISO 3166-1 alpha-2) and optionally
  `subdiv`, from the `holidays` library; at the top (default) and/or per cluster (replaces it).
- `days` may also hold nth weekdays: "Mon#1" (first Monday of the month) … "Mon#5", "Fri#L"
  (the last Friday). `monthdays`: "1-7", "15", "L" (the last day), "25-L", commas. `months`:
  "Dec", "Jun-Aug", "Nov-Feb". A date matches when its weekday or nth weekday is in `days` and,
  if given, it is one of `monthdays` and in `months`; a window with `monthdays` or `months` may
  leave out `days` (then: "daily"). A rule no date can match is refused. A window that crosses
  midnight belongs to the day it starts.
- Exceptions: `on = "holidays"` (every public holiday of the cluster's calendars) or a day rule
  (`days`, `monthdays`, `months`), each covering whole local days, every year; neither combines
  with `dates`, `from`/`to` or `until`.
- `[states]`: names for states; a string other than "keep" in `state` or `outside` is one.
- `[profiles.<name>]`: windows/outside/enforce as in a pool; needs a top-level `timezone`.
  `Schedule.for_tagged_pools` gives them to pools; a pool with its own block keeps it.

Precedence for a pool at an instant (an active hold from a queue intent outranks all of these,
and is applied by the caller):

1. the first exception, in file order, that covers the pool at that instant;
2. the window that contains the instant (windows of one pool may not overlap: a load error);
3. `outside`;
4. otherwise the schedule has no opinion and the pool is left alone.

Windows are evaluated on the local wall clock: on the spring-forward day a 02:00–04:00 window
runs from 03:00 to 04:00 (02:xx does not exist), and on the autumn day it covers the repeated
hour both times. A local date-time that falls in a gap or in a repeated hour (only possible for
`until`) means its first occurrence.
"""

from __future__ import annotations

import functools
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID
from scaler.domain.errors import InvalidInput, field_name

# One definition of what ARM accepts, shared with intents (a schedule's cluster is validated
# exactly like an intent's).
from scaler.domain.pools import json_type, parse_pool_name, parse_pool_request
from scaler.domain.schedule import (
    CYCLE_START,
    DAY_NAMES,
    KEEP,
    LAST,
    MINUTES_PER_DAY,
    MONTH_NAMES,
    ClusterSchedule,
    DayRule,
    ExceptionRule,
    HolidayCalendar,
    PoolSchedule,
    Schedule,
    ScheduledState,
    ScheduleTarget,
    Window,
    check_holiday_calendar,
    day_bits,
    first_match,
    first_stretch,
    hhmm,
    require_aware,
)
from scaler.domain.tags import ClusterSelector

ROOT_FIELDS: Final = frozenset(
    {"timezone", "enforce", "clusters", "holidays", "states", "profiles"}
)
CLUSTER_FIELDS: Final = frozenset(
    {
        "resource_group",
        "cluster",
        "select",
        "subscription_id",
        "timezone",
        "enforce",
        "holidays",
        "pools",
        "exceptions",
    }
)
POOL_FIELDS: Final = frozenset({"windows", "outside", "enforce"})
WINDOW_FIELDS: Final = frozenset({"days", "monthdays", "months", "start", "end", "state"})
EXCEPTION_FIELDS: Final = frozenset(
    {"dates", "from", "to", "until", "on", "days", "monthdays", "months", "pools", "state"}
)
HOLIDAY_FIELDS: Final = frozenset({"country", "subdiv"})
DAY_RULE_FIELDS: Final = ("days", "monthdays", "months")

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_INDEX: Final = {name.lower(): index for index, name in enumerate(DAY_NAMES)}
_MONTH_INDEX: Final = {name.lower(): index for index, name in enumerate(MONTH_NAMES, start=1)}
_STATE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_MONTHDAY = re.compile(r"[0-9]{1,2}|l")

# Named states, `[states]`: name → state. Threaded through parsing.
States = Mapping[str, ScheduledState]


def load_schedule(text: str, source: str, max_count: int, now: datetime | None = None) -> Schedule:
    """Parse and validate a whole schedule. Raises `InvalidInput` whose message starts with
    `source` and names the field. With `now`, rules that have lapsed are listed in `warnings`."""
    try:
        document = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(source, f"not valid TOML: {error}") from None
    try:
        schedule = _schedule(document, max_count)
    except InvalidInput as error:
        where = f"{source}: {error.field}" if error.field else source
        raise InvalidInput(where, error.problem) from None
    if now is not None:
        require_aware(now)
        schedule = replace(schedule, warnings=_lapsed(schedule, now, source))
    return schedule


# --- parsing ---------------------------------------------------------------------------------


def _schedule(document: Mapping[str, object], max_count: int) -> Schedule:
    _known_fields(document, "", ROOT_FIELDS)
    default_zone = _zone(document["timezone"], "timezone") if "timezone" in document else None
    default_enforce = _enforce(document, "", default=True)
    default_holidays = _holidays(document["holidays"], "holidays") if "holidays" in document else ()
    states = _states(document.get("states", {}), max_count)
    profiles = _profiles(document.get("profiles", {}), default_enforce, max_count, states)
    if profiles and default_zone is None:
        raise InvalidInput(
            "timezone",
            "is required with [profiles] (a profile also runs in clusters the file does not list)",
        )
    entries = document.get("clusters")
    if entries is None:
        raise InvalidInput("clusters", "is required: add at least one [[clusters]] table")
    if not isinstance(entries, list):
        raise InvalidInput(
            "clusters", f"must be an array of tables ([[clusters]]), got {_kind(entries)}"
        )
    if not entries:
        raise InvalidInput("clusters", "is empty: add at least one [[clusters]] table")
    clusters: list[ClusterSchedule] = []
    selections: list[ClusterSchedule] = []
    seen: dict[str, int] = {}
    defaults = _Defaults(default_zone, default_enforce, default_holidays, bool(profiles))
    for index, entry in enumerate(entries):
        where = f"clusters[{index}]"
        cluster = _cluster(entry, where, defaults, max_count, states)
        if cluster.selector is not None:
            what = f"select tag {cluster.selector.text}" + (
                f" in {cluster.selector.subscription_id}"
                if cluster.selector.subscription_id
                else ""
            )
        else:
            what = cluster.target.key
        if what.lower() in seen:
            raise InvalidInput(
                where, f"{what} is already scheduled by clusters[{seen[what.lower()]}]"
            )
        seen[what.lower()] = index
        (selections if cluster.selector is not None else clusters).append(cluster)
    return Schedule(
        tuple(clusters),
        selections=tuple(selections),
        profiles=profiles,
        timezone=default_zone,
        holidays=default_holidays,
        enforce=default_enforce,
        states=tuple(states.items()),
    )


@dataclass(frozen=True)
class _Defaults:
    """What a cluster inherits from the top of the file."""

    zone: str | None
    enforce: bool
    holidays: tuple[HolidayCalendar, ...]
    profiles: bool  # the file has profiles: a cluster may name no pool of its own


def _states(value: object, max_count: int) -> dict[str, ScheduledState]:
    table = _table(value, "states")
    states: dict[str, ScheduledState] = {}
    for name, raw in table.items():
        where = f"states.{name}"
        if name == KEEP:
            raise InvalidInput(where, '"keep" is reserved: it means "leave the pool alone"')
        if not _STATE_NAME.fullmatch(name):
            raise InvalidInput(
                where,
                "is not a state name (a letter, then letters, digits, - or _; at most 40)",
            )
        state, _ = _state(raw, where, max_count, {})
        states[name] = state
    return states


def _profiles(
    value: object, default_enforce: bool, max_count: int, states: States
) -> tuple[PoolSchedule, ...]:
    table = _table(value, "profiles")
    profiles: list[PoolSchedule] = []
    for name, raw in table.items():
        where = f"profiles.{name}"
        if not _PROFILE_NAME.fullmatch(name):
            raise InvalidInput(
                where,
                "is not a profile name (a tag value: letters, digits, '.', '-' and '_', "
                "starting with a letter or digit, at most 63 characters)",
            )
        profiles.append(_pool(name, raw, where, default_enforce, max_count, states))
    return tuple(profiles)


def _holidays(value: object, where: str) -> tuple[HolidayCalendar, ...]:
    if isinstance(value, dict):
        return (_holiday_calendar(value, where),)
    if not isinstance(value, list):
        raise InvalidInput(
            where,
            f'must be a table ({{ country = "NL" }}) or a list of them, got {_kind(value)}',
        )
    if not value:
        raise InvalidInput(where, "is empty")
    return tuple(
        dict.fromkeys(_holiday_calendar(item, f"{where}[{i}]") for i, item in enumerate(value))
    )


def _holiday_calendar(value: object, where: str) -> HolidayCalendar:
    table = _table(value, where)
    _known_fields(table, where, HOLIDAY_FIELDS)
    if "country" not in table:
        raise InvalidInput(f"{where}.country", 'is required (e.g. "NL", "US")')
    country, subdiv = table["country"], table.get("subdiv")
    if not isinstance(country, str):
        raise InvalidInput(f"{where}.country", f"must be a string, got {_kind(country)}")
    if subdiv is not None and not isinstance(subdiv, str):
        raise InvalidInput(f"{where}.subdiv", f"must be a string, got {_kind(subdiv)}")
    known = _holiday_countries()
    code = country.strip().upper()
    if code not in known:
        raise InvalidInput(
            f"{where}.country",
            f"{country!r} is not a country the holidays library knows "
            '(an ISO 3166-1 alpha-2 code, e.g. "NL", "US")',
        )
    if subdiv is None:
        return HolidayCalendar(code)
    for candidate in dict.fromkeys((subdiv.strip().upper(), subdiv.strip())):
        try:
            check_holiday_calendar(code, candidate)
        except (NotImplementedError, ValueError, KeyError):
            continue
        return HolidayCalendar(code, candidate)
    examples = ", ".join(f'"{s}"' for s in known[code][:3])
    raise InvalidInput(
        f"{where}.subdiv",
        f"{subdiv!r} is not a subdivision of {code} the holidays library knows"
        + (f" (e.g. {examples})" if examples else f" ({code} has none)"),
    )


@functools.cache
def _holiday_countries() -> dict[str, list[str]]:
    import holidays

    return {code: list(subdivs) for code, subdivs in holidays.list_supported_countries().items()}


def _cluster(
    entry: object, where: str, defaults: _Defaults, max_count: int, states: States
) -> ClusterSchedule:
    table = _table(entry, where)
    _known_fields(table, where, CLUSTER_FIELDS)
    enforce = _enforce(table, where, default=defaults.enforce)
    subscription_id = (
        _name(table, "subscription_id", where, SUBSCRIPTION_ID)
        if "subscription_id" in table
        else None
    )
    selector = _selector(table, where, subscription_id)
    if selector is not None:  # the clusters are found at run time; the target is a placeholder
        target = ScheduleTarget("*", "*", subscription_id)
    else:
        target = ScheduleTarget(
            resource_group=_name(table, "resource_group", where, RESOURCE_GROUP_NAME),
            cluster=_name(table, "cluster", where, CLUSTER_NAME),
            subscription_id=subscription_id,
        )
    if "timezone" in table:
        zone = _zone(table["timezone"], f"{where}.timezone")
    elif defaults.zone is not None:
        zone = defaults.zone
    else:
        raise InvalidInput(f"{where}.timezone", "is required (no top-level timezone is set)")
    holidays = (
        _holidays(table["holidays"], f"{where}.holidays")
        if "holidays" in table
        else defaults.holidays
    )

    pools_table = _table(table.get("pools", {}), f"{where}.pools")
    pools = tuple(
        _pool(
            parse_pool_name(name, f"{where}.pools.{name}"),
            value,
            f"{where}.pools.{name}",
            enforce,
            max_count,
            states,
        )
        for name, value in pools_table.items()
    )
    exceptions_list = table.get("exceptions", [])
    if not isinstance(exceptions_list, list):
        raise InvalidInput(
            f"{where}.exceptions",
            f"must be an array of tables ([[clusters.exceptions]]), got {_kind(exceptions_list)}",
        )
    exceptions = tuple(
        _exception(rule, f"{where}.exceptions[{index}]", zone, max_count, states, holidays)
        for index, rule in enumerate(exceptions_list)
    )
    cluster = ClusterSchedule(target, zone, pools, exceptions, enforce, holidays, selector)
    if not cluster.pool_names and not defaults.profiles:
        raise InvalidInput(
            where,
            "names no pool: add [clusters.pools.<name>] or list pools in an exception",
        )
    return cluster


def _selector(
    table: Mapping[str, object], where: str, subscription_id: str | None
) -> ClusterSelector | None:
    """`select = { tag = "name=value" }`: the clusters carrying that Azure tag, instead of
    `resource_group` + `cluster`."""
    if "select" not in table:
        return None
    named = [key for key in ("resource_group", "cluster") if key in table]
    if named:
        raise InvalidInput(
            f"{where}.{named[0]}",
            "cannot be combined with select: an entry names one cluster or selects clusters by tag",
        )
    select = _table(table["select"], f"{where}.select")
    _known_fields(select, f"{where}.select", frozenset({"tag"}))
    if "tag" not in select:
        raise InvalidInput(
            f"{where}.select.tag", 'is required (e.g. "scaler-schedule=office-hours")'
        )
    tag = select["tag"]
    if not isinstance(tag, str):
        raise InvalidInput(f"{where}.select.tag", f"must be a string, got {_kind(tag)}")
    try:
        return ClusterSelector.parse(tag, subscription_id)
    except ValueError as error:
        raise InvalidInput(f"{where}.select.tag", str(error)) from None


def _pool(
    name: str,
    value: object,
    where: str,
    default_enforce: bool,
    max_count: int,
    states: States,
) -> PoolSchedule:
    table = _table(value, where)
    _known_fields(table, where, POOL_FIELDS)
    enforce = _enforce(table, where, default=default_enforce)
    if "windows" not in table and "outside" not in table:
        raise InvalidInput(where, "needs windows, outside, or both")
    outside, outside_name = (
        _state(table["outside"], f"{where}.outside", max_count, states)
        if "outside" in table
        else (None, None)
    )
    raw_windows = table.get("windows", [])
    if not isinstance(raw_windows, list):
        raise InvalidInput(
            f"{where}.windows", f"must be an array of tables, got {_kind(raw_windows)}"
        )
    windows: list[Window] = []
    for index, raw in enumerate(raw_windows):
        window = _window(raw, f"{where}.windows[{index}]", max_count, states)
        for other_index, other in enumerate(windows):
            overlap = _overlap(window, other)
            if overlap is not None:
                raise InvalidInput(
                    f"{where}.windows[{index}]", f"overlaps windows[{other_index}] ({overlap})"
                )
        windows.append(window)
    own_enforce = enforce if "enforce" in table else None
    return PoolSchedule(name, tuple(windows), outside, enforce, outside_name, own_enforce)


def _overlap(window: Window, other: Window) -> str | None:
    """Where two windows of a pool both apply (the first such stretch), or None: never."""
    if not window.mask & other.mask:
        return None
    if window.calendar is None and other.calendar is None:
        return first_stretch(window.mask & other.mask)
    for start, end, shift in _segments(window):
        for other_start, other_end, other_shift in _segments(other):
            low, high = max(start, other_start), min(end, other_end)
            if low >= high:
                continue
            both = (day_bits(window.rule) << shift) & (day_bits(other.rule) << other_shift)
            if both:
                day = CYCLE_START + timedelta(days=(both & -both).bit_length() - 1)
                return f"both apply on {day:%a %Y-%m-%d} {hhmm(low)}–{hhmm(high)}"
    return None


def _segments(window: Window) -> list[tuple[int, int, int]]:
    """The window as stretches of a day: (start, end, 0) on a day its rule matches, and for
    one that crosses midnight (0, end, 1) on the day after one."""
    if window.end > window.start:
        return [(window.start, window.end, 0)]
    return [(window.start, MINUTES_PER_DAY, 0), (0, window.end, 1)]


def _window(value: object, where: str, max_count: int, states: States) -> Window:
    table = _table(value, where)
    _known_fields(table, where, WINDOW_FIELDS)
    required: tuple[str, ...] = ("start", "end", "state")
    if "monthdays" not in table and "months" not in table:
        required = ("days", *required)
    for name in required:
        if name not in table:
            raise InvalidInput(f"{where}.{name}", "is required")
    rule = _day_rule(table, where)
    start = _time_of_day(table["start"], f"{where}.start", allow_24=False)
    end = _time_of_day(table["end"], f"{where}.end", allow_24=True)
    if start == end:
        raise InvalidInput(
            where,
            f"start and end are both {hhmm(start)}; a window needs a length "
            '(a whole day is start = "00:00", end = "24:00")',
        )
    if end == 0:
        end = MINUTES_PER_DAY  # "22:00"-"00:00" ends at midnight, the same as "24:00"
    state, state_name = _state(table["state"], f"{where}.state", max_count, states)
    if rule.weekly:
        return Window(rule.weekdays, rule.text, start, end, state, state_name=state_name)
    return Window(
        rule.possible_weekdays, rule.text, start, end, state, calendar=rule, state_name=state_name
    )


def _day_rule(table: Mapping[str, object], where: str) -> DayRule:
    """`days`, `monthdays` and `months` of a window or an exception as one rule; refused if
    no date could ever match it."""
    weekdays: frozenset[int] = frozenset(range(7))
    nth: frozenset[tuple[int, int]] = frozenset()
    days_text = "daily"
    if "days" in table:
        weekdays, nth, days_text = _days(table["days"], f"{where}.days")
    monthdays, monthdays_text = (
        _monthdays(table["monthdays"], f"{where}.monthdays") if "monthdays" in table else (None, "")
    )
    months, months_text = (
        _months(table["months"], f"{where}.months") if "months" in table else (None, "")
    )
    parts = [days_text] if "days" in table or monthdays is None else []
    if monthdays is not None:
        parts.append(f"monthdays {monthdays_text}")
    if months is not None:
        parts.append(f"in {months_text}")
    rule = DayRule(weekdays, nth, monthdays, months, " ".join(parts))
    if first_match(rule) is not None:
        return rule
    days_part = f'days "{days_text}"'
    if (
        monthdays is not None
        and months is not None
        and not first_match(DayRule(monthdays=monthdays, months=months))
    ):
        problem = f'monthdays "{monthdays_text}" are not days of months "{months_text}"'
    elif monthdays is not None and months is None:
        problem = f'{days_part} never fall on monthdays "{monthdays_text}"'
    elif monthdays is None and months is not None:
        problem = f'{days_part} never fall in months "{months_text}"'
    else:
        problem = (
            f'{days_part} never fall on monthdays "{monthdays_text}" in months "{months_text}"'
        )
    raise InvalidInput(where, f"{problem}: no date matches, so this rule could never apply")


def _exception(
    value: object,
    where: str,
    zone: str,
    max_count: int,
    states: States,
    holidays: tuple[HolidayCalendar, ...],
) -> ExceptionRule:
    table = _table(value, where)
    _known_fields(table, where, EXCEPTION_FIELDS)
    dated = {"dates", "from", "to", "until"} & set(table)
    recurring = set(DAY_RULE_FIELDS) & set(table)
    if not dated and not recurring and "on" not in table:
        raise InvalidInput(
            where, 'needs dates, from and to, until, on = "holidays", or days/monthdays/months'
        )
    if "on" in table and (dated or recurring):
        raise InvalidInput(
            f"{where}.on",
            "cannot be combined with dates, from, to, until, days, monthdays or months",
        )
    if "until" in dated and dated != {"until"}:
        raise InvalidInput(
            f"{where}.until",
            "cannot be combined with dates, from or to (an until rule applies until it expires)",
        )
    if dated and recurring:
        rule_field = next(name for name in DAY_RULE_FIELDS if name in recurring)
        raise InvalidInput(
            f"{where}.{rule_field}",
            "cannot be combined with dates, from, to or until "
            "(a day rule recurs: write one exception for each)",
        )
    for first, second in (("from", "to"), ("to", "from")):
        if first in table and second not in table:
            raise InvalidInput(f"{where}.{second}", f"is required with {first}")
    for required in ("pools", "state"):
        if required not in table:
            raise InvalidInput(f"{where}.{required}", "is required")

    dates: frozenset[date] = frozenset()
    date_range: tuple[date, date] | None = None
    until: datetime | None = None
    until_text = ""
    on_holidays = False
    days: DayRule | None = None
    if "on" in table:
        if table["on"] != "holidays":
            raise InvalidInput(f"{where}.on", f'must be "holidays", got {_shown(table["on"])}')
        if not holidays:
            raise InvalidInput(
                f"{where}.on",
                '"holidays" needs a calendar: set holidays = { country = "…" } on the cluster '
                "or at the top",
            )
        on_holidays = True
    if recurring:
        days = _day_rule(table, where)
    if "dates" in table:
        raw_dates = table["dates"]
        if not isinstance(raw_dates, list):
            raise InvalidInput(
                f"{where}.dates",
                f'must be a list of dates, e.g. ["2026-12-24"], got {_kind(raw_dates)}',
            )
        if not raw_dates:
            raise InvalidInput(f"{where}.dates", "is empty")
        dates = frozenset(_date(item, f"{where}.dates[{i}]") for i, item in enumerate(raw_dates))
    if "from" in table:
        first_day = _date(table["from"], f"{where}.from")
        last_day = _date(table["to"], f"{where}.to")
        if last_day < first_day:
            raise InvalidInput(
                f"{where}.to", f"{last_day.isoformat()} is before from ({first_day.isoformat()})"
            )
        date_range = (first_day, last_day)
    if "until" in table:
        until, until_text = _until(table["until"], f"{where}.until", zone)

    state, state_name = _state(table["state"], f"{where}.state", max_count, states)
    return ExceptionRule(
        pools=_pool_selection(table["pools"], f"{where}.pools"),
        state=state,
        dates=dates,
        date_range=date_range,
        until=until,
        until_text=until_text,
        on_holidays=on_holidays,
        days=days,
        state_name=state_name,
    )


def _pool_selection(value: object, where: str) -> frozenset[str] | None:
    if value == "*":
        return None
    if not isinstance(value, list):
        raise InvalidInput(where, f'must be "*" or a list of pool names, got {_kind(value)}')
    if not value:
        raise InvalidInput(where, 'is empty (use "*" for every pool of this cluster)')
    return frozenset(parse_pool_name(name, f"{where}[{i}]") for i, name in enumerate(value))


def _enforce(table: Mapping[str, object], where: str, *, default: bool) -> bool:
    """The table's `enforce`, else the value it inherits."""
    if "enforce" not in table:
        return default
    value = table["enforce"]
    if not isinstance(value, bool):
        path = f"{where}.enforce" if where else "enforce"
        raise InvalidInput(path, f"must be true or false, got {_kind(value)}")
    return value


def _state(
    value: object, where: str, max_count: int, states: States
) -> tuple[ScheduledState, str | None]:
    """A state and, when the file named one from `[states]`, its name."""
    if value == KEEP:
        return KEEP, None
    if isinstance(value, str):
        if value in states:
            return states[value], value
        if states:
            raise InvalidInput(
                where,
                f"{value!r} is not a state in [states] ({', '.join(states)}), "
                '"keep" or a pool form',
            )
        raise InvalidInput(
            where,
            f'must be "keep" or a pool form (a node count, {{count}}, {{min, max}} or '
            f"{{power}}), got the string {value!r}",
        )
    return parse_pool_request(value, where, max_count), None


def _days(value: object, where: str) -> tuple[frozenset[int], frozenset[tuple[int, int]], str]:
    """Plain weekdays, nth weekdays of the month ("Mon#1", "Fri#L") and the normalised text."""
    if not isinstance(value, str):
        raise InvalidInput(where, f'must be a string such as "Mon-Fri", got {_kind(value)}')
    text = value.strip().lower()
    if text in ("daily", "*"):
        return frozenset(range(7)), frozenset(), "daily"
    days: set[int] = set()
    nth: set[tuple[int, int]] = set()
    parts: list[str] = []
    for part in text.split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        if "#" in part:
            if dash:
                raise InvalidInput(
                    where,
                    f'{part.strip()!r} in {value!r}: an nth weekday ("Mon#1") cannot be part '
                    "of a range; list them with commas",
                )
            name, _, count = first.partition("#")
            weekday = _day(name.strip(), value, where)
            if count.strip() == "l":
                nth.add((weekday, LAST))
                parts.append(f"{DAY_NAMES[weekday]}#L")
            elif count.strip() in ("1", "2", "3", "4", "5"):
                nth.add((weekday, int(count)))
                parts.append(f"{DAY_NAMES[weekday]}#{int(count)}")
            else:
                raise InvalidInput(
                    where,
                    f"{first!r} in {value!r}: after # comes 1 to 5 (the nth such day of the "
                    'month) or L (the last), e.g. "Mon#1", "Fri#L"',
                )
            continue
        start = _day(first, value, where)
        end = _day(last, value, where) if dash else start
        days.update((start + offset) % 7 for offset in range((end - start) % 7 + 1))
        parts.append(DAY_NAMES[start] + (f"-{DAY_NAMES[end]}" if dash else ""))
    return frozenset(days), frozenset(nth), ",".join(parts)


def _monthdays(value: object, where: str) -> tuple[frozenset[int], str]:
    """Days of the month: 1-31 and L (the last), ranges and commas ("1-7", "L", "25-L")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(where, f'must be a string such as "1-7" or "L", got {_kind(value)}')
    found: set[int] = set()
    parts: list[str] = []
    for part in value.strip().lower().split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        low = _monthday(first, value, where)
        high = _monthday(last, value, where) if dash else low
        if low == LAST and dash and high != LAST:
            raise InvalidInput(where, f"{part.strip()!r} in {value!r}: nothing comes after L")
        if high != LAST and low != LAST and high < low:
            raise InvalidInput(
                where,
                f"{part.strip()!r} in {value!r} runs backwards: write it as two ranges "
                f'("{low}-L,1-{high}")',
            )
        if low == LAST:
            found.add(LAST)
            parts.append("L")
        elif high == LAST:
            found.update(range(low, 32))
            parts.append(f"{low}-L")
        else:
            found.update(range(low, high + 1))
            parts.append(f"{low}-{high}" if dash else str(low))
    return frozenset(found), ",".join(parts)


def _monthday(text: str, value: str, where: str) -> int:
    if _MONTHDAY.fullmatch(text) and (text == "l" or 1 <= int(text) <= 31):
        return LAST if text == "l" else int(text)
    shown = f"{text!r} in {value!r}" if text != value.strip().lower() else repr(value)
    raise InvalidInput(
        where,
        f"{shown} is not a day of the month: use 1 to 31 or L (the last day), ranges and "
        'commas ("1-7", "L", "1,15", "25-L")',
    )


def _months(value: object, where: str) -> tuple[frozenset[int], str]:
    """Months: Jan … Dec, ranges (which may wrap: "Nov-Feb") and commas."""
    if not isinstance(value, str):
        raise InvalidInput(
            where, f'must be a string such as "Dec" or "Jun-Aug", got {_kind(value)}'
        )
    found: set[int] = set()
    parts: list[str] = []
    for part in value.strip().lower().split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        start = _month(first, value, where)
        end = _month(last, value, where) if dash else start
        found.update((start - 1 + offset) % 12 + 1 for offset in range((end - start) % 12 + 1))
        parts.append(MONTH_NAMES[start - 1] + (f"-{MONTH_NAMES[end - 1]}" if dash else ""))
    return frozenset(found), ",".join(parts)


def _month(name: str, value: str, where: str) -> int:
    return _named(
        _MONTH_INDEX,
        name,
        value,
        where,
        "a month: use Jan, Feb, Mar, Apr, May, Jun, Jul, Aug, Sep, Oct, Nov, Dec, ranges and "
        'commas ("Dec", "Jun-Aug", "Nov-Feb")',
    )


def _day(name: str, value: str, where: str) -> int:
    return _named(
        _DAY_INDEX,
        name,
        value,
        where,
        "a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges and commas "
        '("Mon-Fri", "Sat,Sun", "Mon,Wed-Fri"), nth weekdays ("Mon#1", "Fri#L") or "daily"',
    )


def _named(index: Mapping[str, int], name: str, value: str, where: str, what: str) -> int:
    """`name` (one part of `value`, lower case) looked up in `index`, or an error that quotes
    the part and the whole when they differ, and says what is allowed."""
    if name not in index:
        shown = f"{name!r} in {value!r}" if name != value.strip().lower() else repr(value)
        raise InvalidInput(where, f"{shown} is not {what}")
    return index[name]


def _time_of_day(value: object, where: str, *, allow_24: bool) -> int:
    if isinstance(value, time):
        if value.second or value.microsecond:
            raise InvalidInput(where, f'{value.isoformat()} has seconds; use "HH:MM", e.g. "07:00"')
        return value.hour * 60 + value.minute
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match:
        hours, minutes = int(match[1]), int(match[2])
        if hours < 24 and minutes < 60:
            return hours * 60 + minutes
        if (hours, minutes) == (24, 0):
            if allow_24:
                return MINUTES_PER_DAY
            raise InvalidInput(where, '"24:00" is only allowed as an end')
    raise InvalidInput(
        where, f'{_shown(value)} is not a time of day ("HH:MM", 24-hour, e.g. "07:00")'
    )


def _date(value: object, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(where, f'{_shown(value)} is not a date ("YYYY-MM-DD", e.g. "2026-12-24")')


def _until(value: object, where: str, zone: str) -> tuple[datetime, str]:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = (
                datetime.combine(date.fromisoformat(value), time())
                if _DATE.fullmatch(value)
                else datetime.fromisoformat(value)
            )
        except ValueError:
            moment = None
    if moment is None:
        raise InvalidInput(
            where,
            f"{_shown(value)} is not a date or a local date-time "
            '("2027-01-15" or "2027-01-15T06:00")',
        )
    text = value.isoformat() if isinstance(value, date) else str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))  # fold=0: the first occurrence
    try:
        return moment.astimezone(UTC), text
    except OverflowError:
        raise InvalidInput(where, f"{text!r} is out of range") from None


def _zone(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(where, f"must be an IANA time zone name, got {_kind(value)}")
    if value not in _known_zones():
        raise InvalidInput(
            where, f'{value!r} is not an IANA time zone (e.g. "Europe/Amsterdam", "UTC")'
        )
    return value


@functools.cache
def _known_zones() -> frozenset[str]:
    # "localtime" names whatever the host is set to: never what a schedule means.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def _name(table: Mapping[str, object], name: str, where: str, pattern: re.Pattern[str]) -> str:
    if name not in table:
        raise InvalidInput(f"{where}.{name}", "is required")
    value = table[name]
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{name}", f"must be a string, got {_kind(value)}")
    if not pattern.fullmatch(value):
        raise InvalidInput(f"{where}.{name}", f"{value!r} is not a valid {name.replace('_', ' ')}")
    return value


def _table(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise InvalidInput(where, f"must be a table, got {_kind(value)}")
    return value


def _known_fields(table: Mapping[str, object], where: str, allowed: frozenset[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = field_name(unknown[0])  # an empty key must still be visible
        path = f"{where}.{key}" if where else key
        raise InvalidInput(path, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _kind(value: object) -> str:
    """How a TOML value is named in error messages."""
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, time):
        return f"the time {value.isoformat()}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return json_type(value)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else _kind(value)


# --- load-time warnings ---------------------------------------------------------------------


def _lapsed(schedule: Schedule, now: datetime, source: str) -> tuple[str, ...]:
    warnings: list[str] = []
    for index, cluster in enumerate(schedule.clusters):
        today = now.astimezone(cluster.zone).date()
        for number, rule in enumerate(cluster.exceptions):
            where = f"{source}: clusters[{index}].exceptions[{number}]"
            if rule.until is not None and rule.until <= now:
                warnings.append(
                    f"{where}: until {rule.until_text} has passed; the rule no longer applies"
                )
            last = rule.last_day()
            if last is not None and last < today:
                warnings.append(
                    f"{where}: its last date ({last.isoformat()}) has passed; it no longer applies"
                )
    return tuple(warnings)
