"""Savings: the node-hours a week the schedule saves against a baseline, per pool, and money
when a price table says what a node costs an hour. Pure: no clock, no Azure.

How it is computed, for one pool of one cluster, over one week of the cluster's local days
(local 00:00 on the first day to local 00:00 seven days later; real elapsed time, so a week
with a DST change has 167 or 169 hours):

    baseline node-hours   = baseline nodes × hours in the week
    scheduled node-hours  = Σ over the stretches between the schedule's transitions of
                            (nodes the schedule asks there × the stretch's hours)
    saved node-hours      = baseline node-hours − scheduled node-hours
    saved money           = saved node-hours × the VM size's price per hour

The schedule is evaluated with the same `ClusterSchedule.decide` as the app, stretch by
stretch (`next_transition` gives where each one ends), so exceptions, holidays and clock
changes count exactly as the app applies them. Nodes a state asks: a count is that count, a
stopped pool 0, an autoscaled pool its `min` (what it keeps when idle; `max` or the middle of
min and max on request). "keep", no opinion and `power = "Running"` ask nothing of their own:
they count as the baseline (the pool stays as it is).

The baseline, unless the user names one (a node count, or a named state of the file): the
pool's state in its largest window (the window whose state has the most nodes); without a
window that has a node count, its `outside` when that has nodes; else a fallback the caller
knows (`status`: the pool's current size from ARM), else none and the pool is not counted.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Final, Literal, TypeAlias, TypeVar, get_args
from zoneinfo import ZoneInfo

from scaler.domain.errors import InvalidInput
from scaler.domain.pools import Autoscale, ManualCount, Power, json_type
from scaler.domain.schedule import ClusterSchedule, ScheduledState, require_aware

AutoscaleCount: TypeAlias = Literal["min", "max", "mid"]
AUTOSCALE_COUNTS: Final[tuple[str, ...]] = get_args(AutoscaleCount)
DAYS_PER_WEEK: Final = 7
SECONDS_PER_HOUR: Final = 3600
ALL_POOLS: Final = "*"
T = TypeVar("T")

METHOD: Final = (
    "saved = baseline nodes × hours in the week − Σ (nodes the schedule asks × hours it asks "
    "them), evaluated transition by transition with the app's own schedule rules in the "
    "cluster's zone (real elapsed hours: a DST week has 167 or 169); stopped = 0 nodes; keep, "
    "no opinion and running = the baseline; autoscale counts its {autoscale}; baseline: "
    "{baseline}"
)


# --- what a state costs in nodes -------------------------------------------------------------


def state_nodes(state: ScheduledState | None, autoscale: AutoscaleCount = "min") -> Fraction | None:
    """The nodes `state` asks for; None when it asks no count of its own ("keep", no opinion,
    running): then the pool stays at its baseline."""
    if isinstance(state, ManualCount):
        return Fraction(state.count)
    if isinstance(state, Autoscale):
        if autoscale == "max":
            return Fraction(state.max_count)
        if autoscale == "mid":
            return Fraction(state.min_count + state.max_count, 2)
        return Fraction(state.min_count)
    if isinstance(state, Power) and state.code == "Stopped":
        return Fraction(0)
    return None


def describe_state(state: ScheduledState | None) -> str:
    if isinstance(state, ManualCount):
        return f"{state.count} node" + ("" if state.count == 1 else "s")
    if isinstance(state, Autoscale):
        return f"autoscale {state.min_count}-{state.max_count}"
    if isinstance(state, Power):
        return "stopped" if state.code == "Stopped" else "running"
    return "keep" if state is not None else "no opinion"


# --- the baseline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Nodes the pool would run all week without the schedule, and where that number is from."""

    nodes: Fraction
    source: str

    def to_json(self) -> dict[str, object]:
        return {"nodes": _number(self.nodes), "from": self.source}


def largest_window(
    cluster: ClusterSchedule, pool: str, autoscale: AutoscaleCount = "min"
) -> Baseline | None:
    """The pool's state in its largest window (most nodes, more than 0; the first of equals),
    else its `outside` when that asks for nodes, else None."""
    schedule = cluster.pool(pool)
    if schedule is None:
        return None
    best: tuple[Fraction, str] | None = None
    for window in schedule.windows:
        nodes = state_nodes(window.state, autoscale)
        if nodes and (best is None or nodes > best[0]):  # a window that stops it: no baseline
            shown = _as(window.state, window.state_name, autoscale)
            best = (nodes, f"largest window {window.describe()}{shown}")
    if best is not None:
        return Baseline(*best)
    nodes = state_nodes(schedule.outside, autoscale)
    if nodes:
        shown = _as(schedule.outside, schedule.outside_name, autoscale)
        return Baseline(nodes, f"outside windows{shown}")
    return None


def parse_baseline(
    text: str, states: Mapping[str, ScheduledState], autoscale: AutoscaleCount = "min"
) -> Baseline:
    """`--baseline` as the user wrote it: a node count ("6", "2.5") or a named state of the
    file (`[states]`) that asks for nodes."""
    value = text.strip()
    try:
        nodes = Fraction(value)
    except (ValueError, ZeroDivisionError):
        nodes = None
    if nodes is not None:
        if nodes < 0:
            raise InvalidInput("--baseline", f"must not be negative, got {value}")
        return Baseline(nodes, f"--baseline {value}")
    if value not in states:
        known = ", ".join(states) or "none"
        raise InvalidInput(
            "--baseline",
            f"{value!r} is neither a node count nor a named state of the file ([states]: {known})",
        )
    state = states[value]
    counted = state_nodes(state, autoscale)
    if not counted:
        raise InvalidInput(
            "--baseline", f"the state {value!r} ({describe_state(state)}) runs no nodes of its own"
        )
    return Baseline(counted, f"--baseline {value}{_as(state, None, autoscale)}")


def _as(state: ScheduledState | None, name: str | None, autoscale: AutoscaleCount) -> str:
    """What a baseline state was, beyond its node count: " (office: autoscale 3-20 at min)"."""
    parts = [name] if name else []
    if isinstance(state, Autoscale):
        parts.append(f"{describe_state(state)} at {autoscale}")
    elif name:
        parts.append(describe_state(state))
    return f" ({': '.join(parts)})" if parts else ""


# --- prices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceTable:
    """VM size → price of one node for one hour. Sizes compare case-insensitively."""

    prices: Mapping[str, float]
    currency: str | None = None
    name: str = "prices"

    def price(self, vm_size: str | None) -> float | None:
        if not vm_size:
            return None
        wanted = vm_size.lower()
        return next((p for size, p in self.prices.items() if size.lower() == wanted), None)


def parse_price_table(text: str, name: str) -> PriceTable:
    """A price table file: JSON (`{"Standard_D8ds_v5": 0.452}`) or TOML
    (`Standard_D8ds_v5 = 0.452`), by its extension, else whichever parses; an optional
    `currency` key names the currency (shown, never converted)."""
    lowered = name.lower()
    document: object
    if lowered.endswith(".json"):
        document = _json(text, name)
    elif lowered.endswith(".toml"):
        document = _toml(text, name)
    else:
        try:
            document = json.loads(text)
        except ValueError:
            document = _toml(text, name)
    if not isinstance(document, Mapping):
        raise InvalidInput(
            name, f"expected a table of VM size = price per hour, got {_kind(document)}"
        )
    prices: dict[str, float] = {}
    currency: str | None = None
    for key, value in document.items():
        where = f"{name}: {key}" if key else f'{name}: ""'
        if key == "currency":
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(where, 'must be the currency\'s name, e.g. "USD"')
            currency = value.strip()
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise InvalidInput(where, f"must be a price per hour (a number), got {_kind(value)}")
        if value < 0 or value == float("inf"):
            raise InvalidInput(where, f"must be a price per hour of 0 or more, got {value}")
        prices[str(key)] = float(value)
    return PriceTable(prices, currency, name)


def _json(text: str, name: str) -> object:
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInput(name, f"not valid JSON ({error})") from None


def _toml(text: str, name: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(name, f"neither JSON nor TOML ({error})") from None


def _kind(value: object) -> str:
    return "a table" if isinstance(value, Mapping) else json_type(value)


# --- the week --------------------------------------------------------------------------------


def week_from(cluster: ClusterSchedule, day: date) -> tuple[datetime, datetime]:
    """Local 00:00 of `day` to local 00:00 seven days later in the cluster's zone, in UTC.
    (Where the clock skips midnight, the day starts when it jumps.)"""
    zone = cluster.zone
    first = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    last = datetime.combine(day + timedelta(days=DAYS_PER_WEEK), time(0), tzinfo=zone)
    return first, last.astimezone(UTC)


def week_of(cluster: ClusterSchedule, at: datetime, *, monday: bool) -> tuple[datetime, datetime]:
    """The week of `at` in the cluster's zone: from its local day, or (`monday`) from the
    Monday of its local week."""
    require_aware(at)
    day = at.astimezone(cluster.zone).date()
    if monday:
        day -= timedelta(days=day.weekday())
    return week_from(cluster, day)


@dataclass(frozen=True)
class Stretch:
    """From `start` to `end` the schedule asks `state` of the pool."""

    start: datetime
    end: datetime
    state: ScheduledState | None

    @property
    def seconds(self) -> int:
        return round((self.end - self.start).total_seconds())


def stretches(
    cluster: ClusterSchedule, pool: str, start: datetime, end: datetime
) -> Iterator[Stretch]:
    """The week cut at every transition of the pool's state, with the app's `decide`."""
    require_aware(start)
    moment = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while moment < end:
        state = cluster.decide(moment, pool).state
        after = cluster.next_transition(pool, moment, end - moment)
        stop = end if after is None or after > end else after
        yield Stretch(moment, stop, state)
        moment = stop


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavingsOptions:
    """What the user chose. Keys of the mappings: a pool's name (in every cluster), or
    `rg/cluster/pool`; `baselines` also takes `*` for every pool."""

    baselines: Mapping[str, Baseline] = field(default_factory=dict)
    autoscale: AutoscaleCount = "min"
    prices: PriceTable | None = None
    pool_prices: Mapping[str, float] = field(default_factory=dict)  # per node-hour
    vm_sizes: Mapping[str, str] = field(default_factory=dict)

    @property
    def currency(self) -> str | None:
        return self.prices.currency if self.prices is not None else None

    def baseline_text(self) -> str:
        if ALL_POOLS in self.baselines:
            return self.baselines[ALL_POOLS].source
        if self.baselines:
            return "as named with --baseline, else the pool's largest window"
        return "the pool's state in its largest window (--baseline to name one)"

    def method(self) -> str:
        other = ", --autoscale max or mid to change" if self.autoscale == "min" else ""
        return METHOD.format(autoscale=f"{self.autoscale}{other}", baseline=self.baseline_text())


@dataclass(frozen=True)
class PoolSavings:
    pool: str
    hours: Fraction  # elapsed hours in the week
    baseline: Baseline | None  # None: no baseline known; the pool is not counted
    scheduled_node_hours: Fraction | None
    profile: str | None = None
    vm_size: str | None = None
    price: float | None = None  # per node-hour

    @property
    def baseline_node_hours(self) -> Fraction | None:
        return None if self.baseline is None else self.baseline.nodes * self.hours

    @property
    def saved_node_hours(self) -> Fraction | None:
        base, scheduled = self.baseline_node_hours, self.scheduled_node_hours
        return None if base is None or scheduled is None else base - scheduled

    @property
    def saved_money(self) -> float | None:
        saved = self.saved_node_hours
        return None if saved is None or self.price is None else float(saved) * self.price

    def to_json(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "profile": self.profile,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "hours_in_week": _number(self.hours),
            "baseline_node_hours": _number(self.baseline_node_hours),
            "scheduled_node_hours": _number(self.scheduled_node_hours),
            "saved_node_hours": _number(self.saved_node_hours),
            "vm_size": self.vm_size,
            "price_per_hour": self.price,
            "saved_money": _money(self.saved_money),
        }


@dataclass(frozen=True)
class Totals:
    baseline_node_hours: Fraction = Fraction(0)
    scheduled_node_hours: Fraction = Fraction(0)
    saved_money: float = 0.0
    counted_pools: int = 0  # pools with a baseline
    priced_pools: int = 0

    @property
    def saved_node_hours(self) -> Fraction:
        return self.baseline_node_hours - self.scheduled_node_hours

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.baseline_node_hours + other.baseline_node_hours,
            self.scheduled_node_hours + other.scheduled_node_hours,
            self.saved_money + other.saved_money,
            self.counted_pools + other.counted_pools,
            self.priced_pools + other.priced_pools,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "baseline_node_hours": _number(self.baseline_node_hours),
            "scheduled_node_hours": _number(self.scheduled_node_hours),
            "saved_node_hours": _number(self.saved_node_hours),
            "saved_money": _money(self.saved_money) if self.priced_pools else None,
            "counted_pools": self.counted_pools,
            "priced_pools": self.priced_pools,
        }


def totals(pools: Iterable[PoolSavings]) -> Totals:
    total = Totals()
    for pool in pools:
        base, scheduled = pool.baseline_node_hours, pool.scheduled_node_hours
        if base is None or scheduled is None:
            continue
        money = pool.saved_money
        total += Totals(base, scheduled, money or 0.0, 1, 0 if money is None else 1)
    return total


@dataclass(frozen=True)
class ClusterSavings:
    cluster: str  # rg/name
    timezone: str
    start: datetime  # UTC (subtracting two times of one ZoneInfo would ignore DST)
    end: datetime
    pools: tuple[PoolSavings, ...]

    @property
    def hours(self) -> Fraction:
        return _hours(self.start, self.end)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    @property
    def total(self) -> Totals:
        return totals(self.pools)

    def pool(self, name: str) -> PoolSavings | None:
        return next((p for p in self.pools if p.pool == name), None)

    def to_json(self, with_pools: bool = True) -> dict[str, object]:
        document: dict[str, object] = {
            "cluster": self.cluster,
            "timezone": self.timezone,
            "week_start": self.local(self.start).isoformat(),
            "week_end": self.local(self.end).isoformat(),
            "hours_in_week": _number(self.hours),
        }
        if with_pools:
            document["pools"] = [pool.to_json() for pool in self.pools]
        document["total"] = self.total.to_json()
        return document


def cluster_savings(
    cluster: ClusterSchedule,
    start: datetime,
    end: datetime,
    options: SavingsOptions,
    pools: Iterable[str] | None = None,
    fallbacks: Mapping[str, Baseline] | None = None,
) -> ClusterSavings:
    """Savings of `pools` (default: every pool the cluster's schedule names) from `start` to
    `end`. `fallbacks`: a baseline per pool for when neither the user nor a window gives one."""
    key = cluster.target.key
    found = []
    for pool in cluster.pool_names if pools is None else pools:
        baseline = (
            _lookup(options.baselines, key, pool, everywhere=True)
            or largest_window(cluster, pool, options.autoscale)
            or (fallbacks or {}).get(pool)
        )
        vm_size = _lookup(options.vm_sizes, key, pool)
        price = _lookup(options.pool_prices, key, pool)
        if price is None and options.prices is not None:
            price = options.prices.price(vm_size)
        scheduled: Fraction | None = None
        if baseline is not None:
            scheduled = Fraction(0)
            for stretch in stretches(cluster, pool, start, end):
                nodes = state_nodes(stretch.state, options.autoscale)
                scheduled += (baseline.nodes if nodes is None else nodes) * Fraction(
                    stretch.seconds, SECONDS_PER_HOUR
                )
        hours = _hours(start, end)
        found.append(
            PoolSavings(
                pool, hours, baseline, scheduled, cluster.profile_of(pool), vm_size or None, price
            )
        )
    return ClusterSavings(
        key, cluster.timezone, start.astimezone(UTC), end.astimezone(UTC), tuple(found)
    )


def _lookup(values: Mapping[str, T], cluster: str, pool: str, everywhere: bool = False) -> T | None:
    qualified = f"{cluster}/{pool}".lower()
    for key, value in values.items():
        if key.lower() == qualified:
            return value
    if pool in values:
        return values[pool]
    return values.get(ALL_POOLS) if everywhere else None


def _hours(start: datetime, end: datetime) -> Fraction:
    """Real elapsed hours (both instants compared in UTC)."""
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    return Fraction(round(elapsed.total_seconds()), SECONDS_PER_HOUR)


def _number(value: Fraction | None) -> float | int | None:
    """Exact when whole (JSON 96, not 96.0); else rounded to 4 decimals."""
    if value is None:
        return None
    if value.denominator == 1:
        return int(value)
    return round(float(value), 4)


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
