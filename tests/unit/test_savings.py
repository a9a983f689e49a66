"""Savings (scaler/domain/savings.py): weeks computed by hand, with the arithmetic written out,
equal the report; DST weeks count real elapsed hours; price tables; baselines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from scaler.domain.errors import InvalidInput
from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.domain.savings import (
    Baseline,
    PriceTable,
    SavingsOptions,
    cluster_savings,
    largest_window,
    parse_baseline,
    parse_price_table,
    state_nodes,
    week_from,
    week_of,
)
from scaler.domain.schedule import ClusterSchedule
from scaler.domain.schedule_file import load_schedule

SCHEDULE = """
timezone = "Europe/Amsterdam"

[states]
office = { min = 3, max = 20 }

[[clusters]]
resource_group = "rg"
cluster = "aks"

[clusters.pools.batch]
outside = { power = "Stopped" }
windows = [{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 }]

[clusters.pools.web]
outside = { min = 1, max = 5 }
windows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = "office" }]

# stopped every Saturday night, across midnight (and across the DST change on Sundays)
[clusters.pools.night]
outside = 4
windows = [{ days = "Sat", start = "22:00", end = "06:00", state = 0 }]

[[clusters.exceptions]]
dates = ["2026-10-21"]
pools = ["batch"]
state = "keep"
"""


def cluster() -> ClusterSchedule:
    schedule = load_schedule(SCHEDULE, "savings.toml", 1000, now=datetime(2026, 10, 1, tzinfo=UTC))
    (only,) = schedule.clusters
    return only


def saved(day: date, options: SavingsOptions | None = None) -> dict[str, tuple[object, ...]]:
    """pool → (baseline nodes, hours, baseline node-hours, scheduled, saved) for the week."""
    start, end = week_from(cluster(), day)
    report = cluster_savings(cluster(), start, end, options or SavingsOptions())
    return {
        p.pool: (
            p.baseline.nodes if p.baseline else None,
            p.hours,
            p.baseline_node_hours,
            p.scheduled_node_hours,
            p.saved_node_hours,
        )
        for p in report.pools
    }


def test_the_autumn_dst_week_has_169_hours_and_equals_the_hand_count() -> None:
    # Mon 2026-10-19 00:00 CEST to Mon 2026-10-26 00:00 CET: on Sun 25 the clock goes from
    # 03:00 back to 02:00, so the week lasts 7 × 24 + 1 = 169 hours.
    assert saved(date(2026, 10, 19)) == {
        # batch: baseline 6 (its only window). Mon, Tue, Thu, Fri: 4 × 12 h × 6 = 288; Wed 21
        # is "keep" (= the baseline) all day: 24 h × 6 = 144; stopped otherwise: 0.
        # scheduled 288 + 144 = 432; baseline 6 × 169 = 1014; saved 1014 − 432 = 582.
        "batch": (6, 169, 1014, 432, 582),
        # web: baseline 3 (office, autoscale 3-20 at min). Windows 5 × 10 h × 3 = 150;
        # outside: 169 − 50 = 119 h × 1 (min) = 119. scheduled 269; baseline 3 × 169 = 507;
        # saved 238.
        "web": (3, 169, 507, 269, 238),
        # night: its window asks 0 nodes, so the baseline is outside's 4. Sat 24 22:00 CEST
        # (20:00 UTC) to Sun 25 06:00 CET (05:00 UTC) is 9 real hours at 0 nodes.
        # scheduled 4 × (169 − 9) = 640; baseline 4 × 169 = 676; saved 36.
        "night": (4, 169, 676, 640, 36),
    }


def test_the_spring_dst_week_has_167_hours_and_equals_the_hand_count() -> None:
    # Mon 2027-03-22 00:00 CET to Mon 2027-03-29 00:00 CEST: on Sun 28 the clock jumps from
    # 02:00 to 03:00, so 7 × 24 − 1 = 167 hours. The dated exception is long past.
    assert saved(date(2027, 3, 22)) == {
        # batch: 5 × 12 × 6 = 360; baseline 6 × 167 = 1002; saved 642.
        "batch": (6, 167, 1002, 360, 642),
        # web: 5 × 10 × 3 = 150 + (167 − 50) × 1 = 117 → 267; baseline 3 × 167 = 501; saved 234.
        "web": (3, 167, 501, 267, 234),
        # night: Sat 27 22:00 CET (21:00 UTC) to Sun 28 06:00 CEST (04:00 UTC): 7 real hours.
        # scheduled 4 × (167 − 7) = 640; baseline 4 × 167 = 668; saved 28.
        "night": (4, 167, 668, 640, 28),
    }


def test_an_ordinary_week_has_168_hours() -> None:
    # Mon 2026-11-23: web 150 + (168 − 50) × 1 = 268; baseline 504; saved 236.
    # night: Sat 22:00 to Sun 06:00, 8 h at 0: 4 × 160 = 640; baseline 672; saved 32.
    assert saved(date(2026, 11, 23)) == {
        "batch": (6, 168, 1008, 360, 648),
        "web": (3, 168, 504, 268, 236),
        "night": (4, 168, 672, 640, 32),
    }


def test_the_report_equals_a_minute_by_minute_count_of_the_apps_decisions() -> None:
    """Independent of next_transition: decide() at every minute of the DST week."""
    schedule = cluster()
    start, end = week_from(schedule, date(2026, 10, 19))
    report = cluster_savings(schedule, start, end, SavingsOptions())
    for pool in report.pools:
        assert pool.baseline is not None
        node_minutes = Fraction(0)
        moment, minutes = start, 0
        while moment < end:
            nodes = state_nodes(schedule.decide(moment, pool.pool).state)
            node_minutes += pool.baseline.nodes if nodes is None else nodes
            moment += timedelta(minutes=1)
            minutes += 1
        assert minutes == 169 * 60
        assert pool.scheduled_node_hours == node_minutes / 60


@pytest.mark.parametrize(
    ("autoscale", "expected"),
    [
        # max: window 20 × 50 = 1000, outside 5 × 118 = 590 → 1590; baseline 20 × 168 = 3360.
        ("max", (20, 168, 3360, 1590, 1770)),
        # mid: window 11.5 × 50 = 575, outside 3 × 118 = 354 → 929; baseline 11.5 × 168 = 1932.
        ("mid", (Fraction(23, 2), 168, 1932, 929, 1003)),
    ],
)
def test_autoscale_can_count_max_or_the_middle(autoscale: str, expected: tuple[object]) -> None:
    options = SavingsOptions(autoscale=autoscale)  # type: ignore[arg-type]
    assert saved(date(2026, 11, 23), options)["web"] == expected


def test_a_named_baseline_replaces_the_largest_window() -> None:
    states = {"office": Autoscale(3, 20), "night": Power("Stopped"), "big": ManualCount(10)}
    assert parse_baseline("8", states) == Baseline(Fraction(8), "--baseline 8")
    assert parse_baseline("2.5", states).nodes == Fraction(5, 2)
    assert parse_baseline("office", states) == Baseline(
        Fraction(3), "--baseline office (autoscale 3-20 at min)"
    )
    assert parse_baseline("office", states, "max").nodes == 20
    options = SavingsOptions(
        baselines={"*": parse_baseline("big", states), "web": Baseline(2, "x")}
    )
    found = saved(date(2026, 11, 23), options)
    # batch against 10 all week: 10 × 168 = 1680; the schedule asks 5 × 12 h × 6 = 360 →
    # saved 1320.
    assert found["batch"] == (10, 168, 1680, 360, 1320)
    # web at 2 (its own): outside 118 × 1 + windows 50 × 3 = 268; baseline 336: saved 68.
    assert found["web"] == (2, 168, 336, 268, 68)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "--baseline: must not be negative, got -1"),
        ("huge", "--baseline: 'huge' is neither a node count nor a named state of the file "
         "([states]: office, night)"),
        ("night", "--baseline: the state 'night' (stopped) runs no nodes of its own"),
    ],
)  # fmt: skip
def test_a_baseline_that_cannot_be_is_refused(text: str, message: str) -> None:
    states = {"office": Autoscale(3, 20), "night": Power("Stopped")}
    with pytest.raises(InvalidInput) as refused:
        parse_baseline(text, states)
    assert str(refused.value) == message


def test_a_pool_without_a_count_anywhere_has_no_baseline_unless_given() -> None:
    schedule = load_schedule(
        'timezone = "UTC"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
        '[clusters.pools.gpu]\noutside = { power = "Stopped" }\n'
        'windows = [{ days = "Mon-Fri", start = "09:00", end = "17:00", '
        'state = { power = "Running" } }]\n',
        "gpu.toml",
        1000,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    ).clusters[0]
    assert largest_window(schedule, "gpu") is None
    start, end = week_from(schedule, date(2026, 11, 23))
    (gpu,) = cluster_savings(schedule, start, end, SavingsOptions()).pools
    assert gpu.baseline is None and gpu.saved_node_hours is None
    # Running counts as the baseline: 2 nodes × 5 × 8 h = 80 of 2 × 168 = 336; saved 256.
    fallback = {"gpu": Baseline(Fraction(2), "its size now (ARM)")}
    (gpu,) = cluster_savings(schedule, start, end, SavingsOptions(), None, fallback).pools
    assert (gpu.scheduled_node_hours, gpu.saved_node_hours) == (80, 256)


def test_prices_turn_node_hours_into_money() -> None:
    table = parse_price_table(
        '{"Standard_D8ds_v5": 0.452, "standard_d4ds_v5": 0.226, "currency": "EUR"}', "p.json"
    )
    assert table == PriceTable(
        {"Standard_D8ds_v5": 0.452, "standard_d4ds_v5": 0.226}, "EUR", "p.json"
    )
    options = SavingsOptions(
        prices=table,
        vm_sizes={"batch": "Standard_D8ds_v5", "rg/aks/web": "Standard_D4ds_v5"},
        pool_prices={"night": 0.1},
    )
    start, end = week_from(cluster(), date(2026, 10, 19))
    report = cluster_savings(cluster(), start, end, options)
    money = {p.pool: (p.price, p.saved_money) for p in report.pools}
    # batch 582 × 0.452 = 263.064; web 238 × 0.226 = 53.788; night 36 × 0.1 = 3.6
    assert money["batch"] == (0.452, pytest.approx(263.064))
    assert money["web"] == (0.226, pytest.approx(53.788))
    assert money["night"] == (0.1, pytest.approx(3.6))
    # 263.064 + 53.788 + 3.6 = 320.452
    assert report.total.saved_money == pytest.approx(320.452)
    assert report.total.to_json() == {
        "baseline_node_hours": 1014 + 507 + 676,
        "scheduled_node_hours": 432 + 269 + 640,
        "saved_node_hours": 582 + 238 + 36,
        "saved_money": 320.452,
        "counted_pools": 3,
        "priced_pools": 3,
    }


def test_a_toml_price_table_and_its_refusals() -> None:
    table = parse_price_table('currency = "USD"\nStandard_D8ds_v5 = 0.452\n', "prices.toml")
    assert table.price("STANDARD_D8DS_V5") == 0.452 and table.currency == "USD"
    assert table.price("Standard_E4s_v5") is None and table.price("") is None
    for text, name, message in (
        ('{"Standard_D8ds_v5": "cheap"}', "p.json",
         "p.json: Standard_D8ds_v5: must be a price per hour (a number), got the string 'cheap'"),
        ('{"Standard_D8ds_v5": -1}', "p.json",
         "p.json: Standard_D8ds_v5: must be a price per hour of 0 or more, got -1"),
        ("[1, 2]", "p.json", "p.json: expected a table of VM size = price per hour, got a list"),
        ("not = [toml", "p.toml", "p.toml: neither JSON nor TOML"),
        ("{", "p.json", "p.json: not valid JSON"),
    ):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            parse_price_table(text, name)
        assert str(refused.value).startswith(message)


def test_the_week_is_local_days_from_a_day_or_from_monday() -> None:
    schedule = cluster()
    friday = datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
    start, end = week_of(schedule, friday, monday=True)
    assert (start, end) == (
        datetime(2026, 10, 18, 22, 0, tzinfo=UTC),  # Mon 19 00:00 CEST
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),  # Mon 26 00:00 CET
    )
    start, _ = week_of(schedule, friday, monday=False)
    assert start == datetime(2026, 10, 22, 22, 0, tzinfo=UTC)  # Fri 23 00:00 CEST
