"""Timestamps and durations are bounded, so no arithmetic on them can overflow; -0 is a count."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.domain.errors import InvalidInput
from scaler.domain.intents import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    LONGEST_DURATION,
    IntentDefaults,
    _duration,
    parse_intent,
)
from scaler.domain.pools import Autoscale, ManualCount

SUB = "00000000-0000-0000-0000-000000000000"
DEFAULTS = IntentDefaults(SUB, "rg-demo", "aks-demo", max_count=100)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def parse(document: dict[str, object]):
    return parse_intent(json.dumps(document), DEFAULTS, NOW)


def test_the_window_is_inside_what_table_storage_and_datetime_can_hold() -> None:
    assert EARLIEST_TIMESTAMP.year >= 1601 and LATEST_TIMESTAMP.year <= 9999 - 100
    latest_end = LATEST_TIMESTAMP + LONGEST_DURATION
    assert latest_end.year < 9999


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        # The three the probe found (issue 13, item 1): each raised OverflowError.
        (
            {"issued_at": "9999-12-31T23:00:00Z", "hold": "PT2H"},
            "issued_at: '9999-12-31T23:00:00Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        ({"hold": "P9999999999D"}, "hold: a hold lasts at most 31 days"),
        (
            {"issued_at": "0001-01-01T00:30:00+01:00"},
            "issued_at: '0001-01-01T00:30:00+01:00' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        # The same for every other timestamp and at the window's edges.
        (
            {"expires_at": "9999-12-31T23:59:59-01:00"},
            "expires_at: '9999-12-31T23:59:59-01:00' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"hold_until": "9999-12-31T23:59:59Z"},
            "hold_until: '9999-12-31T23:59:59Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"issued_at": "1601-01-01T00:00:00Z"},
            "issued_at: '1601-01-01T00:00:00Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"issued_at": "2000-01-01T00:30:00+01:00"},
            "issued_at: '2000-01-01T00:30:00+01:00' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        (
            {"expires_at": "2100-01-01T00:00:00Z"},
            "expires_at: '2100-01-01T00:00:00Z' is outside 2000-01-01 to 2100-01-01 (UTC)",
        ),
        # Durations: huge, non-finite, calendar-dependent, zero.
        ({"hold": "PT" + "9" * 400 + "S"}, "hold: a hold lasts at most 31 days"),
        ({"hold": "P99999999DT99999999999H"}, "hold: a hold lasts at most 31 days"),
        ({"hold": "P32D"}, "hold: a hold lasts at most 31 days"),
        (
            {"hold": "P1M"},
            "hold: 'P1M': months and years have no fixed length; use days, e.g. P30D",
        ),
        (
            {"hold": "P1Y"},
            "hold: 'P1Y': months and years have no fixed length; use days, e.g. P30D",
        ),
        ({"hold": "PT0S"}, "hold: 'PT0S' is not a positive ISO-8601 duration like PT3H or P1DT12H"),
        (
            {"hold": "-PT1H"},
            "hold: '-PT1H' is not a positive ISO-8601 duration like PT3H or P1DT12H",
        ),
        ({"hold": 3}, "hold: 3 is not a positive ISO-8601 duration like PT3H or P1DT12H"),
        (
            {"hold": "PT1e400S"},
            "hold: 'PT1e400S' is not a positive ISO-8601 duration like PT3H or P1DT12H",
        ),
    ],
)
def test_out_of_range_times_are_rejected_naming_the_field(
    extra: dict[str, object], error: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse({"pools": {"userpool1": 3}, **extra})
    assert str(raised.value) == error


def test_times_inside_the_window_still_work() -> None:
    intent = parse(
        {
            "pools": {"batch": 1},
            "issued_at": "2000-01-01T00:00:00Z",
            "expires_at": "2099-12-31T23:59:59+00:00",
            "hold_until": "2026-12-24T11:00:00+01:00",
        }
    )
    assert intent.issued_at == EARLIEST_TIMESTAMP
    assert intent.expires_at == datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert intent.hold_until == datetime(2026, 12, 24, 10, 0, tzinfo=UTC)


def test_the_duration_helper_bounds_any_field() -> None:
    document = {"lease": "PT2H", "big": "P20000D", "bad": "soon", "zero": "PT0S"}
    assert _duration(document, "absent", timedelta(days=1)) is None
    assert _duration(document, "lease", timedelta(days=1)) == timedelta(hours=2)
    with pytest.raises(InvalidInput, match=r"^lease: PT2H is longer than PT1H$"):
        _duration(document, "lease", timedelta(hours=1))
    with pytest.raises(InvalidInput, match=r"^lease: too long \(SCALER_MAX_LEASE\)$"):
        _duration(document, "lease", timedelta(hours=1), too_long="too long (SCALER_MAX_LEASE)")
    # A maximum from settings may be anything: the helper never allows more than the ceiling.
    with pytest.raises(InvalidInput, match=r"^big: P20000D is longer than P3660D$"):
        _duration(document, "big", timedelta.max)
    with pytest.raises(InvalidInput, match=r"^bad: 'soon' is not a positive ISO-8601 duration"):
        _duration(document, "bad", timedelta(days=1))
    with pytest.raises(InvalidInput, match=r"^zero: 'PT0S' is not a positive"):
        _duration(document, "zero", timedelta(days=1))
    with pytest.raises(InvalidInput, match=r"^lease: PT9{400}S is longer than P1D$"):
        _duration({"lease": "PT" + "9" * 400 + "S"}, "lease", timedelta(days=1))


_ANY_MOMENT = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
)
_DURATIONS = st.one_of(
    st.integers(0, 10**12).map(lambda n: f"P{n}D"),
    st.integers(0, 10**15).map(lambda n: f"PT{n}S"),
    st.integers(0, 10**12).map(lambda n: f"PT{n}H"),
    st.text(alphabet="PTYMWDHS0123456789.,-", max_size=12),
)


@given(
    moment=_ANY_MOMENT,
    offset=_OFFSETS,
    field=st.sampled_from(["issued_at", "expires_at", "hold_until"]),
    hold=st.one_of(st.none(), _DURATIONS),
)
def test_no_timestamp_or_duration_raises_anything_but_invalid_input(
    moment: datetime, offset: str, field: str, hold: str | None
) -> None:
    local = moment.replace(tzinfo=None).isoformat() + offset
    document: dict[str, object] = {"pools": {"batch": 1}, field: local}
    if hold is not None and field != "hold_until":
        document["hold"] = hold
    with contextlib.suppress(InvalidInput):
        parse(document)


@pytest.mark.parametrize(
    ("pools", "expected"),
    [
        ({"batch": -0}, ManualCount(0)),
        ({"batch": {"count": -0}}, ManualCount(0)),
        ({"web": {"min": -0, "max": 3}}, Autoscale(0, 3)),
    ],
)
def test_minus_zero_is_the_count_zero(pools: dict[str, object], expected: object) -> None:
    # Decided (issue 13, item 8): JSON's -0 is an integer and Python reads it as 0, so it is
    # accepted as 0, exactly like 0. The README's intent error table says so.
    body = json.dumps({"pools": pools}).replace('"count": 0', '"count": -0')
    body = body.replace(": 0", ": -0")
    assert "-0" in body
    intent = parse_intent(body, DEFAULTS, NOW)
    assert list(intent.pools.values()) == [expected]


def test_minus_zero_point_zero_is_not_a_count() -> None:
    with pytest.raises(InvalidInput, match=r"^pools\.batch: .*got the number -0\.0$"):
        parse_intent('{"pools": {"batch": -0.0}}', DEFAULTS, NOW)
