"""Schedule files: the TOML format, what it accepts, and every validation message."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.domain.errors import InvalidInput
from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.domain.schedule import KEEP, ExceptionRule, Window
from scaler.domain.schedule_file import load_schedule
from tests.unit.schedule_helpers import (
    DEMO,
    EXAMPLE,
    EXCEPTIONS,
    HEAD,
    W,
    desired,
    exception,
    load,
    local,
    pool,
    utc,
    win,
    windows,
    with_holidays,
    with_states,
)

# --- the shipped example -------------------------------------------------------------------------


def test_the_shipped_schedule_expresses_the_issue_example() -> None:
    schedule = load(EXAMPLE)
    (cluster,) = schedule.clusters
    assert cluster.target == DEMO and cluster.timezone == "Europe/Amsterdam"
    assert cluster.pool_names == ("batch", "web", "gpu")
    batch, web = cluster.pools
    assert batch.outside == Power("Stopped")
    assert batch.windows == (
        Window(frozenset(range(5)), "Mon-Fri", 7 * 60, 19 * 60, ManualCount(6)),
    )
    assert web.outside == Autoscale(1, 5)
    assert web.windows == (
        Window(frozenset(range(5)), "Mon-Fri", 8 * 60, 18 * 60, Autoscale(3, 20)),
    )
    holidays, gpu = cluster.exceptions
    assert holidays == ExceptionRule(
        pools=None, state=KEEP, dates=frozenset({date(2026, 12, 24), date(2026, 12, 31)})
    )
    assert gpu.pools == frozenset({"gpu"}) and gpu.state == ManualCount(0)
    assert gpu.until == local(2027, 1, 15) and gpu.until_text == "2027-01-15"


STOPPED, LOW, HIGH, SIX, ZERO = (
    {"power": "Stopped"},
    {"min": 1, "max": 5},
    {"min": 3, "max": 20},
    {"count": 6},
    {"count": 0},
)


# --- what the parser accepts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "text", "weekdays"),
    [
        ('"Mon-Fri"', "Mon-Fri", {0, 1, 2, 3, 4}),
        ('"mon-fri"', "Mon-Fri", {0, 1, 2, 3, 4}),
        ('"Sat,Sun"', "Sat,Sun", {5, 6}),
        ('" Mon, Wed-Fri "', "Mon,Wed-Fri", {0, 2, 3, 4}),
        ('"SUN"', "Sun", {6}),
        ('"Fri-Mon"', "Fri-Mon", {4, 5, 6, 0}),
        ('"daily"', "daily", set(range(7))),
        ('"*"', "daily", set(range(7))),
        ('"Mon-Sun"', "Mon-Sun", set(range(7))),
    ],
)
def test_day_lists(days: str, text: str, weekdays: set[int]) -> None:
    window = load(windows(f'{{ days = {days}, start = "07:00", end = "08:00", state = 1 }}'))
    (parsed,) = window.clusters[0].pools[0].windows
    assert parsed.days_text == text and parsed.days == frozenset(weekdays)


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        ('"07:00"', '"19:00"', (420, 1140)),
        ('"7:05"', '"19:30"', (425, 1170)),
        ("07:00:00", "19:00:00", (420, 1140)),  # TOML local times
        ('"00:00"', '"24:00"', (0, 1440)),
        ('"22:00"', '"24:00"', (1320, 1440)),
        ('"22:00"', '"00:00"', (1320, 1440)),  # ends at midnight: the same as 24:00
        ('"22:00"', '"06:00"', (1320, 360)),  # crosses midnight
    ],
)
def test_times_of_day(start: str, end: str, minutes: tuple[int, int]) -> None:
    schedule = load(windows(f'{{ days = "daily", start = {start}, end = {end}, state = 1 }}'))
    (window,) = schedule.clusters[0].pools[0].windows
    assert (window.start, window.end) == minutes


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("6", ManualCount(6)),
        ("{ count = 0 }", ManualCount(0)),
        ("{ min = 1, max = 5 }", Autoscale(1, 5)),
        ('{ power = "Stopped" }', Power("Stopped")),
        ('{ power = "Running" }', Power("Running")),
        ('"keep"', KEEP),
    ],
)
def test_every_pool_form_and_keep(state: str, expected: object) -> None:
    schedule = load(
        windows(
            f'{{ days = "daily", start = "07:00", end = "08:00", state = {state} }}', outside=state
        )
    )
    parsed = schedule.clusters[0].pools[0]
    assert parsed.windows[0].state == expected and parsed.outside == expected


def test_toml_native_dates_and_date_times_are_accepted() -> None:
    schedule = load(
        pool("outside = 1\n")
        + "[[clusters.exceptions]]\ndates = [2026-12-24]\nfrom = 2026-12-27\nto = 2026-12-28\n"
        'pools = "*"\nstate = "keep"\n'
        '[[clusters.exceptions]]\nuntil = 2027-01-15T06:30:00\npools = ["gpu"]\nstate = 0\n'
        '[[clusters.exceptions]]\nuntil = 2027-02-01T00:00:00Z\npools = ["spot"]\nstate = 0\n'
    )
    dated, local_until, utc_until = schedule.clusters[0].exceptions
    assert dated.dates == {date(2026, 12, 24)}
    assert dated.date_range == (date(2026, 12, 27), date(2026, 12, 28))
    assert local_until.until == local(2027, 1, 15, 6, 30)
    assert local_until.until_text == "2027-01-15T06:30:00"
    assert utc_until.until == utc(2027, 2, 1)


def test_a_timezone_per_cluster_overrides_the_top_level_one() -> None:
    text = (
        '[[clusters]]\nresource_group = "rg"\ncluster = "tokyo"\ntimezone = "Asia/Tokyo"\n'
        '[clusters.pools.batch]\nwindows = [{ days = "daily", start = "09:00", end = "10:00", state = 3 }]\n'
        '[[clusters]]\nresource_group = "rg"\ncluster = "ny"\ntimezone = "America/New_York"\n'
        '[clusters.pools.batch]\nwindows = [{ days = "daily", start = "09:00", end = "10:00", state = 3 }]\n'
    )
    schedule = load(text)
    assert desired(schedule, utc(2026, 11, 23, 0, 30)) == {"rg/tokyo": {"batch": {"count": 3}}}
    assert desired(schedule, utc(2026, 11, 23, 14, 30)) == {"rg/ny": {"batch": {"count": 3}}}
    assert desired(schedule, utc(2026, 11, 23, 12, 0)) == {}


def test_a_byte_order_mark_is_ignored() -> None:
    assert load("\ufeff" + EXAMPLE) == load(EXAMPLE)


# --- what it refuses, with the exact message ------------------------------------------------------

NOT_A_DAY = (
    'is not a day: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges and commas ("Mon-Fri", '
    '"Sat,Sun", "Mon,Wed-Fri"), nth weekdays ("Mon#1", "Fri#L") or "daily"'
)
NOT_A_TIME = 'is not a time of day ("HH:MM", 24-hour, e.g. "07:00")'
POOL_NAME_RULE = "is not an AKS pool name (lowercase letters and digits, starting with a letter, at most 12 characters)"


BAD_DOCUMENTS = [
    # TOML itself: tomllib's message carries the line
    (
        'timezone = "UTC"\n[[clusters]\n',
        "s.toml: not valid TOML: Expected ']]' at the end of an array declaration (at line 2, column 11)",
    ),
    (
        'timezone = "UTC"\ntimezone = "UTC"\n',
        "s.toml: not valid TOML: Cannot overwrite a value (at line 2, column 17)",
    ),
    ('timezone = "UTC\n', "s.toml: not valid TOML: Illegal character '\\n' (at line 1, column 16)"),
    # the document
    (
        'timezne = "UTC"\n',
        "s.toml: timezne: unknown field (allowed: clusters, enforce, holidays, profiles, states, timezone)",
    ),
    ('timezone = "UTC"\n', "s.toml: clusters: is required: add at least one [[clusters]] table"),
    (
        'timezone = "UTC"\nclusters = []\n',
        "s.toml: clusters: is empty: add at least one [[clusters]] table",
    ),
    (
        'timezone = "UTC"\n[clusters]\nresource_group = "rg"\n',
        "s.toml: clusters: must be an array of tables ([[clusters]]), got a table",
    ),
    (
        'timezone = "UTC"\nclusters = [1]\n',
        "s.toml: clusters[0]: must be a table, got the number 1",
    ),
    (
        'timezone = "Europe/Amsterdm"\n',
        's.toml: timezone: \'Europe/Amsterdm\' is not an IANA time zone (e.g. "Europe/Amsterdam", "UTC")',
    ),
    (
        'timezone = "localtime"\n',
        's.toml: timezone: \'localtime\' is not an IANA time zone (e.g. "Europe/Amsterdam", "UTC")',
    ),
    (
        'timezone = "Europe"\n',
        's.toml: timezone: \'Europe\' is not an IANA time zone (e.g. "Europe/Amsterdam", "UTC")',
    ),
    ("timezone = 1\n", "s.toml: timezone: must be an IANA time zone name, got the number 1"),
    # clusters
    (
        '[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n[clusters.pools.batch]\noutside = 1\n',
        "s.toml: clusters[0].timezone: is required (no top-level timezone is set)",
    ),
    (
        HEAD + 'timezone = "Mars/Olympus"\n',
        's.toml: clusters[0].timezone: \'Mars/Olympus\' is not an IANA time zone (e.g. "Europe/Amsterdam", "UTC")',
    ),
    (
        HEAD.replace('resource_group = "rg"\n', ""),
        "s.toml: clusters[0].resource_group: is required",
    ),
    (HEAD.replace('cluster = "aks"\n', ""), "s.toml: clusters[0].cluster: is required"),
    (
        HEAD.replace('"aks"', '"aks prod"'),
        "s.toml: clusters[0].cluster: 'aks prod' is not a valid cluster",
    ),
    (HEAD.replace('"aks"', "7"), "s.toml: clusters[0].cluster: must be a string, got the number 7"),
    (
        HEAD.replace('"rg"', '"rg/x"'),
        "s.toml: clusters[0].resource_group: 'rg/x' is not a valid resource group",
    ),
    (
        HEAD + 'subscription_id = "sub-1"\n',
        "s.toml: clusters[0].subscription_id: 'sub-1' is not a valid subscription id",
    ),
    (
        HEAD + 'name = "x"\n',
        "s.toml: clusters[0].name: unknown field (allowed: cluster, enforce, exceptions, holidays, pools, resource_group, select, subscription_id, timezone)",
    ),
    (
        HEAD,
        "s.toml: clusters[0]: names no pool: add [clusters.pools.<name>] or list pools in an exception",
    ),
    (
        pool("outside = 1\n")
        + '[[clusters]]\nresource_group = "RG"\ncluster = "AKS"\n[clusters.pools.web]\noutside = 1\n',
        "s.toml: clusters[1]: RG/AKS is already scheduled by clusters[0]",
    ),
    # pools
    (HEAD + "pools = 3\n", "s.toml: clusters[0].pools: must be a table, got the number 3"),
    (
        pool("outside = 1\n", name='"Batch"'),
        f"s.toml: clusters[0].pools.Batch: 'Batch' {POOL_NAME_RULE}",
    ),
    (
        pool("outside = 1\n", name="averyveryverylongname"),
        f"s.toml: clusters[0].pools.averyveryverylongname: 'averyveryverylongname' {POOL_NAME_RULE}",
    ),
    (pool(""), "s.toml: clusters[0].pools.batch: needs windows, outside, or both"),
    (
        pool("window = []\n"),
        "s.toml: clusters[0].pools.batch.window: unknown field (allowed: enforce, outside, windows)",
    ),
    (
        pool("windows = 3\n"),
        "s.toml: clusters[0].pools.batch.windows: must be an array of tables, got the number 3",
    ),
    (
        pool("windows = [3]\n"),
        "s.toml: clusters[0].pools.batch.windows[0]: must be a table, got the number 3",
    ),
    (
        pool('outside = { power = "Paused" }\n'),
        's.toml: clusters[0].pools.batch.outside.power: must be "Running" or "Stopped", not \'Paused\'',
    ),
    (
        pool("outside = { count = 6, min = 1 }\n"),
        "s.toml: clusters[0].pools.batch.outside: use exactly one form: {count}, {min, max} or {power}",
    ),
    # windows
    (windows(win(state="")), "s.toml: clusters[0].pools.batch.windows[0].state: is required"),
    (windows(win(days="")), "s.toml: clusters[0].pools.batch.windows[0].days: is required"),
    (
        windows(win(note='"x"')),
        "s.toml: clusters[0].pools.batch.windows[0].note: unknown field (allowed: days, end, monthdays, months, start, state)",
    ),
    (
        windows(W, win(days='"Mon-Fry"')),
        f"s.toml: clusters[0].pools.batch.windows[1].days: 'fry' in 'Mon-Fry' {NOT_A_DAY}",
    ),
    (
        windows(win(days='"Monday"')),
        f"s.toml: clusters[0].pools.batch.windows[0].days: 'Monday' {NOT_A_DAY}",
    ),
    (windows(win(days='""')), f"s.toml: clusters[0].pools.batch.windows[0].days: '' {NOT_A_DAY}"),
    (
        windows(win(days='"Mon,,Tue"')),
        f"s.toml: clusters[0].pools.batch.windows[0].days: '' in 'Mon,,Tue' {NOT_A_DAY}",
    ),
    (
        windows(win(days='["Mon"]')),
        's.toml: clusters[0].pools.batch.windows[0].days: must be a string such as "Mon-Fri", got an array',
    ),
    (
        windows(win(start='"7am"')),
        f"s.toml: clusters[0].pools.batch.windows[0].start: '7am' {NOT_A_TIME}",
    ),
    (
        windows(win(start='"24:00"')),
        's.toml: clusters[0].pools.batch.windows[0].start: "24:00" is only allowed as an end',
    ),
    (
        windows(win(end='"25:00"')),
        f"s.toml: clusters[0].pools.batch.windows[0].end: '25:00' {NOT_A_TIME}",
    ),
    (
        windows(win(end='"07:60"')),
        f"s.toml: clusters[0].pools.batch.windows[0].end: '07:60' {NOT_A_TIME}",
    ),
    (
        windows(win(end='"19:00:00"')),
        f"s.toml: clusters[0].pools.batch.windows[0].end: '19:00:00' {NOT_A_TIME}",
    ),
    (
        windows(win(start="7")),
        f"s.toml: clusters[0].pools.batch.windows[0].start: the number 7 {NOT_A_TIME}",
    ),
    (
        windows(win(start="07:00:30")),
        's.toml: clusters[0].pools.batch.windows[0].start: 07:00:30 has seconds; use "HH:MM", e.g. "07:00"',
    ),
    (
        windows(win(end='"07:00"')),
        's.toml: clusters[0].pools.batch.windows[0]: start and end are both 07:00; a window needs a length (a whole day is start = "00:00", end = "24:00")',
    ),
    # pool forms, through the intents' parser
    (
        windows(win(state="{ cnt = 6 }")),
        "s.toml: clusters[0].pools.batch.windows[0].state.cnt: is not a pool field (count, min, max, power)",
    ),
    (
        windows(win(state="{ min = 5, max = 2 }")),
        "s.toml: clusters[0].pools.batch.windows[0].state: min (5) is greater than max (2)",
    ),
    (
        windows(win(state="{ min = 1 }")),
        "s.toml: clusters[0].pools.batch.windows[0].state.max: is required with the autoscaler form",
    ),
    (
        windows(win(state="101")),
        "s.toml: clusters[0].pools.batch.windows[0].state: 101 is above the limit of 100 (SCALER_MAX_COUNT)",
    ),
    (
        windows(win(state="{ max = 101, min = 0 }")),
        "s.toml: clusters[0].pools.batch.windows[0].state.max: 101 is above the limit of 100 (SCALER_MAX_COUNT)",
    ),
    (
        windows(win(state="-1")),
        "s.toml: clusters[0].pools.batch.windows[0].state: must not be negative, got -1",
    ),
    (
        windows(win(state="2.5")),
        "s.toml: clusters[0].pools.batch.windows[0].state: expected a node count or an object with count, min and max, or power; got the number 2.5",
    ),
    (
        windows(win(state="true")),
        "s.toml: clusters[0].pools.batch.windows[0].state: expected a node count or an object with count, min and max, or power; got a boolean",
    ),
    (
        windows(win(state='"Keep"')),
        "s.toml: clusters[0].pools.batch.windows[0].state: must be \"keep\" or a pool form (a node count, {count}, {min, max} or {power}), got the string 'Keep'",
    ),
    (
        windows(win(state='{ power = "Off" }')),
        's.toml: clusters[0].pools.batch.windows[0].state.power: must be "Running" or "Stopped", not \'Off\'',
    ),
    # overlapping windows of one pool
    (
        windows(W, win(days='"Mon"', start='"12:00"', end='"20:00"')),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 12:00–19:00)",
    ),
    (
        windows(W, win(days='"Tue"')),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Tue 07:00–19:00)",
    ),
    (
        windows(W, win(days='"daily"', start='"20:00"', end='"07:30"')),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 07:00–07:30)",
    ),
    (
        windows(
            win(days='"Sun"', start='"22:00"', end='"06:00"'),
            win(days='"Mon"', start='"05:00"', end='"07:00"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 05:00–06:00)",
    ),
    (
        windows(
            win(days='"Sun"', start='"22:00"', end='"06:00"'),
            win(days='"Sun"', start='"23:00"', end='"02:00"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Sun 23:00–Mon 02:00)",
    ),
    (
        windows(
            win(days='"Sat"', start='"22:00"', end='"24:00"'),
            win(days='"Sat"', start='"12:00"', end='"00:00"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Sat 22:00–24:00)",
    ),
    (
        windows(
            W,
            win(days='"Wed"', start='"18:59"', end='"19:01"'),
            win(days='"Thu"', start='"19:00"', end='"20:00"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Wed 18:59–19:00)",
    ),
    (
        windows(
            win(days='"*"', start='"00:00"', end='"24:00"'),
            win(days='"*"', start='"00:00"', end='"24:00"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (the whole week)",
    ),
    (
        windows(
            win(days='"*"', start='"00:00"', end='"24:00"'),
            win(days='"*"', start='"12:00"', end='"11:59"'),
        ),
        "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 12:00–Tue 11:59)",
    ),
    # exceptions
    (
        pool("outside = 1\n")
        + '[clusters.exceptions]\ndates = ["2026-12-24"]\npools = "*"\nstate = "keep"\n',
        "s.toml: clusters[0].exceptions: must be an array of tables ([[clusters.exceptions]]), got a table",
    ),
    (
        exception('pools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0]: needs dates, from and to, until, on = "holidays", or days/monthdays/months',
    ),
    (
        exception('dates = ["2026-12-24"]\npools = "*"\nstate = "keep"\nreason = "xmas"\n'),
        "s.toml: clusters[0].exceptions[0].reason: unknown field (allowed: dates, days, from, monthdays, months, on, pools, state, to, until)",
    ),
    (
        exception('until = "2027-01-15"\ndates = ["2026-12-24"]\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].until: cannot be combined with dates, from or to (an until rule applies until it expires)",
    ),
    (
        exception('from = "2026-12-24"\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].to: is required with from",
    ),
    (
        exception('to = "2026-12-24"\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].from: is required with to",
    ),
    (
        exception('from = "2026-12-24"\nto = "2026-12-20"\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].to: 2026-12-20 is before from (2026-12-24)",
    ),
    (
        exception('dates = []\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].dates: is empty",
    ),
    (
        exception('dates = "2026-12-24"\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].dates: must be a list of dates, e.g. [\"2026-12-24\"], got the string '2026-12-24'",
    ),
    (
        exception('dates = ["2026-02-30"]\npools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].dates[0]: \'2026-02-30\' is not a date ("YYYY-MM-DD", e.g. "2026-12-24")',
    ),
    (
        exception('dates = ["2026-12-24", 2026-12-25T00:00:00]\npools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].dates[1]: the date-time 2026-12-25T00:00:00 is not a date ("YYYY-MM-DD", e.g. "2026-12-24")',
    ),
    (
        exception('from = "24-12-2026"\nto = "2026-12-26"\npools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].from: \'24-12-2026\' is not a date ("YYYY-MM-DD", e.g. "2026-12-24")',
    ),
    (
        exception('until = "next week"\npools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].until: \'next week\' is not a date or a local date-time ("2027-01-15" or "2027-01-15T06:00")',
    ),
    (
        exception('until = 5\npools = "*"\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].until: the number 5 is not a date or a local date-time ("2027-01-15" or "2027-01-15T06:00")',
    ),
    (
        exception('until = 0001-01-01\npools = "*"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].until: '0001-01-01' is out of range",
    ),
    (
        exception('dates = ["2026-12-24"]\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].pools: is required",
    ),
    (
        exception('dates = ["2026-12-24"]\npools = "all"\nstate = "keep"\n'),
        "s.toml: clusters[0].exceptions[0].pools: must be \"*\" or a list of pool names, got the string 'all'",
    ),
    (
        exception('dates = ["2026-12-24"]\npools = []\nstate = "keep"\n'),
        's.toml: clusters[0].exceptions[0].pools: is empty (use "*" for every pool of this cluster)',
    ),
    (
        exception('dates = ["2026-12-24"]\npools = ["batch", "GPU"]\nstate = "keep"\n'),
        f"s.toml: clusters[0].exceptions[0].pools[1]: 'GPU' {POOL_NAME_RULE}",
    ),
    (
        exception('dates = ["2026-12-24"]\npools = "*"\n'),
        "s.toml: clusters[0].exceptions[0].state: is required",
    ),
    (
        exception('dates = ["2026-12-24"]\npools = "*"\nstate = "kept"\n'),
        "s.toml: clusters[0].exceptions[0].state: must be \"keep\" or a pool form (a node count, {count}, {min, max} or {power}), got the string 'kept'",
    ),
    (
        exception('dates = ["2026-12-24"]\npools = "*"\nstate = { min = 30, max = 3 }\n'),
        "s.toml: clusters[0].exceptions[0].state: min (30) is greater than max (3)",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_DOCUMENTS)
def test_a_broken_schedule_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(text)
    assert str(caught.value) == message


def test_the_error_field_carries_the_source_and_the_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_schedule(windows(win(state="-1")), "ops/schedule.toml", 100)
    assert caught.value.field == "ops/schedule.toml: clusters[0].pools.batch.windows[0].state"
    assert caught.value.problem == "must not be negative, got -1"


def test_max_count_is_a_parameter_of_loading() -> None:
    assert load(EXAMPLE, max_count=20)
    with pytest.raises(InvalidInput) as caught:
        load(EXAMPLE, max_count=19)
    assert str(caught.value) == (
        "s.toml: clusters[0].pools.web.windows[0].state.max: 20 is above the limit of 19 "
        "(SCALER_MAX_COUNT)"
    )


def test_an_expired_rule_is_not_an_error_but_a_warning() -> None:
    now = local(2027, 3, 1)
    schedule = load(EXCEPTIONS, now=now)
    assert schedule.warnings == (
        "s.toml: clusters[0].exceptions[0]: its last date (2027-01-06) has passed; it no longer applies",
        "s.toml: clusters[0].exceptions[1]: until 2027-02-01T06:30 has passed; the rule no longer applies",
    )
    assert load(EXCEPTIONS, now=local(2026, 12, 1)).warnings == ()
    assert load(EXCEPTIONS).warnings == ()


def test_until_uses_the_clusters_zone() -> None:
    text = exception('until = "2027-01-15"\npools = ["batch"]\nstate = 0\n').replace(
        'cluster = "aks"', 'cluster = "aks"\ntimezone = "America/New_York"'
    )
    rule = load(text).clusters[0].exceptions[0]
    assert rule.until == utc(2027, 1, 15, 5, 0)


def test_a_local_until_in_the_repeated_hour_means_its_first_occurrence() -> None:
    text = exception('until = "2026-10-25T02:30"\npools = ["batch"]\nstate = 0\n')
    assert load(text).clusters[0].exceptions[0].until == utc(2026, 10, 25, 0, 30)


# --- enforce -------------------------------------------------------------------------------------

ENFORCE = (
    HEAD
    + "{cluster}"
    + "[clusters.pools.batch]\noutside = 1\n{batch}"
    + "[clusters.pools.web]\noutside = 2\n"
    + '[[clusters.exceptions]]\ndates = ["2026-12-24"]\npools = ["gpu"]\nstate = 0\n'
)


def enforced(top: str = "", cluster: str = "", batch: str = "") -> dict[str, bool]:
    text = top + ENFORCE.format(cluster=cluster, batch=batch)
    (loaded,) = load(text).clusters
    return {name: loaded.enforces(name) for name in ("batch", "web", "gpu", "system")}


@pytest.mark.parametrize(
    ("top", "cluster", "batch", "expected"),
    [
        ("", "", "", (True, True, True, True)),  # the default: converge every run
        ("enforce = false\n", "", "", (False, False, False, False)),
        ("enforce = false\n", "enforce = true\n", "", (True, True, True, True)),
        ("", "enforce = false\n", "", (False, False, False, False)),
        ("", "", "enforce = false\n", (False, True, True, True)),
        ("enforce = false\n", "", "enforce = true\n", (True, False, False, False)),
        ("", "enforce = false\n", "enforce = true\n", (True, False, False, False)),
        (
            "enforce = true\n",
            "enforce = false\n",
            "enforce = false\n",
            (False, False, False, False),
        ),
    ],
)
def test_enforce_the_most_specific_setting_wins(
    top: str, cluster: str, batch: str, expected: tuple[bool, ...]
) -> None:
    # gpu is named only in an exception and system not at all: both follow the cluster
    assert enforced(top, cluster, batch) == dict(
        zip(("batch", "web", "gpu", "system"), expected, strict=True)
    )


def test_enforce_is_resolved_into_the_model() -> None:
    (loaded,) = load(ENFORCE.format(cluster="enforce = false\n", batch="enforce = true\n")).clusters
    batch, web = loaded.pools
    assert loaded.enforce is False
    assert (batch.name, batch.enforce) == ("batch", True)
    assert (web.name, web.enforce) == ("web", False)
    (shipped,) = load(EXAMPLE).clusters
    assert shipped.enforce and all(p.enforce for p in shipped.pools)


@pytest.mark.parametrize(
    ("top", "cluster", "batch", "message"),
    [
        (
            'enforce = "false"\n',
            "",
            "",
            "s.toml: enforce: must be true or false, got the string 'false'",
        ),
        (
            "",
            "enforce = 1\n",
            "",
            "s.toml: clusters[0].enforce: must be true or false, got the number 1",
        ),
        (
            "",
            "",
            'enforce = "no"\n',
            "s.toml: clusters[0].pools.batch.enforce: must be true or false, got the string 'no'",
        ),
        (
            "",
            "",
            "enforce = [true]\n",
            "s.toml: clusters[0].pools.batch.enforce: must be true or false, got an array",
        ),
    ],
)
def test_enforce_must_be_a_boolean(top: str, cluster: str, batch: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(top + ENFORCE.format(cluster=cluster, batch=batch))
    assert str(caught.value) == message


def test_a_pool_with_only_enforce_has_no_rule() -> None:
    with pytest.raises(InvalidInput) as caught:
        load(pool("enforce = false\n"))
    assert str(caught.value) == "s.toml: clusters[0].pools.batch: needs windows, outside, or both"


# --- nothing but InvalidInput, whatever the document -------------------------------------------------

FIELD_NAMES = sorted(
    {
        "timezone",
        "clusters",
        "resource_group",
        "cluster",
        "subscription_id",
        "enforce",
        "pools",
        "exceptions",
        "windows",
        "outside",
        "days",
        "start",
        "end",
        "state",
        "dates",
        "from",
        "to",
        "until",
        "count",
        "min",
        "max",
        "power",
        "batch",
        "web",
    }
)
SPECIAL_STRINGS = [
    "",
    "*",
    "keep",
    "Keep",
    "Mon-Fri",
    "Sat,Sun",
    "Mon,Wed-Fri",
    "daily",
    "fri-mon",
    "Mon--Fri",
    "07:00",
    "19:00",
    "24:00",
    "00:00",
    "7:5",
    "99:99",
    "Europe/Amsterdam",
    "UTC",
    "Asia/Tokyo",
    "America/New_York",
    "Europe",
    "localtime",
    "../etc/passwd",
    "/etc/localtime",
    "2026-12-24",
    "2026-02-30",
    "2027-01-15T06:00",
    "2027-01-15T06:00+01:00",
    "9999-12-31T23:59",
    "0001-01-01",
    "rg",
    "rg-demo",
    "aks",
    "Batch",
    "Stopped",
    "Running",
    "11111111-2222-3333-4444-555555555555",
]

scalars = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=10),
    st.integers(min_value=-3, max_value=1200),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.times(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
)
anything = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def shaped(
    draw: st.DrawFn,
    required: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> dict[str, Any]:
    """A valid-looking table, or (one time in twelve) that table one mutation away from
    valid: a field dropped, a field's value replaced by anything, or a stray field added."""
    table: dict[str, Any] = draw(st.fixed_dictionaries(required, optional=optional or {}))
    mutation = draw(st.integers(0, 35))
    if mutation == 1 and table:
        del table[draw(st.sampled_from(sorted(table)))]
    elif mutation == 2 and table:
        table[draw(st.sampled_from(sorted(table)))] = draw(anything)
    elif mutation == 3:
        table[draw(st.sampled_from(FIELD_NAMES))] = draw(anything)
    return table


clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 24), st.sampled_from([0, 30, 59]))
pool_form = st.one_of(
    st.integers(0, 120),
    st.just("keep"),
    st.fixed_dictionaries({"count": st.integers(-1, 120)}),
    st.fixed_dictionaries({"min": st.integers(0, 30), "max": st.integers(0, 30)}),
    st.fixed_dictionaries({"power": st.sampled_from(["Running", "Stopped", "Off"])}),
)
a_date = st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))
date_range = st.tuples(a_date, st.integers(-1, 5)).map(
    lambda t: {"from": str(t[0]), "to": str(t[0] + timedelta(days=t[1]))}
)
pool_names = st.sampled_from(["batch", "web", "gpu", "spot"])
window = shaped(
    {
        "days": st.sampled_from(
            ["Mon-Fri", "Sat,Sun", "daily", "*", "Sun", "fri-mon", "Mon,Wed-Fri"]
        ),
        "start": clock,
        "end": clock,
        "state": pool_form,
    }
)
selection = {
    "pools": st.just("*") | st.lists(pool_names, min_size=1, max_size=2),
    "state": pool_form,
}
rule = st.one_of(
    shaped({"dates": st.lists(a_date | a_date.map(str), min_size=1, max_size=3), **selection}),
    st.tuples(date_range, shaped(selection)).map(lambda t: {**t[0], **t[1]}),
    shaped(
        {
            "until": a_date | a_date.map(str) | st.datetimes(min_value=datetime(2026, 1, 1)),
            **selection,
        }
    ),
)
cluster = shaped(
    {
        "resource_group": st.sampled_from(["rg", "rg-demo", "RG"]),
        "cluster": st.sampled_from(["aks", "aks-demo", "AKS"]),
        "pools": st.dictionaries(
            pool_names,
            shaped(
                {"windows": st.lists(window, max_size=2)},
                {"outside": pool_form, "enforce": st.booleans()},
            )
            | shaped(
                {"outside": pool_form},
                {"windows": st.lists(window, max_size=2), "enforce": st.booleans()},
            ),
            min_size=1,
            max_size=3,
        ),
    },
    {
        "subscription_id": st.just("11111111-2222-3333-4444-555555555555"),
        "timezone": st.sampled_from(["Asia/Tokyo", "America/New_York", "Australia/Lord_Howe"]),
        "exceptions": st.lists(rule, max_size=2),
        "enforce": st.booleans(),
    },
)
document = shaped(
    {
        "timezone": st.sampled_from(["Europe/Amsterdam", "UTC", "America/New_York"]),
        "clusters": st.lists(cluster, min_size=1, max_size=2),
    },
    {"enforce": st.booleans()},
)


def toml_key(key: str) -> str:
    return toml_value(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(table: dict[str, Any]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


def test_the_toml_writer_round_trips_the_example() -> None:
    parsed = tomllib.loads(EXAMPLE)
    assert tomllib.loads(to_toml(parsed)) == parsed
    assert load(to_toml(parsed)) == load(EXAMPLE)


PROBES = [utc(2026, 3, 29, 1, 0), utc(2026, 10, 25, 1, 30), utc(2026, 12, 24, 12), utc(2027, 6, 1)]


def check_loads_or_refuses(text: str) -> None:
    try:
        schedule = load_schedule(text, "fuzz.toml", 100, now=utc(2026, 11, 23))
    except InvalidInput as error:
        assert str(error).startswith("fuzz.toml")
        return
    for instant in PROBES:  # whatever loads can be evaluated
        schedule.desired_at(instant)
        for loaded in schedule.clusters:
            for name in loaded.pool_names:
                assert schedule.explain_at(instant, loaded.target, name)
                assert isinstance(loaded.enforces(name), bool)
                after = schedule.next_transition(loaded.target, name, instant)
                assert after is None or after > instant


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_any_document_loads_or_raises_invalid_input(table: dict[str, Any]) -> None:
    check_loads_or_refuses(to_toml(table))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=5), anything, max_size=4))
def test_any_random_table_loads_or_raises_invalid_input(table: dict[str, Any]) -> None:
    check_loads_or_refuses(to_toml(table))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_invalid_input(text: str) -> None:
    check_loads_or_refuses(text)


# --- calendars: holidays, day rules, named states and profiles; every refusal's exact text ---------

NEVER = "no date matches, so this rule could never apply"
W0 = "s.toml: clusters[0].pools.batch.windows[0]"
E0 = "s.toml: clusters[0].exceptions[0]"
CALENDAR_REFUSALS = [
    # rules that can never match
    (windows(win(days="", monthdays='"30-31"', months='"Feb"')), f'{W0}: monthdays "30-31" are not days of months "Feb": {NEVER}'),
    (windows(win(days="", monthdays="31", months='"Apr,Jun,Sep,Nov"')), f'{W0}: monthdays "31" are not days of months "Apr,Jun,Sep,Nov": {NEVER}'),
    (windows(win(days='"Mon#1"', monthdays='"8-14"')), f'{W0}: days "Mon#1" never fall on monthdays "8-14": {NEVER}'),
    (windows(win(days='"Fri#L"', monthdays='"1-7"')), f'{W0}: days "Fri#L" never fall on monthdays "1-7": {NEVER}'),
    (windows(win(days='"Mon#1"', monthdays='"L"')), f'{W0}: days "Mon#1" never fall on monthdays "L": {NEVER}'),
    (windows(win(days='"Sun#5"', monthdays='"1-28"', months='"Jan"')), f'{W0}: days "Sun#5" never fall on monthdays "1-28" in months "Jan": {NEVER}'),
    (exception('monthdays = "30"\nmonths = "Feb"\npools = "*"\nstate = 0\n'), f'{E0}: monthdays "30" are not days of months "Feb": {NEVER}'),
    # day rules that do not parse
    (windows(win(days='"Mon#6"')), f"{W0}.days: 'mon#6' in 'Mon#6': after # comes 1 to 5 (the nth such day of the month) or L (the last), e.g. \"Mon#1\", \"Fri#L\""),
    (windows(win(days='"Mon#1-Fri#1"')), f"{W0}.days: 'mon#1-fri#1' in 'Mon#1-Fri#1': an nth weekday (\"Mon#1\") cannot be part of a range; list them with commas"),
    (windows(win(days='"Mun#1"')), f"{W0}.days: 'mun' in 'Mun#1' {NOT_A_DAY}"),
    (windows(win(days="", monthdays='"32"')), f"{W0}.monthdays: '32' is not a day of the month: use 1 to 31 or L (the last day), ranges and commas (\"1-7\", \"L\", \"1,15\", \"25-L\")"),
    (windows(win(days="", monthdays='"1,0"')), f"{W0}.monthdays: '0' in '1,0' is not a day of the month: use 1 to 31 or L (the last day), ranges and commas (\"1-7\", \"L\", \"1,15\", \"25-L\")"),
    (windows(win(days="", monthdays='"25-5"')), f"{W0}.monthdays: '25-5' in '25-5' runs backwards: write it as two ranges (\"25-L,1-5\")"),
    (windows(win(days="", monthdays='"L-3"')), f"{W0}.monthdays: 'l-3' in 'L-3': nothing comes after L"),
    (windows(win(days="", monthdays="[1]")), f'{W0}.monthdays: must be a string such as "1-7" or "L", got an array'),
    (windows(win(months='"Dez"')), f"{W0}.months: 'Dez' is not a month: use Jan, Feb, Mar, Apr, May, Jun, Jul, Aug, Sep, Oct, Nov, Dec, ranges and commas (\"Dec\", \"Jun-Aug\", \"Nov-Feb\")"),
    (windows(win(months="12")), f'{W0}.months: must be a string such as "Dec" or "Jun-Aug", got the number 12'),
    (windows(win(days="", start="")), f"{W0}.days: is required"),
    (windows(win(days="", months='"Dec"', start="")), f"{W0}.start: is required"),
    # overlapping windows with day rules: where they first both apply
    (windows(win(), win(days='"Mon#1"', start='"12:00"', end='"20:00"')), "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (both apply on Mon 2026-01-05 12:00–19:00)"),
    (windows(win(days='"Fri#L"', start='"22:00"', end='"06:00"'), win(days='"Sat"', start='"05:00"', end='"07:00"')), "s.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (both apply on Sat 2026-01-31 05:00–06:00)"),
    # exceptions: what goes with what
    (exception('days = "Fri#L"\ndates = ["2026-12-24"]\npools = "*"\nstate = 0\n'), f"{E0}.days: cannot be combined with dates, from, to or until (a day rule recurs: write one exception for each)"),
    (exception('months = "Dec"\nuntil = "2027-01-01"\npools = "*"\nstate = 0\n'), f"{E0}.months: cannot be combined with dates, from, to or until (a day rule recurs: write one exception for each)"),
    (exception('on = "holidays"\ndays = "Mon"\npools = "*"\nstate = 0\n'), f"{E0}.on: cannot be combined with dates, from, to, until, days, monthdays or months"),
    (exception('on = "holidays"\npools = "*"\nstate = 0\n'), f'{E0}.on: "holidays" needs a calendar: set holidays = {{ country = "…" }} on the cluster or at the top'),
    (with_holidays(exception('on = "weekends"\npools = "*"\nstate = 0\n'), '{ country = "NL" }'), f"{E0}.on: must be \"holidays\", got 'weekends'"),
    # holidays
    (with_holidays(pool("outside = 1\n"), '{ country = "XX" }'), "s.toml: clusters[0].holidays.country: 'XX' is not a country the holidays library knows (an ISO 3166-1 alpha-2 code, e.g. \"NL\", \"US\")"),
    (with_holidays(pool("outside = 1\n"), '[{ country = "NL" }, { country = "US", subdiv = "ZZ" }]'), "s.toml: clusters[0].holidays[1].subdiv: 'ZZ' is not a subdivision of US the holidays library knows (e.g. \"AK\", \"AL\", \"AR\")"),
    (with_holidays(pool("outside = 1\n"), '{ country = "IS", subdiv = "1" }'), "s.toml: clusters[0].holidays.subdiv: '1' is not a subdivision of IS the holidays library knows (IS has none)"),
    (with_holidays(pool("outside = 1\n"), '{ subdiv = "CA" }'), 's.toml: clusters[0].holidays.country: is required (e.g. "NL", "US")'),
    (with_holidays(pool("outside = 1\n"), '{ country = 1 }'), "s.toml: clusters[0].holidays.country: must be a string, got the number 1"),
    (with_holidays(pool("outside = 1\n"), '{ country = "NL", subdiv = 1 }'), "s.toml: clusters[0].holidays.subdiv: must be a string, got the number 1"),
    (with_holidays(pool("outside = 1\n"), '{ country = "NL", region = "x" }'), "s.toml: clusters[0].holidays.region: unknown field (allowed: country, subdiv)"),
    (with_holidays(pool("outside = 1\n"), '"NL"'), 's.toml: clusters[0].holidays: must be a table ({ country = "NL" }) or a list of them, got the string \'NL\''),
    (with_holidays(pool("outside = 1\n"), "[]"), "s.toml: clusters[0].holidays: is empty"),
    ('timezone = "UTC"\nholidays = { country = "Netherlands" }\n' + HEAD.removeprefix('timezone = "Europe/Amsterdam"\n') + "[clusters.pools.batch]\noutside = 1\n", "s.toml: holidays.country: 'Netherlands' is not a country the holidays library knows (an ISO 3166-1 alpha-2 code, e.g. \"NL\", \"US\")"),
    # named states
    (with_states(pool('outside = "offce"\n')), "s.toml: clusters[0].pools.batch.outside: 'offce' is not a state in [states] (office, night), \"keep\" or a pool form"),
    (with_states(exception('dates = ["2026-12-24"]\npools = "*"\nstate = "nite"\n')), f"{E0}.state: 'nite' is not a state in [states] (office, night), \"keep\" or a pool form"),
    (pool('outside = "office"\n'), "s.toml: clusters[0].pools.batch.outside: must be \"keep\" or a pool form (a node count, {count}, {min, max} or {power}), got the string 'office'"),
    (pool("outside = 1\n").replace("[[clusters]]", "[states]\nkeep = 1\n[[clusters]]"), 's.toml: states.keep: "keep" is reserved: it means "leave the pool alone"'),
    (pool("outside = 1\n").replace("[[clusters]]", '[states]\n"9am" = 1\n[[clusters]]'), "s.toml: states.9am: is not a state name (a letter, then letters, digits, - or _; at most 40)"),
    (pool("outside = 1\n").replace("[[clusters]]", '[states]\nbig = "office"\n[[clusters]]'), "s.toml: states.big: must be \"keep\" or a pool form (a node count, {count}, {min, max} or {power}), got the string 'office'"),
    (pool("outside = 1\n").replace("[[clusters]]", "[states]\nbig = 101\n[[clusters]]"), "s.toml: states.big: 101 is above the limit of 100 (SCALER_MAX_COUNT)"),
    (pool("outside = 1\n").replace("[[clusters]]", "states = 1\n[[clusters]]"), "s.toml: states: must be a table, got the number 1"),
    # profiles
    (pool("outside = 1\n").replace("[[clusters]]", '[profiles."-x"]\noutside = 1\n[[clusters]]'), "s.toml: profiles.-x: is not a profile name (a tag value: letters, digits, '.', '-' and '_', starting with a letter or digit, at most 63 characters)"),
    (pool("outside = 1\n").replace("[[clusters]]", "[profiles.p]\nenforce = true\n[[clusters]]"), "s.toml: profiles.p: needs windows, outside, or both"),
    (pool("outside = 1\n").replace("[[clusters]]", "[profiles.p]\noutside = 1\npools = 1\n[[clusters]]"), "s.toml: profiles.p.pools: unknown field (allowed: enforce, outside, windows)"),
    (pool("outside = 1\n").replace("[[clusters]]", '[profiles.p]\nwindows = [{ days = "Mon#1", start = "07:00", end = "08:00", state = 1, monthdays = "L" }]\n[[clusters]]'), f'(s.toml: profiles.p.windows[0]: days "Mon#1" never fall on monthdays "L": {NEVER}'[1:]),
    ('[profiles.p]\noutside = 1\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\ntimezone = "UTC"\n', "s.toml: timezone: is required with [profiles] (a profile also runs in clusters the file does not list)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), CALENDAR_REFUSALS)
def test_a_broken_calendar_rule_is_refused_with_its_exact_text(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "window",
    [
        win(days='"Mon#5"'),
        win(days='"Mon#5"', months='"Feb"'),  # 29 February 2044 is a Monday
        win(days='"Fri#L"', monthdays='"L"'),
        win(days="", monthdays='"29"', months='"Feb"'),
        win(days="", monthdays='"31"', months='"Jan-Mar"'),
    ],
)
def test_rare_but_possible_rules_are_accepted(window: str) -> None:
    load(windows(window))


def test_day_rules_are_normalised_into_the_model() -> None:
    (window,) = (
        load(windows(win(days='"mon#1, fri#l,Sat"', monthdays='"1-7,L"', months='"dec, jun-aug"')))
        .clusters[0]
        .pools[0]
        .windows
    )
    assert window.days_text == "Mon#1,Fri#L,Sat monthdays 1-7,L in Dec,Jun-Aug"
    assert window.days == frozenset({0, 4, 5})
    rule = window.calendar
    assert rule is not None and rule.weekdays == frozenset({5})
    assert rule.nth == frozenset({(0, 1), (4, -1)})
    assert rule.monthdays == frozenset({*range(1, 8), -1}) and rule.months == frozenset(
        {12, 6, 7, 8}
    )
    # a weekly rule stays what it always was: no calendar
    (plain,) = load(windows(W)).clusters[0].pools[0].windows
    assert plain.calendar is None


def test_holidays_accept_lowercase_codes_and_lists() -> None:
    text = with_holidays(
        pool("outside = 1\n"), '[{ country = "nl" }, { country = "us", subdiv = "ca" }]'
    )
    cluster = load(text).clusters[0]
    assert [h.label for h in cluster.holidays] == ["NL", "US-CA"]


def test_a_cluster_without_pools_is_allowed_when_the_file_has_profiles() -> None:
    text = 'timezone = "UTC"\n[profiles.p]\noutside = 1\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
    (cluster,) = load(text).clusters
    assert cluster.pool_names == ()


# --- clusters picked by tag -------------------------------------------------------------------

SELECTING = """
timezone = "UTC"
[[clusters]]
select = { tag = "scaler-schedule = office-hours" }
[clusters.pools.batch]
outside = 0

[[clusters]]
select = { tag = "team=data" }
subscription_id = "00000000-0000-0000-0000-00000000000c"
[clusters.pools.web]
outside = 1
"""


def test_select_entries_pick_clusters_by_tag_and_name_none_themselves() -> None:
    from scaler.domain.clusters import ClusterRef

    schedule = load_schedule(SELECTING, "s.toml", 100)
    assert schedule.clusters == ()
    first, second = schedule.selections
    assert first.selector is not None and first.selector.text == "scaler-schedule=office-hours"
    assert second.selector is not None and second.selector.subscription_id.endswith("c")
    elsewhere = ClusterRef("00000000-0000-0000-0000-00000000000b", "rg", "aks")
    tagged = schedule.selected(elsewhere, {"Scaler-Schedule": "OFFICE-HOURS", "team": "data"})
    assert tagged is not None and tagged.pool_names == ("batch",)
    assert (
        tagged.target.cluster == "aks"
        and tagged.target.subscription_id == elsewhere.subscription_id
    )
    assert schedule.selected(elsewhere, {"team": "data"}) is None  # only in subscription …c
    assert schedule.selected(elsewhere, {}, "team=data") is None
    assert schedule.selected(elsewhere, {}, "scaler-schedule=office-hours") is not None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            'select = { tag = "a=b" }\ncluster = "aks"',
            "s.toml: clusters[0].cluster: cannot be combined with select: an entry names one "
            "cluster or selects clusters by tag",
        ),
        (
            'select = { tag = "justaname" }',
            "s.toml: clusters[0].select.tag: 'justaname' is not name=value",
        ),
        ('select = { tag = "a/b=c" }', "s.toml: clusters[0].select.tag: 'a/b=c' has characters"),
        ('select = { label = "a=b" }', "s.toml: clusters[0].select.label: unknown field"),
        ('select = "a=b"', "s.toml: clusters[0].select: must be a table"),
    ],
)
def test_a_bad_select_is_refused_naming_the_field(entry: str, message: str) -> None:
    text = f'timezone = "UTC"\n[[clusters]]\n{entry}\n[clusters.pools.batch]\noutside = 0\n'
    with pytest.raises(InvalidInput) as caught:
        load_schedule(text, "s.toml", 100)
    assert str(caught.value).startswith(message)


def test_the_same_selector_twice_is_refused() -> None:
    entry = '[[clusters]]\nselect = { tag = "a=b" }\n[clusters.pools.batch]\noutside = 0\n'
    with pytest.raises(InvalidInput, match=r"clusters\[1\]: select tag a=b is already scheduled"):
        load_schedule('timezone = "UTC"\n' + entry + entry, "s.toml", 100)
