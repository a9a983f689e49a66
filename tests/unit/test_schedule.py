"""Schedules, evaluated: precedence, midnight, exceptions, DST, and the next transition."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import ManualCount, Power
from scaler.domain.schedule import (
    KEEP,
    LAST,
    MINUTES_PER_DAY,
    ClusterSchedule,
    DayRule,
    ExceptionRule,
    HolidayCalendar,
    PoolSchedule,
    Schedule,
    ScheduledState,
    ScheduleTarget,
    Window,
)
from tests.unit.schedule_helpers import (
    AMSTERDAM,
    DEMO,
    EXAMPLE,
    EXCEPTIONS,
    HEAD,
    desired,
    exception,
    load,
    local,
    pool,
    state_of,
    utc,
    win,
    windows,
)

# --- the shipped example -------------------------------------------------------------------------

STOPPED, LOW, HIGH, SIX, ZERO = (
    {"power": "Stopped"},
    {"min": 1, "max": 5},
    {"min": 3, "max": 20},
    {"count": 6},
    {"count": 0},
)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (local(2026, 11, 23, 6, 59), {"batch": STOPPED, "web": LOW, "gpu": ZERO}),  # Monday
        (local(2026, 11, 23, 7, 0), {"batch": SIX, "web": LOW, "gpu": ZERO}),
        (local(2026, 11, 23, 8, 0), {"batch": SIX, "web": HIGH, "gpu": ZERO}),
        (local(2026, 11, 23, 17, 59), {"batch": SIX, "web": HIGH, "gpu": ZERO}),
        (local(2026, 11, 23, 18, 0), {"batch": SIX, "web": LOW, "gpu": ZERO}),
        (local(2026, 11, 23, 19, 0), {"batch": STOPPED, "web": LOW, "gpu": ZERO}),
        (local(2026, 11, 28, 12, 0), {"batch": STOPPED, "web": LOW, "gpu": ZERO}),  # Saturday
        (local(2026, 12, 23, 23, 59), {"batch": STOPPED, "web": LOW, "gpu": ZERO}),
        (local(2026, 12, 25, 9, 0), {"batch": SIX, "web": HIGH, "gpu": ZERO}),
        (local(2027, 1, 14, 23, 59), {"batch": STOPPED, "web": LOW, "gpu": ZERO}),  # Thursday
        (local(2027, 1, 15, 0, 0), {"batch": STOPPED, "web": LOW}),  # the gpu rule lapsed
        (local(2027, 1, 15, 12, 0), {"batch": SIX, "web": HIGH}),
    ],
)
def test_the_shipped_schedule_over_time(instant: datetime, expected: dict[str, Any]) -> None:
    assert desired(load(EXAMPLE), instant) == {"rg-demo/aks-demo": expected}


@pytest.mark.parametrize("hour", [0, 9, 23])
def test_nothing_is_asked_on_the_holidays(hour: int) -> None:
    schedule = load(EXAMPLE)
    for day in (24, 31):
        assert schedule.desired_at(local(2026, 12, day, hour, 30)) == {}
        for name in ("batch", "web", "gpu"):
            decision = schedule.decide(local(2026, 12, day, hour, 30), DEMO, name)
            assert decision.state == KEEP
            assert decision.reason == f"exception 2026-12-{day}"


@pytest.mark.parametrize(
    ("instant", "pool_name", "why"),
    [
        (local(2026, 11, 23, 10, 0), "batch", "window Mon-Fri 07:00-19:00"),
        (local(2026, 11, 23, 10, 0), "web", "window Mon-Fri 08:00-18:00"),
        (local(2026, 11, 23, 20, 0), "batch", "outside windows"),
        (local(2026, 11, 23, 20, 0), "gpu", "until 2027-01-15"),
        (local(2026, 12, 24, 10, 0), "batch", "exception 2026-12-24"),
        (local(2027, 2, 1, 10, 0), "gpu", "no rule applies"),
        (local(2026, 11, 23, 10, 0), "system", "not in the schedule"),
    ],
)
def test_explain_names_the_deciding_rule(instant: datetime, pool_name: str, why: str) -> None:
    schedule = load(EXAMPLE)
    assert schedule.explain_at(instant, DEMO, pool_name) == why
    assert schedule.explain_at(instant, "RG-DEMO/aks-demo", pool_name) == why


def test_an_unknown_cluster_is_not_in_the_schedule() -> None:
    schedule = load(EXAMPLE)
    assert schedule.explain_at(utc(2026, 11, 23), "rg/other", "batch") == "not in the schedule"
    assert schedule.cluster("rg/other") is None


def test_instants_must_be_timezone_aware() -> None:
    schedule = load(EXAMPLE)
    with pytest.raises(ValueError, match="instant must be timezone-aware"):
        schedule.desired_at(datetime(2026, 11, 23, 10, 0))
    with pytest.raises(ValueError, match="instant must be timezone-aware"):
        schedule.explain_at(datetime(2026, 11, 23, 10, 0), DEMO, "batch")


def test_the_same_instant_in_any_offset_gives_the_same_answer() -> None:
    schedule = load(EXAMPLE)
    instant = local(2026, 11, 23, 7, 0)
    for zone in ("UTC", "Asia/Tokyo", "America/New_York"):
        assert schedule.desired_at(instant.astimezone(ZoneInfo(zone))) == schedule.desired_at(
            instant
        )


def test_target_and_cluster_ref() -> None:
    schedule = load(
        HEAD.replace(
            'cluster = "aks"',
            'cluster = "aks"\nsubscription_id = "11111111-2222-3333-4444-555555555555"',
        )
        + "[clusters.pools.batch]\noutside = 2\n"
    )
    target = schedule.clusters[0].target
    assert target.key == "rg/aks"
    assert target.ref("00000000-0000-0000-0000-000000000000") == ClusterRef(
        "11111111-2222-3333-4444-555555555555", "rg", "aks"
    )
    assert DEMO.ref("00000000-0000-0000-0000-000000000000") == ClusterRef(
        "00000000-0000-0000-0000-000000000000", "rg-demo", "aks-demo"
    )


# --- precedence ------------------------------------------------------------------------------------

PRECEDENCE = (
    pool(
        "outside = 1\n"
        'windows = [{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 },'
        ' { days = "Sat", start = "10:00", end = "12:00", state = "keep" }]\n'
    )
    + '[clusters.pools.web]\nwindows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = { min = 3, max = 20 } }]\n'
    + '[[clusters.exceptions]]\ndates = ["2026-12-24"]\npools = ["batch"]\nstate = 2\n'
    + '[[clusters.exceptions]]\nfrom = "2026-12-24"\nto = "2026-12-26"\npools = "*"\nstate = "keep"\n'
    + '[[clusters.exceptions]]\ndates = ["2026-12-28"]\npools = ["gpu"]\nstate = { power = "Stopped" }\n'
)


@pytest.mark.parametrize(
    ("instant", "expected", "why"),
    [
        # outside < window
        (
            local(2026, 12, 21, 6, 0),
            {"batch": {"count": 1}},
            {"batch": "outside windows", "web": "no rule applies"},
        ),
        (
            local(2026, 12, 21, 9, 0),
            {"batch": {"count": 6}, "web": HIGH},
            {"batch": "window Mon-Fri 07:00-19:00"},
        ),
        # a window may say "keep": it outranks outside
        (
            local(2026, 12, 19, 11, 0),
            {},
            {"batch": "window Sat 10:00-12:00", "web": "no rule applies"},
        ),
        (local(2026, 12, 19, 12, 0), {"batch": {"count": 1}}, {"batch": "outside windows"}),
        # exception > window; the first matching exception in file order wins
        (
            local(2026, 12, 24, 9, 0),
            {"batch": {"count": 2}},
            {
                "batch": "exception 2026-12-24",
                "web": "exception 2026-12-24 to 2026-12-26",
                "gpu": "exception 2026-12-24 to 2026-12-26",
            },
        ),
        (local(2026, 12, 25, 9, 0), {}, {"batch": "exception 2026-12-24 to 2026-12-26"}),
        (local(2026, 12, 26, 23, 59), {}, {"batch": "exception 2026-12-24 to 2026-12-26"}),
        (
            local(2026, 12, 27, 0, 0),
            {"batch": {"count": 1}},
            {"batch": "outside windows", "gpu": "no rule applies"},
        ),
        # a pool named only by an exception
        (
            local(2026, 12, 28, 9, 0),
            {"batch": {"count": 6}, "web": HIGH, "gpu": STOPPED},
            {"gpu": "exception 2026-12-28"},
        ),
    ],
)
def test_precedence_exception_over_window_over_outside(
    instant: datetime, expected: dict[str, Any], why: dict[str, str]
) -> None:
    schedule = load(PRECEDENCE)
    assert desired(schedule, instant) == ({"rg/aks": expected} if expected else {})
    for name, reason in why.items():
        assert schedule.explain_at(instant, "rg/aks", name) == reason


def test_star_covers_every_pool_the_cluster_schedule_names() -> None:
    cluster = load(PRECEDENCE).clusters[0]
    assert cluster.pool_names == ("batch", "web", "gpu")
    assert cluster.decide(local(2026, 12, 25, 9, 0), "gpu").state == KEEP
    assert cluster.decide(local(2026, 12, 25, 9, 0), "system").state is None


# --- windows across midnight -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "start", "end", "instant", "inside"),
    [
        ("Fri", "22:00", "06:00", local(2026, 11, 27, 21, 59), False),  # Fri
        ("Fri", "22:00", "06:00", local(2026, 11, 27, 22, 0), True),
        ("Fri", "22:00", "06:00", local(2026, 11, 28, 0, 0), True),  # Sat
        ("Fri", "22:00", "06:00", local(2026, 11, 28, 5, 59), True),
        ("Fri", "22:00", "06:00", local(2026, 11, 28, 6, 0), False),
        ("Fri", "22:00", "06:00", local(2026, 11, 28, 22, 0), False),  # not a Saturday window
        ("Fri", "22:00", "06:00", local(2026, 11, 27, 5, 0), False),  # Thursday night is not listed
        ("Sun", "22:00", "06:00", local(2026, 11, 29, 21, 59), False),  # Sun
        ("Sun", "22:00", "06:00", local(2026, 11, 29, 23, 0), True),
        ("Sun", "22:00", "06:00", local(2026, 11, 30, 5, 59), True),  # wraps to Monday
        ("Sun", "22:00", "06:00", local(2026, 11, 30, 6, 0), False),
        ("Sun", "22:00", "06:00", local(2026, 11, 23, 3, 0), True),  # the Monday of the week before
        ("Sat,Sun", "23:00", "01:00", local(2026, 11, 30, 0, 59), True),
        ("Sat,Sun", "23:00", "01:00", local(2026, 11, 29, 0, 30), True),
        ("Sat,Sun", "23:00", "01:00", local(2026, 11, 28, 0, 30), False),
        ("Sun", "22:00", "24:00", local(2026, 11, 29, 23, 59), True),
        ("Sun", "22:00", "24:00", local(2026, 11, 30, 0, 0), False),
        ("Sun", "22:00", "00:00", local(2026, 11, 30, 0, 0), False),
    ],
)
def test_windows_across_midnight(
    days: str, start: str, end: str, instant: datetime, inside: bool
) -> None:
    schedule = load(
        windows(f'{{ days = "{days}", start = "{start}", end = "{end}", state = 5 }}', outside="1")
    )
    assert state_of(schedule, instant) == (ManualCount(5) if inside else ManualCount(1))


def test_windows_that_touch_do_not_overlap() -> None:
    schedule = load(
        windows(
            win(days='"daily"', start='"19:00"', end='"07:00"', state="1"),
            win(days='"daily"', start='"07:00"', end='"19:00"', state="2"),
        )
    )
    assert state_of(schedule, local(2026, 11, 23, 6, 59)) == ManualCount(1)
    assert state_of(schedule, local(2026, 11, 23, 7, 0)) == ManualCount(2)
    assert state_of(schedule, local(2026, 11, 23, 19, 0)) == ManualCount(1)


# --- exceptions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "state", "why"),
    [
        (local(2026, 12, 23, 23, 59), 3, "until 2027-02-01T06:30"),
        (local(2026, 12, 24, 0, 0), 7, "exception 2026-12-24"),
        (utc(2026, 12, 23, 23, 0), 7, "exception 2026-12-24"),  # 00:00 in Amsterdam
        (local(2026, 12, 24, 23, 59), 7, "exception 2026-12-24"),
        (local(2026, 12, 25, 0, 0), 3, "until 2027-02-01T06:30"),
        (local(2026, 12, 31, 12, 0), 7, "exception 2026-12-31"),
        (local(2027, 1, 4, 23, 59), 3, "until 2027-02-01T06:30"),
        (local(2027, 1, 5, 0, 0), 7, "exception 2027-01-05 to 2027-01-06"),
        (local(2027, 1, 6, 23, 59), 7, "exception 2027-01-05 to 2027-01-06"),
        (local(2027, 1, 7, 0, 0), 3, "until 2027-02-01T06:30"),
        (local(2027, 2, 1, 6, 29), 3, "until 2027-02-01T06:30"),
        (local(2027, 2, 1, 6, 30), 1, "outside windows"),  # until is exclusive, then lapses
        (local(2028, 1, 1), 1, "outside windows"),
    ],
)
def test_exceptions_by_date_range_and_until(instant: datetime, state: int, why: str) -> None:
    schedule = load(EXCEPTIONS)
    decision = schedule.clusters[0].decide(instant, "batch")
    assert decision.state == ManualCount(state) and decision.reason == why


# --- daylight saving time ----------------------------------------------------------------------------


def dst_schedule(zone: str, start: str = "02:00", end: str = "04:00") -> Schedule:
    return load(
        f'timezone = "{zone}"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
        f'[clusters.pools.batch]\noutside = 1\nwindows = [{{ days = "daily", start = "{start}", end = "{end}", state = 5 }}]\n'
    )


@pytest.mark.parametrize(
    ("zone", "instant", "inside"),
    [
        # Amsterdam, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:xx never happens
        ("Europe/Amsterdam", utc(2026, 3, 28, 23, 59), False),  # 00:59 CET
        ("Europe/Amsterdam", utc(2026, 3, 29, 0, 59), False),  # 01:59 CET
        ("Europe/Amsterdam", utc(2026, 3, 29, 1, 0), True),  # 03:00 CEST
        ("Europe/Amsterdam", utc(2026, 3, 29, 1, 59), True),  # 03:59 CEST
        ("Europe/Amsterdam", utc(2026, 3, 29, 2, 0), False),  # 04:00 CEST
        # Amsterdam, 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:xx twice
        ("Europe/Amsterdam", utc(2026, 10, 24, 23, 59), False),  # 01:59 CEST
        ("Europe/Amsterdam", utc(2026, 10, 25, 0, 0), True),  # 02:00 CEST
        ("Europe/Amsterdam", utc(2026, 10, 25, 0, 59), True),  # 02:59 CEST
        ("Europe/Amsterdam", utc(2026, 10, 25, 1, 0), True),  # 02:00 CET, the repeated hour
        ("Europe/Amsterdam", utc(2026, 10, 25, 1, 30), True),  # 02:30 CET
        ("Europe/Amsterdam", utc(2026, 10, 25, 2, 59), True),  # 03:59 CET
        ("Europe/Amsterdam", utc(2026, 10, 25, 3, 0), False),  # 04:00 CET
        # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC
        ("America/New_York", utc(2026, 3, 8, 6, 59), False),  # 01:59 EST
        ("America/New_York", utc(2026, 3, 8, 7, 0), True),  # 03:00 EDT
        ("America/New_York", utc(2026, 3, 8, 7, 59), True),  # 03:59 EDT
        ("America/New_York", utc(2026, 3, 8, 8, 0), False),  # 04:00 EDT
        # New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00 UTC; 01:xx twice
        ("America/New_York", utc(2026, 11, 1, 5, 59), False),  # 01:59 EDT
        ("America/New_York", utc(2026, 11, 1, 6, 30), False),  # 01:30 EST
        ("America/New_York", utc(2026, 11, 1, 7, 0), True),  # 02:00 EST
        ("America/New_York", utc(2026, 11, 1, 8, 59), True),  # 03:59 EST
        ("America/New_York", utc(2026, 11, 1, 9, 0), False),  # 04:00 EST
        # Tokyo has no DST: 02:00-04:00 JST is 17:00-19:00 UTC the day before, every day
        ("Asia/Tokyo", utc(2026, 3, 28, 16, 59), False),
        ("Asia/Tokyo", utc(2026, 3, 28, 17, 0), True),
        ("Asia/Tokyo", utc(2026, 3, 28, 18, 59), True),
        ("Asia/Tokyo", utc(2026, 3, 28, 19, 0), False),
        ("Asia/Tokyo", utc(2026, 10, 24, 17, 0), True),
        ("Asia/Tokyo", utc(2026, 10, 24, 19, 0), False),
        ("UTC", utc(2026, 3, 29, 1, 59), False),
        ("UTC", utc(2026, 3, 29, 2, 0), True),
        ("UTC", utc(2026, 10, 25, 3, 59), True),
        ("UTC", utc(2026, 10, 25, 4, 0), False),
    ],
)
def test_a_2_to_4_window_across_dst_transitions(zone: str, instant: datetime, inside: bool) -> None:
    assert state_of(dst_schedule(zone), instant) == (ManualCount(5) if inside else ManualCount(1))


def minutes_inside(schedule: Schedule, first: datetime, hours: int) -> int:
    return sum(
        state_of(schedule, first + timedelta(minutes=m)) == ManualCount(5)
        for m in range(hours * 60)
    )


@pytest.mark.parametrize(
    ("zone", "start", "end", "day", "minutes"),
    [
        ("Europe/Amsterdam", "02:00", "04:00", utc(2026, 3, 28, 12), 60),  # the gap eats an hour
        ("Europe/Amsterdam", "02:00", "04:00", utc(2026, 10, 24, 12), 180),  # the repeat adds one
        ("Europe/Amsterdam", "02:00", "04:00", utc(2026, 6, 1, 12), 120),
        ("America/New_York", "02:00", "04:00", utc(2026, 3, 7, 12), 60),
        ("America/New_York", "01:00", "02:00", utc(2026, 10, 31, 12), 120),  # 01:xx twice
        ("America/New_York", "02:00", "04:00", utc(2026, 10, 31, 12), 120),
        ("Asia/Tokyo", "02:00", "04:00", utc(2026, 3, 28, 0), 120),
    ],
)
def test_real_time_inside_a_window_follows_the_wall_clock(
    zone: str, start: str, end: str, day: datetime, minutes: int
) -> None:
    assert minutes_inside(dst_schedule(zone, start, end), day, 24) == minutes


# --- the next transition ---------------------------------------------------------------------------


def next_local(schedule: Schedule, after: datetime, pool_name: str = "batch") -> datetime | None:
    """The next transition, shown in Amsterdam time (it is returned in UTC)."""
    found = schedule.clusters[0].next_transition(pool_name, after)
    assert found is None or found.tzinfo is UTC
    return None if found is None else found.astimezone(AMSTERDAM)


@pytest.mark.parametrize(
    ("pool_name", "after", "expected"),
    [
        ("batch", local(2026, 11, 23, 6, 0), local(2026, 11, 23, 7, 0)),  # Monday
        ("batch", local(2026, 11, 23, 6, 59, 59, 999999), local(2026, 11, 23, 7, 0)),
        ("batch", local(2026, 11, 23, 7, 0), local(2026, 11, 23, 19, 0)),  # strictly after
        ("web", local(2026, 11, 23, 8, 30), local(2026, 11, 23, 18, 0)),
        ("batch", local(2026, 11, 27, 19, 0), local(2026, 11, 30, 7, 0)),  # over the weekend
        # the holiday: "keep" from local midnight to local midnight
        ("batch", local(2026, 12, 23, 20, 0), local(2026, 12, 24, 0, 0)),
        ("batch", local(2026, 12, 24, 10, 0), local(2026, 12, 25, 0, 0)),
        ("web", local(2026, 12, 24, 10, 0), local(2026, 12, 25, 0, 0)),
        # the gpu rule lapses at its until: 0 nodes, then no opinion
        ("gpu", local(2027, 1, 10, 12, 0), local(2027, 1, 15, 0, 0)),
        ("gpu", local(2027, 1, 15, 0, 0), None),
        ("gpu", local(2026, 12, 23, 12, 0), local(2026, 12, 24, 0, 0)),  # 0 -> keep
        ("gpu", local(2026, 12, 24, 12, 0), local(2026, 12, 25, 0, 0)),  # keep -> 0
        ("system", local(2026, 11, 23, 6, 0), None),  # not in the schedule
    ],
)
def test_next_transition_of_the_shipped_schedule(
    pool_name: str, after: datetime, expected: datetime | None
) -> None:
    assert next_local(load(EXAMPLE), after, pool_name) == expected


def test_next_transition_through_the_schedule() -> None:
    schedule = load(EXAMPLE)
    after = local(2026, 11, 23, 6, 0)
    assert schedule.next_transition(DEMO, "batch", after) == utc(2026, 11, 23, 6, 0)
    assert schedule.next_transition("RG-DEMO/aks-demo", "batch", after) == utc(2026, 11, 23, 6, 0)
    assert schedule.next_transition("rg/other", "batch", after) is None
    with pytest.raises(ValueError, match="instant must be timezone-aware"):
        schedule.next_transition(DEMO, "batch", datetime(2026, 11, 23, 6, 0))


def test_only_a_change_of_state_is_a_transition() -> None:
    # the window and outside ask the same: the reason changes at 07:00 and 19:00, the state never
    schedule = load(windows(win(state="1"), outside="1"))
    assert next_local(schedule, local(2026, 11, 23, 6, 0)) is None
    # an exception asking what the window asks is no transition either
    schedule = load(
        windows(win(state="6"), outside="1")
        + '[[clusters.exceptions]]\ndates = ["2026-11-23"]\npools = "*"\nstate = 6\n'
    )
    assert next_local(schedule, local(2026, 11, 23, 8, 0)) == local(2026, 11, 24, 0, 0)


def test_next_transition_looks_as_far_as_the_horizon() -> None:
    cluster = load(windows(win(days='"Sat"'), outside="1")).clusters[0]
    sunday = local(2026, 11, 29, 12, 0)
    assert cluster.next_transition("batch", sunday) == local(2026, 12, 5, 7, 0)
    assert cluster.next_transition("batch", sunday, timedelta(days=5)) is None
    edge = local(2026, 12, 5, 7, 0) - sunday
    assert cluster.next_transition("batch", sunday, edge) == local(2026, 12, 5, 7, 0)
    assert cluster.next_transition("batch", sunday, edge - timedelta(seconds=1)) is None
    always = load(pool("outside = 1\n")).clusters[0]
    assert always.next_transition("batch", sunday) is None


def daily(zone: str, start: str, end: str) -> ClusterSchedule:
    return dst_schedule(zone, start, end).clusters[0]


@pytest.mark.parametrize(
    ("zone", "start", "end", "after", "expected"),
    [
        # Amsterdam, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)),
        ("Europe/Amsterdam", "02:00", "04:00", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
        ("Europe/Amsterdam", "01:00", "02:30", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),
        ("Europe/Amsterdam", "03:00", "04:00", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
        # a window inside the gap never happens that day
        ("Europe/Amsterdam", "02:15", "02:45", utc(2026, 3, 29, 0, 0), utc(2026, 3, 30, 0, 15)),
        # Amsterdam, 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30)),
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0)),
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)),
        ("Europe/Amsterdam", "02:30", "04:00", utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 3, 0)),
        ("Europe/Amsterdam", "02:00", "04:00", utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 3, 0)),
        ("Europe/Amsterdam", "01:00", "02:30", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30)),
        ("Europe/Amsterdam", "01:00", "02:30", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0)),
        ("Europe/Amsterdam", "01:00", "02:30", utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)),
        # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC
        ("America/New_York", "02:00", "04:00", utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 7, 0)),
        ("America/New_York", "02:00", "04:00", utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)),
        # New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00 UTC
        ("America/New_York", "01:00", "02:00", utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 5, 0)),
        ("America/New_York", "01:00", "02:00", utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 7, 0)),
        ("America/New_York", "01:30", "03:00", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)),
        ("America/New_York", "01:30", "03:00", utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)),
    ],
)
def test_next_transition_across_dst(
    zone: str, start: str, end: str, after: datetime, expected: datetime
) -> None:
    assert daily(zone, start, end).next_transition("batch", after) == expected


def test_a_date_exception_starts_when_the_date_does_where_midnight_is_skipped() -> None:
    # Santiago, 2026-09-06: 00:00 -04 jumps to 01:00 -03 at 04:00 UTC; 00:xx never happens
    text = exception('dates = ["2026-09-06"]\npools = "*"\nstate = 5\n').replace(
        'cluster = "aks"', 'cluster = "aks"\ntimezone = "America/Santiago"'
    )
    cluster = load(text).clusters[0]
    assert cluster.next_transition("batch", utc(2026, 9, 5, 12)) == utc(2026, 9, 6, 4, 0)
    assert cluster.next_transition("batch", utc(2026, 9, 6, 4, 0)) == utc(2026, 9, 7, 3, 0)


# A property: next_transition agrees with a scan of every minute, for random schedules around
# DST changes. Every boundary in these zones falls on a whole UTC minute, so the scan is exact.

ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"]
SPAN = timedelta(days=2)
STATES: list[ScheduledState] = [ManualCount(1), ManualCount(2), Power("Stopped"), KEEP]


@functools.cache
def offset_changes(zone: str) -> tuple[datetime, ...]:
    """The instants in 2026 at which `zone`'s offset changes (whole minutes), or 1 July."""
    tz, found = ZoneInfo(zone), []
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    while instant.year == 2026:
        step = instant + timedelta(hours=1)
        if instant.astimezone(tz).utcoffset() != step.astimezone(tz).utcoffset():
            while instant.astimezone(tz).utcoffset() == step.astimezone(tz).utcoffset():
                instant += timedelta(minutes=1)
            found.append(instant + timedelta(minutes=1))
        instant = step
    return tuple(found) or (datetime(2026, 7, 1, tzinfo=UTC),)


minutes_of_day = st.one_of(
    st.sampled_from([0, 30, 60, 90, 120, 150, 180, 210, 240, 1380, 1410, 1439]),
    st.integers(0, MINUTES_PER_DAY - 1),
)
scheduled_state = st.sampled_from(STATES)


@st.composite
def day_rules(draw: st.DrawFn, month: int) -> DayRule:
    """A random rule by nth weekday, month day and month, near `month` (where the change is)."""
    weekdays = draw(st.frozensets(st.integers(0, 6), max_size=3))
    nth = draw(
        st.frozensets(st.tuples(st.integers(0, 6), st.sampled_from([1, 2, 4, 5, LAST])), max_size=3)
    )
    monthdays = draw(
        st.none()
        | st.frozensets(st.sampled_from([1, 2, 7, 8, 15, 28, 29, 30, 31, LAST]), min_size=1)
    )
    near = [(month + delta - 1) % 12 + 1 for delta in (-1, 0, 1)]
    months = draw(st.none() | st.frozensets(st.sampled_from(near), min_size=1))
    return DayRule(weekdays, nth, monthdays, months)


@st.composite
def windows_of_a_pool(draw: st.DrawFn, minutes: st.SearchStrategy[int], month: int = 1) -> Window:
    start = draw(minutes)
    end = draw(minutes.map(lambda m: m or MINUTES_PER_DAY).filter(lambda m: m != start))
    if draw(st.booleans()):
        days = draw(st.frozensets(st.integers(0, 6), min_size=1))
        return Window(days, "random", start, end, draw(scheduled_state))
    rule = draw(day_rules(month))
    return Window(
        rule.possible_weekdays, "random", start, end, draw(scheduled_state), calendar=rule
    )


@st.composite
def around_a_dst_change(draw: st.DrawFn) -> tuple[ClusterSchedule, datetime]:
    """A random schedule for pool "batch" and an instant within a day and a half of one of its
    zone's offset changes; its exceptions fall on nearby dates and instants."""
    zone = draw(st.sampled_from(ZONES))
    change = draw(st.sampled_from(offset_changes(zone)))
    seconds = draw(
        st.integers(-36 * 3600, 36 * 3600) | st.integers(-36 * 60, 36 * 60).map(lambda m: m * 60)
    )
    after = change + timedelta(seconds=seconds)
    day = change.astimezone(ZoneInfo(zone)).date()
    # wall-clock times around the jump: just before it, where it lands, and either side of those
    walls = [change - timedelta(minutes=1), change]
    jump = sorted(
        {
            (w.hour * 60 + w.minute + delta) % MINUTES_PER_DAY
            for w in (i.astimezone(ZoneInfo(zone)) for i in walls)
            for delta in (-30, 0, 1, 15, 30, 45, 60)
        }
    )
    minutes = st.sampled_from(jump) | minutes_of_day
    near_day = st.integers(-3, 3).map(lambda n: day + timedelta(days=n))
    near_minute = st.integers(-3 * 1440, 3 * 1440).map(lambda n: change + timedelta(minutes=n))
    covers = st.sampled_from([None, frozenset({"batch"}), frozenset({"web"})])
    rule = st.one_of(
        st.builds(
            ExceptionRule,
            covers,
            scheduled_state,
            dates=st.frozensets(near_day, min_size=1, max_size=2),
        ),
        st.builds(
            ExceptionRule,
            covers,
            scheduled_state,
            date_range=st.tuples(near_day, st.integers(0, 2)).map(
                lambda t: (t[0], t[0] + timedelta(days=t[1]))
            ),
        ),
        st.builds(
            ExceptionRule, covers, scheduled_state, until=near_minute, until_text=st.just("u")
        ),
        st.builds(ExceptionRule, covers, scheduled_state, days=day_rules(day.month)),
        st.builds(ExceptionRule, covers, scheduled_state, on_holidays=st.just(True)),
    )
    batch = PoolSchedule(
        "batch",
        tuple(draw(st.lists(windows_of_a_pool(minutes, day.month), max_size=3))),
        draw(st.none() | scheduled_state),
    )
    # Holidays near the changes: Easter (NL, around the spring change), Reformation Day
    # (Chile), Thanksgiving (US), Anzac Day (Australia)...
    holidays = tuple(
        HolidayCalendar(country)
        for country in draw(st.sampled_from([(), ("NL",), ("US", "CL", "AU")]))
    )
    cluster = ClusterSchedule(
        ScheduleTarget("rg", "aks"),
        zone,
        (batch,),
        tuple(draw(st.lists(rule, max_size=2))),
        holidays=holidays,
    )
    return cluster, after.astimezone(draw(st.sampled_from([UTC, ZoneInfo(zone)])))


def scan(cluster: ClusterSchedule, after: datetime, span: timedelta) -> datetime | None:
    """The first whole UTC minute after `after` whose state differs, trying every one."""
    current = cluster.decide(after, "batch").state
    after = after.astimezone(UTC)  # so that + span is elapsed time, not wall-clock time
    instant = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while instant <= after + span:
        if cluster.decide(instant, "batch").state != current:
            return instant
        instant += timedelta(minutes=1)
    return None


@settings(max_examples=150, deadline=None)
@given(around_a_dst_change())
def test_next_transition_agrees_with_a_minute_by_minute_scan(
    case: tuple[ClusterSchedule, datetime],
) -> None:
    cluster, after = case
    assert cluster.next_transition("batch", after, SPAN) == scan(cluster, after, SPAN)
