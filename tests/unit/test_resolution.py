"""`resolve_pool`, pure: sources + schedule + memo + the pool as it is + now → the state the pool
should have, and why (issue 9, "Resolution" and "Leases").

Precedence, highest first: an active hold (the newest; leases ignored), active leases raising
the floor of what the rest asks, the newest plain intent (until the schedule's next transition
for the pool), the schedule at `now`, no opinion. Every expected value below is written by hand
from those rules, never computed with the code under test.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.domain.pools import Autoscale, ManualCount, PoolRequest, PoolState, Power
from scaler.domain.resolution import PoolMemo, Resolution, resolve_pool
from scaler.domain.schedule_file import load_schedule
from scaler.domain.sources import Source, SourceKind

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
MAX_COUNT = 100
POOL = "batch"


# -- stand-ins ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    state: object
    reason: str


@dataclass(frozen=True)
class StubSchedule:
    """The schedule of one pool: `states[0]` until `changes[0]`, then `states[1]`, ... ."""

    states: tuple[object, ...]
    changes: tuple[datetime, ...] = ()
    enforce: bool = True
    pool: str = POOL

    def decide(self, instant: datetime, pool: str) -> Decided:
        if pool != self.pool:
            return Decided(None, "not scheduled")
        period = sum(1 for change in self.changes if change <= instant)
        return Decided(self.states[period], f"period {period}")

    def next_transition(self, pool: str, after: datetime) -> datetime | None:
        if pool != self.pool:
            return None
        return next((change for change in self.changes if change > after), None)

    def enforces(self, pool: str) -> bool:
        return self.enforce

    @property
    def pool_names(self) -> tuple[str, ...]:
        return (self.pool,)


def source(
    id: str,
    kind: SourceKind,
    pools: Mapping[str, PoolRequest],
    *,
    issued: datetime = NOW - HOUR,
    accepted: datetime | None = None,
    until: datetime | None = None,
) -> Source:
    return Source(
        id=id,
        kind=kind,
        pools=dict(pools),
        issued_at=issued,
        accepted_at=accepted or issued,
        until=until,
    )


def intent(id: str, count: int | PoolRequest, **kw: datetime) -> Source:
    request = ManualCount(count) if isinstance(count, int) else count
    return source(id, SourceKind.INTENT, {POOL: request}, **kw)


def hold(id: str, count: int | PoolRequest, until: datetime = NOW + HOUR, **kw: datetime) -> Source:
    request = ManualCount(count) if isinstance(count, int) else count
    return source(id, SourceKind.HOLD, {POOL: request}, until=until, **kw)


def lease(id: str, count: int, until: datetime = NOW + HOUR, **kw: datetime) -> Source:
    return source(id, SourceKind.LEASE, {POOL: ManualCount(count)}, until=until, **kw)


def pool_state(
    count: int = 2,
    autoscale: tuple[int, int] | None = None,
    power: str = "Running",
) -> PoolState:
    return PoolState(
        name=POOL,
        mode="User",
        count=count,
        autoscale=autoscale is not None,
        min_count=autoscale[0] if autoscale else None,
        max_count=autoscale[1] if autoscale else None,
        power=power,
        provisioning_state="Succeeded",
        etag="e",
    )


def resolve(
    *sources: Source,
    schedule: StubSchedule | None = None,
    memo: PoolMemo | None = None,
    current: PoolState | None = None,
    now: datetime = NOW,
    max_count: int = MAX_COUNT,
) -> Resolution:
    return resolve_pool(
        POOL,
        sources,
        schedule,
        memo or PoolMemo(),
        current if current is not None else pool_state(),
        now,
        max_count,
    )


WINDOW_ENDS = NOW + 3 * HOUR
# 6 nodes until WINDOW_ENDS, then 2.
SIX_THEN_TWO = StubSchedule((ManualCount(6), ManualCount(2)), (WINDOW_ENDS,))


# -- precedence -----------------------------------------------------------------------------


def test_nobody_asks_no_opinion() -> None:
    result = resolve()
    assert result.request is None
    assert result.why.source == "none"
    assert result.carries == frozenset()


def test_the_schedule_alone_decides_until_its_next_transition() -> None:
    result = resolve(schedule=SIX_THEN_TWO)
    assert result.request == ManualCount(6)
    assert (result.why.source, result.why.until) == ("schedule", WINDOW_ENDS)
    assert result.carries == frozenset()
    assert result.start_stopped  # the schedule may start a stopped pool
    assert result.schedule_state == '{"count": 6}'


def test_a_schedule_that_says_keep_has_no_opinion() -> None:
    result = resolve(schedule=StubSchedule(("keep",)))
    assert result.request is None
    assert result.why.source == "schedule"


def test_sources_for_other_pools_do_not_count() -> None:
    other = source("other", SourceKind.HOLD, {"web": ManualCount(9)}, until=NOW + HOUR)
    assert resolve(other, schedule=SIX_THEN_TWO).request == ManualCount(6)


def test_a_plain_intent_beats_the_schedule() -> None:
    result = resolve(intent("a", 10), schedule=SIX_THEN_TWO)
    assert result.request == ManualCount(10)
    assert (result.why.source, result.why.id, result.why.until) == ("intent", "a", WINDOW_ENDS)
    assert "a" in result.why.detail
    assert result.carries == {"a"}
    assert not result.start_stopped  # a person's size is not a reason to start a stopped pool


def test_leases_raise_a_plain_intent() -> None:
    result = resolve(intent("a", 3), lease("l1", 2), lease("l2", 4), schedule=SIX_THEN_TWO)
    assert result.request == ManualCount(6)
    assert (result.why.source, result.why.id) == ("intent", "a")
    assert result.carries == {"a", "l1", "l2"}


def test_a_hold_beats_a_newer_intent_the_schedule_and_leases() -> None:
    result = resolve(
        hold("h", 1, issued=NOW - 2 * HOUR, until=NOW + 2 * HOUR),
        intent("newer", 8, issued=NOW - MINUTE),
        lease("l", 5),
        schedule=SIX_THEN_TWO,
    )
    assert result.request == ManualCount(1), "a hold ignores leases"
    assert (result.why.source, result.why.id, result.why.until) == ("hold", "h", NOW + 2 * HOUR)
    assert "h" in result.why.detail
    assert result.carries == {"h"}
    assert result.why.leases == ()


def test_a_hold_can_stop_a_pool_that_leases_ask_for() -> None:
    result = resolve(hold("h", Power("Stopped")), lease("l", 3))
    assert result.request == Power("Stopped")


# -- newest wins: issued_at, then accepted_at, then id --------------------------------------

T = NOW - HOUR


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        # issued_at decides, whatever the acceptance order and ids
        (("z", T, T + 2 * MINUTE), ("a", T + MINUTE, T + MINUTE)),
        # equal issued_at: the later accepted
        (("z", T, T), ("a", T, T + MINUTE)),
        # equal issued_at and accepted_at: the larger id
        (("a", T, T), ("b", T, T)),
    ],
    ids=["issued_at", "accepted_at", "id"],
)
@pytest.mark.parametrize("kind", ["intent", "hold"])
def test_the_newest_source_of_a_kind_wins(
    kind: str, older: tuple[str, datetime, datetime], newer: tuple[str, datetime, datetime]
) -> None:
    make = intent if kind == "intent" else hold
    first = make(older[0], 4, issued=older[1], accepted=older[2])
    second = make(newer[0], 7, issued=newer[1], accepted=newer[2])
    for order in ([first, second], [second, first]):
        result = resolve(*order)
        assert result.request == ManualCount(7)
        assert result.why.id == second.id
        assert result.carries == {second.id}


def test_the_newest_hold_wins_not_the_longest() -> None:
    long = hold("long", 2, until=NOW + 10 * HOUR, issued=NOW - 2 * HOUR)
    short = hold("short", 9, until=NOW + MINUTE, issued=NOW - HOUR)
    assert resolve(long, short).request == ManualCount(9)
    # ... until it ends; then the older, longer hold decides again.
    assert resolve(long, short, now=NOW + MINUTE).request == ManualCount(2)


# -- expiry ---------------------------------------------------------------------------------


def test_a_hold_ends_at_its_until() -> None:
    held = hold("h", 1, until=NOW + HOUR)
    assert resolve(held, schedule=SIX_THEN_TWO, now=NOW + HOUR - MINUTE).request == ManualCount(1)
    ended = resolve(held, schedule=SIX_THEN_TWO, now=NOW + HOUR)
    assert ended.request == ManualCount(6)
    assert ended.why.source == "schedule"
    assert ended.carries == frozenset()


def test_a_lease_ends_at_its_until() -> None:
    leased = lease("l", 5, until=NOW + HOUR)
    assert resolve(leased, intent("a", 3), now=NOW + HOUR - MINUTE).request == ManualCount(5)
    ended = resolve(leased, intent("a", 3), now=NOW + HOUR)
    assert ended.request == ManualCount(3)
    assert ended.carries == {"a"}
    assert ended.why.leases == ()


def test_a_plain_intent_lasts_until_the_schedules_next_transition_after_it_was_accepted() -> None:
    asked = intent("a", 10, issued=NOW - HOUR)  # inside the 6-node window
    just_before = resolve(asked, schedule=SIX_THEN_TWO, now=WINDOW_ENDS - MINUTE)
    assert just_before.request == ManualCount(10)
    assert just_before.why.until == WINDOW_ENDS
    at_the_end = resolve(asked, schedule=SIX_THEN_TWO, now=WINDOW_ENDS)
    assert at_the_end.request == ManualCount(2)
    assert at_the_end.why.source == "schedule"
    assert at_the_end.carries == frozenset()


def test_a_plain_intent_accepted_after_a_transition_lasts_until_the_next_one() -> None:
    schedule = StubSchedule(
        (ManualCount(6), ManualCount(2), ManualCount(6)), (NOW - HOUR, NOW + 5 * HOUR)
    )
    asked = intent("a", 10, issued=NOW - 30 * MINUTE)
    assert resolve(asked, schedule=schedule, now=NOW + 4 * HOUR).request == ManualCount(10)
    assert resolve(asked, schedule=schedule, now=NOW + 5 * HOUR).request == ManualCount(6)


def test_the_end_counts_from_acceptance_not_from_issued_at() -> None:
    # Issued before the transition, accepted after it: it lasts until the transition after that.
    schedule = StubSchedule(
        (ManualCount(6), ManualCount(2), ManualCount(6)), (NOW - HOUR, NOW + 5 * HOUR)
    )
    asked = intent("a", 10, issued=NOW - 2 * HOUR, accepted=NOW - 30 * MINUTE)
    assert resolve(asked, schedule=schedule).request == ManualCount(10)


def test_without_a_schedule_a_plain_intent_never_ends() -> None:
    result = resolve(intent("a", 4), now=NOW + timedelta(days=400))
    assert result.request == ManualCount(4)
    assert (result.why.source, result.why.until) == ("intent", None)


def test_a_schedule_that_never_changes_the_pool_never_ends_a_plain_intent() -> None:
    result = resolve(intent("a", 4), schedule=StubSchedule((ManualCount(6),)))
    assert result.request == ManualCount(4)
    assert result.why.until is None


def test_a_plain_intent_ends_at_a_real_schedules_window_end() -> None:
    """The same rule with a real ClusterSchedule: 6 nodes Mon-Fri 07:00-19:00 UTC, 2 outside."""
    (cluster,) = load_schedule(
        'timezone = "UTC"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
        "[clusters.pools.batch]\noutside = 2\n"
        'windows = [ { days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 } ]\n',
        "s.toml",
        MAX_COUNT,
    ).clusters
    seven_pm = NOW.replace(hour=19)
    asked = intent("a", 10, issued=NOW - HOUR)
    before = resolve_pool(POOL, [asked], cluster, PoolMemo(), pool_state(), seven_pm - MINUTE, 100)
    assert before.request == ManualCount(10)
    assert before.why.until == seven_pm
    after = resolve_pool(POOL, [asked], cluster, PoolMemo(), pool_state(), seven_pm, 100)
    assert after.request == ManualCount(2)
    assert after.why.source == "schedule"


# -- enforce = false ------------------------------------------------------------------------


def test_enforce_false_acts_once_per_transition() -> None:
    schedule = StubSchedule((ManualCount(6),), enforce=False)
    fresh = resolve(schedule=schedule, memo=PoolMemo(schedule_seen='{"count": 2}'))
    assert fresh.request == ManualCount(6)
    assert fresh.schedule_state == '{"count": 6}'
    acted = resolve(schedule=schedule, memo=PoolMemo(schedule_seen='{"count": 6}'))
    assert acted.request is None, "a manual change made since then stands"
    assert acted.why.source == "schedule"
    assert acted.memo_after.schedule_seen == '{"count": 6}'


def test_enforce_true_converges_every_time() -> None:
    result = resolve(schedule=SIX_THEN_TWO, memo=PoolMemo(schedule_seen='{"count": 6}'))
    assert result.request == ManualCount(6)


# -- lease arithmetic -----------------------------------------------------------------------


def test_a_count_pool_gets_at_least_the_sum_of_its_leases() -> None:
    assert resolve(intent("a", 3), lease("l1", 2), lease("l2", 4)).request == ManualCount(6)
    assert resolve(intent("a", 8), lease("l1", 2), lease("l2", 4)).request == ManualCount(8)


def test_a_lease_counts_only_its_own_pool() -> None:
    both = source(
        "l", SourceKind.LEASE, {POOL: ManualCount(3), "web": ManualCount(7)}, until=NOW + HOUR
    )
    assert resolve(intent("a", 1), both).request == ManualCount(3)


def test_an_autoscaled_pool_gets_min_at_least_the_sum_and_max_at_least_min() -> None:
    assert resolve(intent("a", Autoscale(1, 5)), lease("l1", 3), lease("l2", 4)).request == (
        Autoscale(7, 7)
    )
    assert resolve(intent("a", Autoscale(2, 10)), lease("l", 3)).request == Autoscale(3, 10)
    assert resolve(intent("a", Autoscale(5, 10)), lease("l", 3)).request == Autoscale(5, 10)


def test_a_stopped_pool_with_a_lease_runs() -> None:
    stopped = pool_state(count=0, power="Stopped")
    asked_stopped = resolve(
        lease("l", 3), schedule=StubSchedule((Power("Stopped"),)), current=stopped
    )
    assert asked_stopped.request == ManualCount(3)
    assert asked_stopped.start_stopped
    nobody_else = resolve(lease("l", 3), current=stopped)
    assert nobody_else.request == ManualCount(3)
    assert nobody_else.start_stopped


def test_a_stopped_autoscaled_pool_with_a_lease_runs_autoscaled() -> None:
    stopped = pool_state(count=0, autoscale=(1, 5), power="Stopped")
    result = resolve(lease("l", 2), current=stopped)
    assert result.request == Autoscale(2, 5)


def test_the_first_lease_remembers_the_pool_as_it_was() -> None:
    result = resolve(lease("l", 5), current=pool_state(count=2))
    assert result.request == ManualCount(5)
    assert result.memo_after.baseline == ManualCount(2)
    assert result.start_stopped

    autoscaled = resolve(lease("l", 5), current=pool_state(count=3, autoscale=(1, 4)))
    assert autoscaled.request == Autoscale(5, 5)
    assert autoscaled.memo_after.baseline == Autoscale(1, 4)

    stopped = resolve(lease("l", 5), current=pool_state(count=0, power="Stopped"))
    assert stopped.memo_after.baseline == Power("Stopped")


def test_leases_raise_the_baseline_not_what_leases_already_made() -> None:
    # The first lease (5) took the pool from 2 to 5; it ended, and a second one (3) is active.
    result = resolve(
        lease("l2", 3), current=pool_state(count=5), memo=PoolMemo(baseline=ManualCount(2))
    )
    assert result.request == ManualCount(3)
    assert result.memo_after.baseline == ManualCount(2), "the baseline stays the first one's"


def test_leases_raise_an_autoscaled_baseline() -> None:
    result = resolve(
        lease("l", 3),
        current=pool_state(count=6, autoscale=(6, 6)),
        memo=PoolMemo(baseline=Autoscale(1, 4)),
    )
    assert result.request == Autoscale(3, 4)


def test_when_the_last_lease_ends_the_baseline_comes_back() -> None:
    ended = lease("l", 5, until=NOW - MINUTE)
    result = resolve(ended, current=pool_state(count=5), memo=PoolMemo(baseline=ManualCount(2)))
    assert result.request == ManualCount(2)
    assert result.why.source == "baseline"
    assert result.memo_after.baseline is None
    assert result.start_stopped  # a stopped pool that leases started goes back to stopped, too


def test_a_stopped_baseline_comes_back_stopped() -> None:
    result = resolve(current=pool_state(count=3), memo=PoolMemo(baseline=Power("Stopped")))
    assert result.request == Power("Stopped")
    assert result.memo_after.baseline is None


def test_giving_the_baseline_back_keeps_the_schedule_state_acted_on() -> None:
    schedule = StubSchedule((ManualCount(6),), enforce=False)
    memo = PoolMemo(baseline=ManualCount(6), schedule_seen='{"count": 6}')
    back = resolve(schedule=schedule, memo=memo, current=pool_state(count=9))
    assert back.request == ManualCount(6)
    assert back.memo_after == PoolMemo(None, '{"count": 6}')
    # The next reconcile: a person sets 4 by hand; the schedule (no transition since) lets it be.
    later = resolve(schedule=schedule, memo=back.memo_after, current=pool_state(count=4))
    assert later.request is None


def test_when_another_source_decides_after_the_leases_the_baseline_is_dropped() -> None:
    result = resolve(
        schedule=SIX_THEN_TWO, current=pool_state(count=5), memo=PoolMemo(baseline=ManualCount(2))
    )
    assert result.request == ManualCount(6)
    assert result.why.source == "schedule"
    assert result.memo_after.baseline is None


def test_the_lease_floor_is_capped_at_max_count() -> None:
    result = resolve(lease("l1", 60), lease("l2", 70), max_count=100)
    assert result.request == ManualCount(100)


def test_why_names_the_leases_and_when_they_end() -> None:
    result = resolve(
        lease("late", 2, until=NOW + 2 * HOUR),
        lease("soon", 1, until=NOW + HOUR),
        current=pool_state(count=0),
    )
    assert result.request == ManualCount(3)
    assert result.why.source == "lease"
    assert result.why.until == NOW + HOUR, "the state holds until the first lease ends"
    assert [(s.id, s.count, s.until) for s in result.why.leases] == [
        ("soon", 1, NOW + HOUR),
        ("late", 2, NOW + 2 * HOUR),
    ]
    assert result.carries == {"soon", "late"}


def test_why_with_a_decider_and_leases_names_both() -> None:
    result = resolve(lease("l", 9), schedule=SIX_THEN_TWO)
    assert result.request == ManualCount(9)
    assert (result.why.source, result.why.until) == ("schedule", WINDOW_ENDS)
    assert [s.id for s in result.why.leases] == ["l"]
    assert result.carries == {"l"}
    assert result.why.to_json()["leases"] == [
        {"id": "l", "count": 9, "until": (NOW + HOUR).isoformat()}
    ]


# -- properties -----------------------------------------------------------------------------

requests = st.one_of(
    st.builds(ManualCount, st.integers(0, 30)),
    st.builds(
        lambda low, extra: Autoscale(low, low + extra), st.integers(0, 20), st.integers(0, 10)
    ),
    st.sampled_from([Power("Stopped"), Power("Running")]),
)
states = st.one_of(
    st.builds(pool_state, count=st.integers(0, 30)),
    st.builds(
        lambda low, extra, count: pool_state(count=count, autoscale=(low, low + extra)),
        st.integers(0, 10),
        st.integers(0, 10),
        st.integers(0, 20),
    ),
    st.builds(pool_state, count=st.just(0), power=st.just("Stopped")),
)


def floor_nodes(request: PoolRequest | None, current: PoolState) -> int:
    """The nodes a state guarantees: a count, an autoscaler's min, none when stopped; with no
    opinion (or "Running"), what the pool guarantees now."""
    if isinstance(request, ManualCount):
        return request.count
    if isinstance(request, Autoscale):
        return request.min_count
    if request == Power("Stopped") or current.is_stopped:
        return 0
    return (
        current.min_count if current.autoscale and current.min_count is not None else current.count
    )


@settings(max_examples=300, deadline=None)
@given(
    plain=st.lists(requests, max_size=2),
    held=st.one_of(st.none(), requests),
    scheduled=st.one_of(st.none(), st.just("keep"), requests),
    enforce=st.booleans(),
    baseline=st.one_of(st.none(), requests),
    current=states,
    lease_counts=st.lists(st.integers(0, 60), min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_leases_never_leave_a_pool_below_what_it_gets_without_them(
    plain: list[PoolRequest],
    held: PoolRequest | None,
    scheduled: object,
    enforce: bool,
    baseline: PoolRequest | None,
    current: PoolState,
    lease_counts: list[int],
    seed: int,
) -> None:
    """In node terms, and whatever the order the sources come in."""
    others = [intent(f"i{n}", r, issued=NOW - (n + 1) * MINUTE) for n, r in enumerate(plain)]
    if held is not None:
        others.append(hold("h", held))
    leases = [lease(f"l{n}", c, until=NOW + (n + 1) * HOUR) for n, c in enumerate(lease_counts)]
    schedule = None if scheduled is None else StubSchedule((scheduled,), enforce=enforce)
    memo = PoolMemo(baseline=baseline)

    without = resolve(*others, schedule=schedule, memo=memo, current=current)
    mixed = [*others, *leases]
    random.Random(seed).shuffle(mixed)
    with_leases = resolve(*mixed, schedule=schedule, memo=memo, current=current)

    assert floor_nodes(with_leases.request, current) >= floor_nodes(without.request, current)
    if held is None:
        floor = min(sum(lease_counts), MAX_COUNT)
        assert floor_nodes(with_leases.request, current) >= floor
        assert {f"l{n}" for n in range(len(lease_counts))} <= with_leases.carries
    else:
        assert with_leases.request == held
    # The order of the sources never matters.
    assert resolve(*reversed(mixed), schedule=schedule, memo=memo, current=current) == with_leases
