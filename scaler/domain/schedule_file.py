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
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID
from scaler.domain.errors import InvalidInput

# One definition of what ARM accepts, shared with intents (a schedule's cluster is validated
# exactly like an intent's).
from scaler.domain.pools import json_type, parse_pool_name, parse_pool_request
from scaler.domain.schedule import (
    DAY_NAMES,
    KEEP,
    MINUTES_PER_DAY,
    ClusterSchedule,
    ExceptionRule,
    PoolSchedule,
    Schedule,
    ScheduledState,
    ScheduleTarget,
    Window,
    first_stretch,
    hhmm,
    require_aware,
)

ROOT_FIELDS: Final = frozenset({"timezone", "enforce", "clusters"})
CLUSTER_FIELDS: Final = frozenset(
    {"resource_group", "cluster", "subscription_id", "timezone", "enforce", "pools", "exceptions"}
)
POOL_FIELDS: Final = frozenset({"windows", "outside", "enforce"})
WINDOW_FIELDS: Final = frozenset({"days", "start", "end", "state"})
EXCEPTION_FIELDS: Final = frozenset({"dates", "from", "to", "until", "pools", "state"})

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_INDEX: Final = {name.lower(): index for index, name in enumerate(DAY_NAMES)}


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
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"clusters[{index}]"
        cluster = _cluster(entry, where, default_zone, default_enforce, max_count)
        key = cluster.target.key.lower()
        if key in seen:
            raise InvalidInput(
                where, f"{cluster.target.key} is already scheduled by clusters[{seen[key]}]"
            )
        seen[key] = index
        clusters.append(cluster)
    return Schedule(tuple(clusters))


def _cluster(
    entry: object, where: str, default_zone: str | None, default_enforce: bool, max_count: int
) -> ClusterSchedule:
    table = _table(entry, where)
    _known_fields(table, where, CLUSTER_FIELDS)
    enforce = _enforce(table, where, default=default_enforce)
    target = ScheduleTarget(
        resource_group=_name(table, "resource_group", where, RESOURCE_GROUP_NAME),
        cluster=_name(table, "cluster", where, CLUSTER_NAME),
        subscription_id=(
            _name(table, "subscription_id", where, SUBSCRIPTION_ID)
            if "subscription_id" in table
            else None
        ),
    )
    if "timezone" in table:
        zone = _zone(table["timezone"], f"{where}.timezone")
    elif default_zone is not None:
        zone = default_zone
    else:
        raise InvalidInput(f"{where}.timezone", "is required (no top-level timezone is set)")

    pools_table = _table(table.get("pools", {}), f"{where}.pools")
    pools = tuple(
        _pool(
            parse_pool_name(name, f"{where}.pools.{name}"),
            value,
            f"{where}.pools.{name}",
            enforce,
            max_count,
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
        _exception(rule, f"{where}.exceptions[{index}]", zone, max_count)
        for index, rule in enumerate(exceptions_list)
    )
    cluster = ClusterSchedule(target, zone, pools, exceptions, enforce)
    if not cluster.pool_names:
        raise InvalidInput(
            where,
            "names no pool: add [clusters.pools.<name>] or list pools in an exception",
        )
    return cluster


def _pool(
    name: str, value: object, where: str, default_enforce: bool, max_count: int
) -> PoolSchedule:
    table = _table(value, where)
    _known_fields(table, where, POOL_FIELDS)
    enforce = _enforce(table, where, default=default_enforce)
    if "windows" not in table and "outside" not in table:
        raise InvalidInput(where, "needs windows, outside, or both")
    outside = (
        _state(table["outside"], f"{where}.outside", max_count) if "outside" in table else None
    )
    raw_windows = table.get("windows", [])
    if not isinstance(raw_windows, list):
        raise InvalidInput(
            f"{where}.windows", f"must be an array of tables, got {_kind(raw_windows)}"
        )
    windows: list[Window] = []
    covered = 0  # every minute of the week some earlier window claims
    for index, raw in enumerate(raw_windows):
        window = _window(raw, f"{where}.windows[{index}]", max_count)
        if window.mask & covered:
            other_index, overlap = next(
                (i, window.mask & other.mask)
                for i, other in enumerate(windows)
                if window.mask & other.mask
            )
            raise InvalidInput(
                f"{where}.windows[{index}]",
                f"overlaps windows[{other_index}] ({first_stretch(overlap)})",
            )
        covered |= window.mask
        windows.append(window)
    return PoolSchedule(name, tuple(windows), outside, enforce)


def _window(value: object, where: str, max_count: int) -> Window:
    table = _table(value, where)
    _known_fields(table, where, WINDOW_FIELDS)
    for required in ("days", "start", "end", "state"):
        if required not in table:
            raise InvalidInput(f"{where}.{required}", "is required")
    days, days_text = _days(table["days"], f"{where}.days")
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
    state = _state(table["state"], f"{where}.state", max_count)
    return Window(frozenset(days), days_text, start, end, state)


def _exception(value: object, where: str, zone: str, max_count: int) -> ExceptionRule:
    table = _table(value, where)
    _known_fields(table, where, EXCEPTION_FIELDS)
    when = {"dates", "from", "to", "until"} & set(table)
    if not when:
        raise InvalidInput(where, "needs dates, from and to, or until")
    if "until" in when and when != {"until"}:
        raise InvalidInput(
            f"{where}.until",
            "cannot be combined with dates, from or to (an until rule applies until it expires)",
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

    return ExceptionRule(
        pools=_pool_selection(table["pools"], f"{where}.pools"),
        state=_state(table["state"], f"{where}.state", max_count),
        dates=dates,
        date_range=date_range,
        until=until,
        until_text=until_text,
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


def _state(value: object, where: str, max_count: int) -> ScheduledState:
    if value == KEEP:
        return KEEP
    if isinstance(value, str):
        raise InvalidInput(
            where,
            f'must be "keep" or a pool form (a node count, {{count}}, {{min, max}} or '
            f"{{power}}), got the string {value!r}",
        )
    return parse_pool_request(value, where, max_count)


def _days(value: object, where: str) -> tuple[set[int], str]:
    if not isinstance(value, str):
        raise InvalidInput(where, f'must be a string such as "Mon-Fri", got {_kind(value)}')
    text = value.strip().lower()
    if text in ("daily", "*"):
        return set(range(7)), "daily"
    days: set[int] = set()
    parts: list[str] = []
    for part in text.split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        start = _day(first, value, where)
        end = _day(last, value, where) if dash else start
        days.update((start + offset) % 7 for offset in range((end - start) % 7 + 1))
        parts.append(DAY_NAMES[start] + (f"-{DAY_NAMES[end]}" if dash else ""))
    return days, ",".join(parts)


def _day(name: str, value: str, where: str) -> int:
    if name not in _DAY_INDEX:
        shown = f"{name!r} in {value!r}" if name != value.strip().lower() else repr(value)
        raise InvalidInput(
            where,
            f"{shown} is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges and commas "
            '("Mon-Fri", "Sat,Sun", "Mon,Wed-Fri") or "daily"',
        )
    return _DAY_INDEX[name]


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
        path = f"{where}.{unknown[0]}" if where else unknown[0]
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
