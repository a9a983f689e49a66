"""Latest intent wins, per pool; ties are decided the same way by every worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scaler.domain.pool_records import Claim, PoolRecord, claim
from scaler.domain.pools import ManualCount

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(intent_id: str, minutes: int, hold: int | None = None) -> PoolRecord:
    hold_until = T0 + timedelta(minutes=hold) if hold is not None else None
    return PoolRecord(
        "batch", intent_id, T0 + timedelta(minutes=minutes), ManualCount(1), hold_until
    )


def test_first_intent_for_a_pool_claims_it() -> None:
    assert claim(record("a", 0), None) is Claim.NEWER


def test_newer_wins_older_is_stale() -> None:
    assert claim(record("b", 5), record("a", 0)) is Claim.NEWER
    assert claim(record("a", 0), record("b", 5)) is Claim.STALE


def test_a_retry_of_the_recorded_intent_is_the_same_claim() -> None:
    assert claim(record("a", 0), record("a", 0)) is Claim.SAME


def test_ties_on_issued_at_go_to_the_larger_id_everywhere() -> None:
    assert claim(record("b", 0), record("a", 0)) is Claim.NEWER
    assert claim(record("a", 0), record("b", 0)) is Claim.STALE


def test_a_hold_is_active_until_it_ends() -> None:
    held = record("a", 0, hold=60)
    assert held.holds_at(T0 + timedelta(minutes=59))
    assert not held.holds_at(T0 + timedelta(minutes=60))
    assert not record("a", 0).holds_at(T0)
