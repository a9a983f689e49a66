"""Schedules by calendar: public holidays, nth weekdays, month days and months, named states and
profiles, evaluated in the cluster's zone (DST included) and seen by `next_transition`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.domain.schedule import KEEP, ClusterSchedule, ScheduleTarget
from tests.unit.schedule_helpers import (
    AMSTERDAM,
    HEAD,
    STATES,
    exception,
    load,
    local,
    pool,
    state_of,
    utc,
    win,
    windows,
    with_holidays,
    with_states,
    zoned,
)

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")

# --- public holidays -------------------------------------------------------------------------------

ON_HOLIDAYS = 'on = "holidays"\npools = "*"\nstate = { power = "Stopped" }\n'


def holiday_schedule(holidays: str, zone: str = "Europe/Amsterdam") -> ClusterSchedule:
    text = exception(ON_HOLIDAYS)  # batch: 1 node, stopped on a public holiday
    return load(zoned(with_holidays(text, holidays), zone)).clusters[0]


@pytest.mark.parametrize(
    ("holidays", "zone", "instant", "reason"),
    [
        # the Netherlands over the year boundary: Christmas, New Year, Easter Monday 2027
        ('{ country = "NL" }', "Europe/Amsterdam", local(2026, 12, 25, 0, 0), "2026-12-25 Christmas Day"),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2026, 12, 26, 23, 59), "2026-12-26 Second Day of Christmas"),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2026, 12, 27, 0, 0), None),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2026, 12, 31, 23, 59), None),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2027, 1, 1, 0, 0), "2027-01-01 New Year's Day"),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2027, 3, 29, 12, 0), "2027-03-29 Easter Monday"),
        ('{ country = "NL" }', "Europe/Amsterdam", local(2027, 3, 30, 0, 0), None),
        # the local day counts, not the UTC one: 23:30 UTC on the 28th is already Easter Monday
        ('{ country = "NL" }', "Europe/Amsterdam", utc(2027, 3, 28, 22, 30), "2027-03-29 Easter Monday"),
        # Great Britain, 2027: Christmas on a Saturday, Boxing Day on a Sunday, both observed after
        ('{ country = "GB" }', "Europe/London", local(2027, 12, 25, 9, 0, zone=LONDON), "2027-12-25 Christmas Day"),
        ('{ country = "GB" }', "Europe/London", local(2027, 12, 27, 9, 0, zone=LONDON), "2027-12-27 Christmas Day (observed)"),
        ('{ country = "GB" }', "Europe/London", local(2027, 12, 28, 9, 0, zone=LONDON), "2027-12-28 Boxing Day (observed)"),
        ('{ country = "GB" }', "Europe/London", local(2027, 12, 29, 9, 0, zone=LONDON), None),
        # California's own holiday, in Los Angeles time: Cesar Chavez Day, 31 March 2026
        ('{ country = "US", subdiv = "CA" }', "America/Los_Angeles", utc(2026, 3, 31, 6, 59), None),
        ('{ country = "US", subdiv = "CA" }', "America/Los_Angeles", utc(2026, 3, 31, 7, 0), "2026-03-31 Cesar Chavez Day"),
        ('{ country = "US", subdiv = "CA" }', "America/Los_Angeles", utc(2026, 4, 1, 6, 59), "2026-03-31 Cesar Chavez Day"),
        ('{ country = "US", subdiv = "CA" }', "America/Los_Angeles", utc(2026, 4, 1, 7, 0), None),
        ('{ country = "US", subdiv = "NY" }', "America/Los_Angeles", utc(2026, 3, 31, 12, 0), None),
        # the US over the year boundary, observed on the Friday before a Saturday New Year
        ('{ country = "US" }', "America/Los_Angeles", local(2027, 12, 31, 12, 0, zone=LOS_ANGELES), "2027-12-31 New Year's Day (observed)"),
        ('{ country = "US" }', "America/Los_Angeles", local(2028, 1, 1, 12, 0, zone=LOS_ANGELES), "2028-01-01 New Year's Day"),
        # several calendars: a day off in either
        ('[{ country = "NL" }, { country = "GB" }]', "Europe/Amsterdam", local(2027, 4, 27, 12, 0), "2027-04-27 King's Day"),
        ('[{ country = "NL" }, { country = "GB" }]', "Europe/Amsterdam", local(2027, 5, 3, 12, 0), "2027-05-03 May Day"),
    ],
)  # fmt: skip
def test_public_holidays_are_the_clusters_local_days(
    holidays: str, zone: str, instant: datetime, reason: str | None
) -> None:
    decision = holiday_schedule(holidays, zone).decide(instant, "batch")
    if reason is None:
        assert (decision.state, decision.reason) == (ManualCount(1), "outside windows")
    else:
        assert (decision.state, decision.reason) == (Power("Stopped"), f"holiday {reason}")


def test_top_level_holidays_apply_unless_a_cluster_has_its_own() -> None:
    text = exception(ON_HOLIDAYS).replace(
        'timezone = "Europe/Amsterdam"\n',
        'timezone = "Europe/Amsterdam"\nholidays = { country = "NL" }\n',
    )
    schedule = load(text + text[text.index("[[clusters]]") :].replace('"aks"', '"aks2"'))
    assert schedule.clusters[0].holiday(date(2027, 4, 27)) == "King's Day"
    gb = load(with_holidays(text, '{ country = "GB" }')).clusters[0]
    assert gb.holiday(date(2027, 4, 27)) is None
    assert gb.holiday(date(2027, 5, 3)) == "May Day"


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (local(2026, 12, 31, 12, 0), local(2027, 1, 1, 0, 0)),  # into New Year's Day
        (local(2027, 1, 1, 0, 0), local(2027, 1, 2, 0, 0)),  # and out of it
        (local(2027, 1, 2, 0, 0), local(2027, 3, 26, 0, 0)),  # Good Friday, months ahead
        (local(2027, 3, 27, 12, 0), local(2027, 3, 28, 0, 0)),  # Easter Sunday
        (local(2027, 3, 28, 12, 0), local(2027, 3, 30, 0, 0)),  # through Easter Monday
    ],
)
def test_next_transition_finds_holidays_months_ahead(after: datetime, expected: datetime) -> None:
    cluster = holiday_schedule('{ country = "NL" }')
    assert cluster.next_transition("batch", after) == expected


# --- nth weekdays, month days and months ------------------------------------------------------------


def rule_state(window: str, instant: datetime, zone: str = "Europe/Amsterdam") -> object:
    return state_of(load(zoned(windows(window, outside="1"), zone)), instant)


SIX, ONE = ManualCount(6), ManualCount(1)


@pytest.mark.parametrize(
    ("window", "instant", "expected"),
    [
        # the first Monday of the month
        (win(days='"Mon#1"'), local(2026, 12, 7, 8, 0), SIX),
        (win(days='"Mon#1"'), local(2026, 12, 14, 8, 0), ONE),
        (win(days='"Mon#1"'), local(2026, 11, 30, 8, 0), ONE),  # the fifth of November
        (win(days='"Mon#1"'), local(2027, 2, 1, 8, 0), SIX),
        (win(days='"Mon#5"'), local(2026, 11, 30, 8, 0), SIX),
        (win(days='"Mon#5"'), local(2026, 12, 28, 8, 0), ONE),  # December has four
        # the last Friday, also when it is the last day of the month
        (win(days='"Fri#L"'), local(2026, 11, 27, 8, 0), SIX),
        (win(days='"Fri#L"'), local(2026, 11, 20, 8, 0), ONE),
        (win(days='"Fri#L"'), local(2026, 7, 31, 8, 0), SIX),
        (win(days='"Fri#L"'), local(2026, 7, 24, 8, 0), ONE),
        (win(days='"Mon#1,Fri#L"'), local(2026, 7, 6, 8, 0), SIX),
        (win(days='"Sat,Fri#L"'), local(2026, 7, 4, 8, 0), SIX),
        # the last day of the month, in a leap year and not
        (win(days="", monthdays='"L"'), local(2028, 2, 28, 8, 0), ONE),
        (win(days="", monthdays='"L"'), local(2028, 2, 29, 8, 0), SIX),
        (win(days="", monthdays='"L"'), local(2027, 2, 28, 8, 0), SIX),
        (win(days="", monthdays='"L"'), local(2026, 4, 30, 8, 0), SIX),
        (win(days="", monthdays='"L"'), local(2026, 5, 30, 8, 0), ONE),
        (win(days="", monthdays='"1-7"'), local(2026, 5, 7, 8, 0), SIX),
        (win(days="", monthdays='"1-7"'), local(2026, 5, 8, 8, 0), ONE),
        (win(days="", monthdays="15"), local(2026, 5, 15, 8, 0), SIX),
        (win(days="", monthdays='"25-L"'), local(2026, 5, 31, 8, 0), SIX),
        # weekdays and month days together: the weekdays among the first seven days
        (win(monthdays='"1-7"'), local(2026, 11, 2, 8, 0), SIX),
        (win(monthdays='"1-7"'), local(2026, 11, 1, 8, 0), ONE),  # a Sunday
        # months
        (win(months='"Dec"'), local(2026, 12, 1, 8, 0), SIX),
        (win(months='"Dec"'), local(2026, 11, 30, 8, 0), ONE),
        (win(months='"Jun-Aug"'), local(2026, 8, 31, 8, 0), SIX),
        (win(months='"Jun-Aug"'), local(2026, 9, 1, 8, 0), ONE),
        (win(months='"Nov-Feb"'), local(2027, 1, 4, 8, 0), SIX),
        (win(months='"Nov-Feb"'), local(2027, 3, 1, 8, 0), ONE),
        (win(days='"Fri#L"', months='"Dec"'), local(2026, 12, 25, 8, 0), SIX),
        (win(days='"Fri#L"', months='"Dec"'), local(2026, 11, 27, 8, 0), ONE),
    ],
)
def test_day_rules(window: str, instant: datetime, expected: object) -> None:
    assert rule_state(window, instant) == expected


NIGHT = win(days='"Fri#L"', start='"22:00"', end='"06:00"')


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # 31 July 2026 is the last Friday of July: its window runs into Saturday 1 August
        (local(2026, 7, 31, 21, 59), ONE),
        (local(2026, 7, 31, 22, 0), SIX),
        (local(2026, 8, 1, 0, 0), SIX),
        (local(2026, 8, 1, 5, 59), SIX),
        (local(2026, 8, 1, 6, 0), ONE),
        (local(2026, 8, 1, 22, 0), ONE),
        # the Saturday after another Friday is not in it, nor the night before the last Friday
        (local(2026, 7, 25, 1, 0), ONE),
        (local(2026, 7, 31, 1, 0), ONE),
        # 30 October 2026, the last Friday of October
        (local(2026, 10, 31, 3, 0), SIX),
        (local(2026, 11, 1, 3, 0), ONE),
    ],
)
def test_a_window_across_midnight_belongs_to_the_day_it_starts(
    instant: datetime, expected: object
) -> None:
    assert rule_state(NIGHT, instant) == expected


def test_a_month_day_window_across_midnight_runs_into_the_next_month() -> None:
    window = win(days="", monthdays='"L"', start='"20:00"', end='"08:00"')
    assert rule_state(window, local(2027, 2, 28, 23, 0)) == SIX
    assert rule_state(window, local(2027, 3, 1, 7, 59)) == SIX
    assert rule_state(window, local(2027, 3, 1, 8, 0)) == ONE
    assert rule_state(window, local(2027, 3, 31, 7, 0)) == ONE  # not the morning of the last day


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # the last Sunday of March 2026 is the day Amsterdam springs forward: 02:xx is skipped
        (utc(2026, 3, 29, 0, 59), ONE),  # 01:59 CET
        (utc(2026, 3, 29, 1, 0), SIX),  # 03:00 CEST
        (utc(2026, 3, 29, 2, 0), ONE),  # 04:00 CEST
        (utc(2026, 3, 22, 1, 30), ONE),  # the Sunday before
        # the last Sunday of October 2026: 02:xx happens twice
        (utc(2026, 10, 25, 0, 0), SIX),  # 02:00 CEST
        (utc(2026, 10, 25, 1, 30), SIX),  # 02:30 CET
        (utc(2026, 10, 25, 3, 0), ONE),  # 04:00 CET
    ],
)
def test_nth_weekdays_across_dst(instant: datetime, expected: object) -> None:
    window = win(days='"Sun#L"', start='"02:00"', end='"04:00"')
    assert rule_state(window, instant) == expected


@pytest.mark.parametrize(
    ("window", "after", "expected"),
    [
        # a month or more ahead: beyond a fortnight
        (win(days='"Mon#1"'), local(2026, 12, 7, 19, 0), local(2027, 1, 4, 7, 0)),
        (win(days='"Fri#L"'), local(2026, 7, 31, 19, 0), local(2026, 8, 28, 7, 0)),
        (win(days="", monthdays='"L"'), local(2027, 1, 31, 19, 0), local(2027, 2, 28, 7, 0)),
        (win(months='"Jun-Aug"'), local(2026, 8, 31, 19, 0), local(2027, 6, 1, 7, 0)),
        (NIGHT, local(2026, 7, 31, 23, 0), local(2026, 8, 1, 6, 0)),
        # the last Sunday of March: the window starts when the clock jumps past 02:00
        (
            win(days='"Sun#L"', start='"02:00"', end='"04:00"'),
            local(2026, 3, 1, 12, 0),
            utc(2026, 3, 29, 1, 0),
        ),
    ],
)
def test_next_transition_of_day_rules(window: str, after: datetime, expected: datetime) -> None:
    cluster = load(windows(window, outside="1")).clusters[0]
    assert cluster.next_transition("batch", after) == expected


@pytest.mark.parametrize(
    ("rule", "instant", "reason"),
    [
        ('days = "Fri#L"', local(2026, 7, 31, 0, 0), "exception Fri#L"),
        ('monthdays = "L"\nmonths = "Dec"', local(2026, 12, 31, 0, 0), "exception monthdays L in Dec"),
        ('days = "Mon-Fri"\nmonthdays = "1-7"', local(2026, 12, 1, 0, 0), "exception Mon-Fri monthdays 1-7"),
    ],
)  # fmt: skip
def test_recurring_exceptions_cover_whole_local_days(
    rule: str, instant: datetime, reason: str
) -> None:
    cluster = load(exception(f'{rule}\npools = "*"\nstate = 0\n')).clusters[0]
    decision = cluster.decide(instant, "batch")
    assert (decision.state, decision.reason) == (ManualCount(0), reason)
    assert cluster.decide(instant - timedelta(minutes=1), "batch").state == ManualCount(1)
    end = cluster.next_transition("batch", instant)
    assert end is not None and end.astimezone(AMSTERDAM).hour == 0


def test_a_recurring_exception_never_lapses() -> None:
    schedule = load(exception('days = "Fri#L"\npools = "*"\nstate = 0\n'), now=utc(2030, 1, 1))
    assert schedule.warnings == ()


# --- named states ---------------------------------------------------------------------------------------

NAMED = with_states(pool(
    'outside = "night"\nwindows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = "office" }]\n'
) + '[[clusters.exceptions]]\ndates = ["2026-12-24"]\npools = "*"\nstate = "night"\n')  # fmt: skip


@pytest.mark.parametrize(
    ("instant", "state", "name", "reason"),
    [
        (local(2026, 11, 23, 9, 0), Autoscale(3, 20), "office", "window Mon-Fri 08:00-18:00"),
        (local(2026, 11, 23, 19, 0), Power("Stopped"), "night", "outside windows"),
        (local(2026, 12, 24, 9, 0), Power("Stopped"), "night", "exception 2026-12-24"),
    ],
)
def test_named_states_are_their_forms_and_keep_their_names(
    instant: datetime, state: object, name: str, reason: str
) -> None:
    schedule = load(NAMED)
    decision = schedule.clusters[0].decide(instant, "batch")
    assert (decision.state, decision.state_name, decision.reason) == (state, name, reason)
    assert schedule.states == (("office", Autoscale(3, 20)), ("night", Power("Stopped")))


def test_a_named_state_is_the_same_state_as_its_form() -> None:
    # naming a state changes nothing about transitions: 08:00 office, and at 18:00 3-20 again
    text = with_states(pool(
        'outside = { min = 3, max = 20 }\nwindows = [{ days = "daily", start = "08:00", end = "18:00", state = "office" }]\n'
    ))  # fmt: skip
    cluster = load(text).clusters[0]
    assert cluster.next_transition("batch", local(2026, 11, 23, 7, 0)) is None


# --- profiles ------------------------------------------------------------------------------------------

PROFILES = (
    'timezone = "Europe/Amsterdam"\n'
    + STATES
    + '[profiles.office-hours]\noutside = "night"\nwindows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = "office" }]\n'
    + "[profiles.always-two]\noutside = 2\nenforce = false\n"
    + HEAD.removeprefix('timezone = "Europe/Amsterdam"\n')
    + 'timezone = "America/New_York"\nenforce = false\n'
    + "[clusters.pools.web]\noutside = 5\n"
    + '[[clusters.exceptions]]\ndates = ["2026-12-24"]\npools = "*"\nstate = "keep"\n'
)  # fmt: skip
NEW_YORK = ZoneInfo("America/New_York")


def test_a_profile_is_a_pool_block_defined_once() -> None:
    schedule = load(PROFILES)
    office = schedule.profile("office-hours")
    assert office is not None and office.name == "office-hours"
    assert office.outside == Power("Stopped") and office.outside_name == "night"
    assert [w.describe() for w in office.windows] == ["Mon-Fri 08:00-18:00"]
    assert schedule.profile("Office-Hours") is None and schedule.profile("nope") is None


def test_a_tagged_pool_follows_its_profile_in_the_clusters_zone() -> None:
    schedule = load(PROFILES)
    cluster = schedule.for_tagged_pool("rg/aks", "api", "office-hours")
    assert cluster is not None and cluster.timezone == "America/New_York"
    assert cluster.pool_names == ("web", "api")
    assert cluster.profile_of("api") == "office-hours" and cluster.profile_of("web") is None
    at_nine = cluster.decide(datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK), "api")
    assert (at_nine.state, at_nine.state_name) == (Autoscale(3, 20), "office")
    assert at_nine.reason == "window Mon-Fri 08:00-18:00 (profile office-hours)"
    # 09:00 in Amsterdam is 03:00 in New York: night
    assert cluster.decide(local(2026, 11, 23, 9, 0), "api").state == Power("Stopped")
    # the cluster's exceptions cover it ("*"): left alone on the 24th
    assert cluster.decide(datetime(2026, 12, 24, 9, 0, tzinfo=NEW_YORK), "api").state == KEEP
    after = datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK)
    assert cluster.next_transition("api", after) == datetime(2026, 11, 23, 18, 0, tzinfo=NEW_YORK)
    # enforce: the profile's own, else the cluster's
    assert cluster.enforces("api") is False
    assert schedule.for_tagged_pools(
        schedule.clusters[0],
        ScheduleTarget("rg", "aks"),
        {"api": "office-hours", "db": "always-two"},
    ) == cluster.with_profile("db", schedule.profile("always-two"))  # type: ignore[arg-type]


def test_an_explicit_entry_in_the_file_wins_over_the_tag() -> None:
    schedule = load(PROFILES)
    found = schedule.clusters[0]
    office = schedule.profile("office-hours")
    assert office is not None
    assert found.with_profile("web", office) is found
    cluster = schedule.for_tagged_pool("rg/aks", "web", "office-hours")
    assert cluster is found
    assert cluster.decide(local(2026, 11, 23, 15, 0), "web").state == ManualCount(5)


def test_a_tag_naming_no_profile_changes_nothing() -> None:
    schedule = load(PROFILES)
    found = schedule.clusters[0]
    assert schedule.for_tagged_pools(found, found.target, {"api": "nope"}) is found
    assert schedule.for_tagged_pools(None, ScheduleTarget("rg", "other"), {"api": "nope"}) is None


def test_a_profile_in_a_cluster_the_file_does_not_list_uses_the_top_level_zone() -> None:
    schedule = load(
        with_holidays(PROFILES, '{ country = "US" }').replace(
            'timezone = "Europe/Amsterdam"\n',
            'timezone = "Europe/Amsterdam"\nholidays = { country = "NL" }\n',
            1,
        )
    )
    target = ScheduleTarget("rg", "other", "11111111-2222-3333-4444-555555555555")
    cluster = schedule.for_tagged_pools(None, target, {"api": "office-hours"})
    assert cluster is not None and cluster.target == target
    assert cluster.timezone == "Europe/Amsterdam" and cluster.exceptions == ()
    assert [h.country for h in cluster.holidays] == ["NL"]
    assert cluster.enforces("api") is True  # the file's default
    assert cluster.decide(local(2026, 11, 23, 9, 0), "api").state == Autoscale(3, 20)
    assert cluster.decide(local(2026, 12, 24, 9, 0), "api").state == Autoscale(3, 20)
    assert schedule.for_tagged_pool("rg/other", "api", "office-hours") is not None
