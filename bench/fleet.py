"""Fleet: one schedule transition over many clusters in several subscriptions (issue 10).

The scenario: `subscriptions x resource_groups x clusters_per_resource_group` clusters of
`pools_per_cluster` (5) pools each in the AKS emulator, and one schedule file whose window
starts at the current UTC minute, so every pool's scheduled state has just changed: `system`
3 → 2 nodes (a System pool keeps at least one), `batch` 2 → 5, `web` autoscaled 1–5 → 2–8,
`gpu` stopped → started, `batch2` 2 nodes → stopped. The clusters of the first subscription
are named in the file; the others are picked by one `select = { tag = ... }` entry (one Resource
Graph query). The allowlist covers the fleet with `sub/*/*` entries.

The timer function registered in `function_app.py` fires once, in this process; the
`scale-reconcile` (and `scale-intents`) queues are drained by `workers` child processes
(`python -m bench.worker fleet`), each the function app under the local Functions host with
host.json's settings: several Flex Consumption instances, each with the app's real bootstrap
and its own rate limiter. A handful of intents (hold `batch` at 6 for an hour, on distinct
clusters) are sent right after the tick, during the transition.

Every result is set against a reference from the same run: the time to converge against the
least time the emulator's token buckets allow for the transition's reads and writes
(`transition_bound`, from `control.throttle()`), the tick's duration against the same tick over
a 10-cluster fleet, the read strategy of `SCALER_FLEET_LIST_MIN_CLUSTERS` (default 3) against
the per-cluster reads of `0`.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bench.common import app_env, app_environment, fresh_state, median, queue, user_function
from local.aks_emulator.fleet import fleet_seed
from local.stack import LocalStack
from scaler.settings import (
    INTENTS_QUEUE,
    POISON_QUEUE,
    RECONCILE_QUEUE,
    RESULTS_QUEUE,
    SETTINGS,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

TAG_NAME, TAG_VALUE = "scaler-fleet", "bench"
# The emulator names a cluster's 5th pool `batch-2`, which is not an AKS pool name (Linux pools:
# lowercase letters and digits, at most 12); the seed is generated with the emulator's own
# fleet_seed and that pool renamed, so all 5 pools of every cluster can be scheduled.
EMULATOR_FIFTH_POOL, FIFTH_POOL = "batch-2", "batch2"

# Pool → (state before the window, state in it): TOML pool forms. Each is a change AKS accepts
# for the emulator's fleet pools (fleet.POOL_TEMPLATES): a manual System pool scaled down but
# not below 1, a manual pool scaled up, an autoscaled pool's bounds moved (its count moves into
# them), a stopped pool started, a running pool stopped.
SCHEDULE: dict[str, tuple[str, str]] = {
    "system": ("3", "2"),
    "batch": ("2", "5"),
    "web": ("{ min = 1, max = 5 }", "{ min = 2, max = 8 }"),
    "gpu": ('{ power = "Stopped" }', '{ power = "Running" }'),
    FIFTH_POOL: ("2", '{ power = "Stopped" }'),
}
# What each pool must show in `control.pools()` once converged: (kind, value).
TARGETS: dict[str, tuple[str, Any]] = {
    "system": ("count", 2),
    "batch": ("count", 5),
    "web": ("autoscale", (2, 8)),
    "gpu": ("power", "Running"),
    FIFTH_POOL: ("power", "Stopped"),
}
# The intents sent during the transition: hold `batch` at 6 (it outranks the schedule's 5).
INTENT_POOL, INTENT_COUNT, INTENT_HOLD = "batch", 6, "PT1H"

# Read kinds in the emulator's request log.
LIST_KINDS = ("ListManagedClusters", "ListManagedClustersByResourceGroup")
CLUSTER_READ_KINDS = ("ListAgentPools", "GetAgentPool", "GetManagedCluster")


@dataclass(frozen=True)
class FleetShape:
    subscriptions: int
    resource_groups: int
    clusters_per_resource_group: int
    pools_per_cluster: int = 5

    @property
    def clusters(self) -> int:
        return self.subscriptions * self.resource_groups * self.clusters_per_resource_group

    @property
    def pools(self) -> int:
        return self.clusters * self.pools_per_cluster


@dataclass(frozen=True)
class Variant:
    """One transition run: the emulator's limits (Azure's, or lowered) and the read strategy."""

    limits: str  # "azure" or "lowered"
    list_min_clusters: int  # SCALER_FLEET_LIST_MIN_CLUSTERS: the default, or 0 (per cluster)

    @property
    def strategy(self) -> str:
        return "per-cluster reads" if self.list_min_clusters == 0 else "LIST managedClusters"

    @property
    def name(self) -> str:
        limits = "Azure's limits" if self.limits == "azure" else "lowered limits"
        return f"{self.strategy}, {limits}"


@dataclass(frozen=True)
class FleetPlan:
    fleet: FleetShape
    small: FleetShape  # the tick's reference fleet
    workers: int  # worker processes: Flex Consumption instances
    intents: int
    tick_repeats: int
    # The variant with lowered emulator limits: the bound at Azure's numbers is short next to
    # the app's own processing of the fleet on a small machine, so it says little about pacing.
    lowered_limits: dict[str, dict[str, float]]
    variants: tuple[Variant, ...]
    operation_seconds: float = 1.0
    guard_seconds: float = 300.0  # stops a run that does not converge; not a measurement


# The app's default SCALER_FLEET_LIST_MIN_CLUSTERS (the list strategy); 0 reads per cluster.
LIST_DEFAULT = int(next(s.default for s in SETTINGS if s.name == "SCALER_FLEET_LIST_MIN_CLUSTERS"))
ALL_VARIANTS = (
    Variant("azure", LIST_DEFAULT),
    Variant("azure", 0),
    Variant("lowered", LIST_DEFAULT),
    Variant("lowered", 0),
)
FULL = FleetPlan(
    fleet=FleetShape(4, 2, 25),
    small=FleetShape(2, 1, 5),
    workers=2,
    intents=8,
    tick_repeats=5,
    lowered_limits={"arm_writes": {"burst": 50, "refill_per_second": 5}},
    variants=ALL_VARIANTS,
)
QUICK = FleetPlan(
    fleet=FleetShape(4, 1, 5),
    small=FleetShape(2, 1, 3),
    workers=2,
    intents=4,
    tick_repeats=3,
    lowered_limits={"arm_writes": {"burst": 5, "refill_per_second": 2}},
    variants=ALL_VARIANTS,
    guard_seconds=120.0,
)


# -- the fleet, its schedule and its targets ---------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    subscription: str
    resource_group: str
    name: str
    tagged: bool  # picked by the schedule's `select` entry (else named in the file)

    @property
    def key(self) -> str:
        """`rg/cluster`, as `control.pools()` keys it."""
        return f"{self.resource_group}/{self.name}"


def build_fleet(shape: FleetShape) -> tuple[dict[str, Any], list[Cluster]]:
    """The emulator seed (fleet_seed's, 5th pool renamed) and its clusters: those of the first
    subscription named in the schedule, the others tagged for its `select` entry."""
    seed = fleet_seed(
        subscriptions=shape.subscriptions,
        resource_groups=shape.resource_groups,
        clusters_per_resource_group=shape.clusters_per_resource_group,
        pools_per_cluster=shape.pools_per_cluster,
    )
    first = seed["clusters"][0]["subscriptionId"]
    clusters = []
    for entry in seed["clusters"]:
        for pool in entry["agentPools"]:
            if pool["name"] == EMULATOR_FIFTH_POOL:
                pool["name"] = FIFTH_POOL
        tagged = entry["subscriptionId"] != first
        if tagged:
            entry["tags"] = {TAG_NAME: TAG_VALUE}
        clusters.append(
            Cluster(entry["subscriptionId"], entry["resourceGroup"], entry["name"], tagged)
        )
    return seed, clusters


def pool_names(shape: FleetShape) -> list[str]:
    return list(SCHEDULE)[: shape.pools_per_cluster]


def schedule_text(clusters: Sequence[Cluster], pools: Sequence[str], start: datetime) -> str:
    """One schedule: a daily window from `start` (UTC, whole minutes) for three hours."""
    end = start + timedelta(hours=3)
    window = f'days = "daily", start = "{start:%H:%M}", end = "{end:%H:%M}"'

    def pool_blocks() -> list[str]:
        lines = []
        for name in pools:
            before, during = SCHEDULE[name]
            lines += [
                f"[clusters.pools.{name}]",
                f"outside = {before}",
                f"windows = [{{ {window}, state = {during} }}]",
            ]
        return lines

    out = [
        "# bench/fleet.py: one transition of every pool at the window's start",
        'timezone = "UTC"',
        "",
    ]
    for cluster in clusters:
        if cluster.tagged:
            continue
        out += [
            "[[clusters]]",
            f'subscription_id = "{cluster.subscription}"',
            f'resource_group = "{cluster.resource_group}"',
            f'cluster = "{cluster.name}"',
            *pool_blocks(),
            "",
        ]
    if any(cluster.tagged for cluster in clusters):
        out += ["[[clusters]]", f'select = {{ tag = "{TAG_NAME}={TAG_VALUE}" }}', *pool_blocks()]
    return "\n".join(out) + "\n"


def allowlist(clusters: Iterable[Cluster]) -> str:
    return ",".join(sorted({f"{c.subscription}/*/*" for c in clusters}))


def intent_clusters(clusters: Sequence[Cluster], n: int) -> list[Cluster]:
    """`n` distinct clusters spread evenly over the fleet (so over its subscriptions)."""
    n = min(n, len(clusters))
    return [clusters[i * len(clusters) // n] for i in range(n)] if n else []


def intent_bodies(clusters: Sequence[Cluster], run: str) -> dict[str, str]:
    return {
        f"fleet-{run}-{i}": json.dumps(
            {
                "id": f"fleet-{run}-{i}",
                "subscription_id": c.subscription,
                "resource_group": c.resource_group,
                "cluster": c.name,
                "pools": {INTENT_POOL: INTENT_COUNT},
                "hold": INTENT_HOLD,
                "reason": "bench: an intent during the transition",
            }
        )
        for i, c in enumerate(clusters)
    }


def targets(
    clusters: Sequence[Cluster], pools: Sequence[str], held: Iterable[Cluster]
) -> dict[str, dict[str, tuple[str, Any]]]:
    """`rg/cluster` → pool → target; the intents' pools are held at INTENT_COUNT."""
    out = {c.key: {name: TARGETS[name] for name in pools} for c in clusters}
    for c in held:
        out[c.key][INTENT_POOL] = ("count", INTENT_COUNT)
    return out


def matches(properties: Mapping[str, Any], target: tuple[str, Any]) -> bool:
    kind, value = target
    power = (properties.get("powerState") or {}).get("code", "Running")
    if kind == "count":
        return (
            power == "Running"
            and not properties.get("enableAutoScaling")
            and properties.get("count") == value
        )
    if kind == "autoscale":
        low, high = value
        return (
            power == "Running"
            and bool(properties.get("enableAutoScaling"))
            and (properties.get("minCount"), properties.get("maxCount")) == (low, high)
        )
    return bool(power == value)


def off_target(
    pools: Mapping[str, Mapping[str, Mapping[str, Any]]],
    wanted: Mapping[str, Mapping[str, tuple[str, Any]]],
) -> list[str]:
    """`rg/cluster/pool` of every pool not (yet) at its target."""
    by_key = {key.lower(): value for key, value in pools.items()}
    missing = []
    for key, by_pool in wanted.items():
        found = {name.lower(): p for name, p in by_key.get(key.lower(), {}).items()}
        for name, target in by_pool.items():
            if not matches(found.get(name.lower(), {}), target):
                missing.append(f"{key}/{name}")
    return missing


# -- the bound ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """Tokens a transition takes from one of the emulator's buckets."""

    limit: str  # the emulator's limit name (arm_writes, aks_put_agent_pool, ...)
    scope: str  # which bucket: a subscription, a pool, ...
    tokens: int


@dataclass(frozen=True)
class Bound:
    seconds: float  # the least time the buckets allow
    need: Need | None  # the bucket that takes longest (None: everything fits in the bursts)
    burst: float = 0.0
    refill_per_second: float = 0.0  # time scale applied
    waits: tuple[tuple[Need, float], ...] = ()  # every bucket that has to refill, longest first

    def describe(self) -> str:
        if self.need is None:
            return "every request fits in its bucket's burst"
        n = self.need
        return (
            f"`{n.limit}` of {n.scope}: {n.tokens} requests, burst {self.burst:g}, "
            f"then {self.refill_per_second:g}/s → ({n.tokens} − {self.burst:g}) / "
            f"{self.refill_per_second:g}"
        )


def transition_needs(
    clusters: Sequence[Cluster],
    pools_per_cluster: int,
    list_min_clusters: int,
    page_size: int,
    writes_per_pool: int = 1,
    resource_graph_page: int = 1000,
) -> list[Need]:
    """The requests a transition cannot do without, per bucket: per subscription, the reads
    (the pages of one LIST managedClusters when the tick lists it, else one pool list per
    cluster) and one write per pool; per pool, its write; the Resource Graph query pages for the
    tagged clusters (never counted by Resource Manager's buckets)."""
    by_subscription: dict[str, list[Cluster]] = {}
    for cluster in clusters:
        by_subscription.setdefault(cluster.subscription.lower(), []).append(cluster)
    needs = []
    tagged = sum(1 for cluster in clusters if cluster.tagged)
    if tagged:
        needs.append(
            Need("resource_graph", "the principal", math.ceil(tagged / resource_graph_page))
        )
    for subscription, group in by_subscription.items():
        where = f"subscription {subscription}"
        listed = bool(list_min_clusters) and len(group) >= list_min_clusters
        if listed:
            pages = math.ceil(len(group) / page_size)
            needs.append(Need("arm_reads", where, pages))
            needs.append(Need("aks_list_managed_clusters_subscription", where, pages))
        else:
            needs.append(Need("arm_reads", where, len(group)))
            needs.append(Need("aks_other", where, len(group)))
        writes = len(group) * pools_per_cluster * writes_per_pool
        needs.append(Need("arm_writes", where, writes))
    if clusters and pools_per_cluster:
        needs.append(Need("aks_put_agent_pool", "each pool", writes_per_pool))
    return needs


def transition_bound(
    needs: Iterable[Need], limits: Mapping[str, Mapping[str, Any]], time_scale: float = 1.0
) -> Bound:
    """The least time the buckets allow: each bucket starts full (`burst`) and refills at
    `refill_per_second x time_scale`, so N requests through one take at least
    max(0, N − burst) / refill seconds; buckets refill side by side, so the transition takes at
    least the longest of those. A lower bound: it leaves out the order of requests (a cluster's
    writes come after its read) and the app's own time. A window limit (Resource Graph's) gives
    back its whole quota per window instead."""
    waits = []
    for need in needs:
        limit = limits.get(need.limit)
        if limit is None:
            continue
        burst = float(limit["burst"])
        extra = need.tokens - burst
        if extra <= 0:
            continue
        window = limit.get("window_seconds")
        if window:
            seconds = math.ceil(extra / burst) * float(window) / time_scale
            rate = burst / float(window) * time_scale
        else:
            rate = float(limit["refill_per_second"]) * time_scale
            seconds = extra / rate if rate > 0 else math.inf
        waits.append((need, seconds, burst, rate))
    if not waits:
        return Bound(0.0, None)
    waits.sort(key=lambda w: -w[1])
    need, seconds, burst, rate = waits[0]
    return Bound(seconds, need, burst, rate, tuple((w[0], w[1]) for w in waits))


# -- results -----------------------------------------------------------------------------------


@dataclass
class TickTiming:
    clusters: int
    subscriptions: int
    samples: list[float]  # warm ticks, seconds
    first: float  # the first tick of the process (clients built, token fetched)
    requests: dict[str, int]  # the emulator's request log for one tick, by kind
    queued: int  # scale-reconcile messages one tick sent
    # One more tick with the adapters' calls timed: "find_tagged" (Resource Graph),
    # "list_clusters" (LIST pages and their parsing), "request_reconciles" (the sends), "total".
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return median(self.samples)


@dataclass
class SubscriptionReads:
    pages: int  # LIST managedClusters requests (each page is one)
    cluster_reads: int  # a cluster's own pool list (or GET), clusters without an intent
    intent_reads: int  # the same, for the intents' clusters
    expected_pages: int  # ceil(clusters / page size)
    clusters: int


@dataclass
class TransitionRun:
    variant: Variant
    clusters: int
    pools: int
    subscriptions: int
    workers: int
    limits: dict[str, dict[str, Any]]  # the emulator's, as control.throttle() said
    time_scale: float
    page_size: int
    bound: Bound
    tick_seconds: float
    converge_seconds: float | None  # tick fired → the last write a pool needed (None: never)
    # Tick fired → the write that brought the pool to its target, over every pool, sorted.
    reached: list[float]
    schedule_converge_seconds: float | None  # the same without the intents' pools
    first_write_seconds: float | None  # tick fired → first accepted PUT
    # Per subscription with more writes than the ARM write burst: when its burst-th write was
    # accepted (the bound assumes the burst is spent at once).
    burst_spent: dict[str, float]
    # Per subscription: its first and last accepted write, seconds after the tick.
    write_span: dict[str, tuple[float, float]]
    off_target: list[str]  # pools not at their target at the end
    requests: int  # ARM requests (token requests excluded)
    status_429: int
    by_kind: dict[str, dict[str, int]]  # kind → status → n
    throttled_by: dict[str, int]  # emulator bucket → 429s
    reads: dict[str, SubscriptionReads]
    writes: int
    writes_accepted: int
    write_statuses: dict[str, int]
    intents: list[str]
    finals: dict[str, list[dict[str, Any]]]  # intent id → its final outcomes
    history: dict[str, list[str]]  # intent id → every outcome published for it, in order
    race_lost: int  # outcomes of reconciles that lost the commit race to another (RaceLost)
    # Intents whose final outcome is `unchanged` although a reconcile of their cluster that then
    # lost the commit race wrote their pool (its RaceLost outcome reports the write).
    written_by_loser: list[str]
    outcomes: dict[str, int]  # every published outcome, by kind
    timer_outcomes: dict[str, int]  # the tick's per-cluster outcomes (schedule-…), by kind
    outcome_throttled: int  # sum of `throttled` over every published outcome
    workers_report: list[dict[str, Any]]
    poison: dict[str, int]  # messages on poison queues at the end
    seconds: float  # the whole run, for the record

    @property
    def share_429(self) -> float:
        return self.status_429 / self.requests if self.requests else 0.0

    @property
    def ratio(self) -> float | None:
        if self.converge_seconds is None or self.bound.seconds <= 0:
            return None
        return self.converge_seconds / self.bound.seconds

    @property
    def lost(self) -> list[str]:
        return [i for i in self.intents if not self.finals.get(i)]

    @property
    def duplicated(self) -> list[str]:
        """Intents with more than one distinct final outcome (same outcome_id = one)."""
        return [
            i for i, docs in self.finals.items() if len({d.get("outcome_id") for d in docs}) > 1
        ]

    def limiter(self, counter: str) -> float:
        return sum(float(w.get("limiter", {}).get(counter, 0)) for w in self.workers_report)

    def reached_at(self, share: float) -> float | None:
        """Seconds after the tick by which `share` of the pools had their final write."""
        if not self.reached:
            return None
        return self.reached[max(0, math.ceil(share * len(self.reached)) - 1)]

    @property
    def pages(self) -> int:
        return max((r.pages for r in self.reads.values()), default=0)

    @property
    def expected_pages(self) -> int:
        return max((r.expected_pages for r in self.reads.values()), default=0)

    @property
    def cluster_reads(self) -> int:
        """The most reads of clusters' own pools in one subscription (intents' clusters apart)."""
        return max((r.cluster_reads for r in self.reads.values()), default=0)

    @property
    def intent_reads(self) -> int:
        return sum(r.intent_reads for r in self.reads.values())

    @property
    def deferred(self) -> int:
        return self.outcomes.get("deferred", 0)

    def final_kinds(self) -> dict[str, int]:
        return dict(
            sorted(
                Counter(
                    str(d.get("outcome")) for docs in self.finals.values() for d in docs
                ).items()
            )
        )


@dataclass
class FleetResult:
    plan: FleetPlan
    tick: TickTiming
    tick_small: TickTiming
    runs: list[TransitionRun] = field(default_factory=list)
    seconds: float = 0.0

    def run(self, limits: str, list_min_clusters: int) -> TransitionRun | None:
        for run in self.runs:
            if (run.variant.limits, run.variant.list_min_clusters) == (limits, list_min_clusters):
                return run
        return None


# -- measuring ---------------------------------------------------------------------------------


def measure(stack: LocalStack, plan: FleetPlan, logs: Path, step: Any = None) -> FleetResult:
    started = time.monotonic()
    say = step or (lambda what, detail: None)
    say("fleet", f"tick over {plan.fleet.clusters} clusters, {plan.tick_repeats} repeats")
    tick = tick_timing(stack, plan.fleet, plan.tick_repeats, logs)
    say("fleet", f"tick over {plan.small.clusters} clusters, {plan.tick_repeats} repeats")
    tick_small = tick_timing(stack, plan.small, plan.tick_repeats, logs)
    result = FleetResult(plan, tick, tick_small)
    for variant in plan.variants:
        say("fleet", f"transition of {plan.fleet.pools} pools: {variant.name}")
        result.runs.append(transition(stack, plan, variant, logs))
    fresh_state(stack)
    result.seconds = time.monotonic() - started
    return result


def _prepare(
    stack: LocalStack, shape: FleetShape, logs: Path, name: str
) -> tuple[list[Cluster], dict[str, str]]:
    """Emulator seeded with the fleet, queues and table empty, the schedule written; returns
    the clusters and the app's settings."""
    seed, clusters = build_fleet(shape)
    fresh_state(stack)
    stack.emulator.control.reset(seed)
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    path = logs / f"{name}.toml"
    path.write_text(schedule_text(clusters, pool_names(shape), start))
    env = {
        "SCALER_SCHEDULE_FILE": str(path),
        "SCALER_ALLOWED_CLUSTERS": allowlist(clusters),
    }
    return clusters, env


def _timer() -> Any:
    from azure.functions.timer import TimerRequest

    call = user_function("scale_schedule")
    return lambda: call(TimerRequest(past_due=False))


def tick_timing(stack: LocalStack, shape: FleetShape, repeats: int, logs: Path) -> TickTiming:
    """The registered timer function alone, in this process, warm: its own duration (Resource
    Graph query, LIST pages, one message per cluster), nothing drains the queue."""
    from scaler import bootstrap

    clusters, env = _prepare(stack, shape, logs, f"tick-{shape.clusters}")
    control = stack.emulator.control
    samples = []
    with app_environment(stack, **env), queue(stack, RECONCILE_QUEUE) as reconcile:
        fire = _timer()
        started = time.perf_counter()
        fire()
        first = time.perf_counter() - started
        queued = reconcile.get_queue_properties().approximate_message_count or 0
        for i in range(repeats):
            reconcile.clear_messages()
            control.refill_buckets()
            if i == repeats - 1:
                control.clear_requests()
            started = time.perf_counter()
            fire()
            samples.append(time.perf_counter() - started)
        reconcile.clear_messages()
        requests = Counter(
            str(r.get("kind")) for r in control.requests_log() if r.get("kind") != "Token"
        )
        control.refill_buckets()
        parts = _timed_parts(fire)
        reconcile.clear_messages()
        bootstrap.reset()
    subscriptions = len({c.subscription for c in clusters})
    return TickTiming(len(clusters), subscriptions, samples, first, dict(requests), queued, parts)


def _timed_parts(fire: Any) -> dict[str, float]:
    """One tick with the three adapter calls it makes timed, by wrapping their classes' methods
    for that tick only (not the timed samples): where the tick's time goes."""
    from scaler.adapters.aks import AksGateway
    from scaler.adapters.queues import QueueMessages
    from scaler.adapters.resource_graph import ResourceGraphDirectory

    parts: dict[str, float] = {}
    methods = [
        (ResourceGraphDirectory, "find_tagged"),
        (AksGateway, "list_clusters"),
        (QueueMessages, "request_reconciles"),
    ]
    originals = [(cls, name, getattr(cls, name)) for cls, name in methods]

    def timed(name: str, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    for cls, name, method in originals:
        setattr(cls, name, timed(name, method))
    try:
        started = time.perf_counter()
        fire()
        parts["total"] = time.perf_counter() - started
    finally:
        for cls, name, method in originals:
            setattr(cls, name, method)
    return dict(parts)


class Worker:
    """`python -m bench.worker fleet`: the function app under the local Functions host, until
    its stdin closes; then one JSON line of what it did."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self._log: IO[str] = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", "fleet"],
            cwd=REPO_ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.log = log

    def wait_ready(self, timeout: float) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if '"ready"' not in line:
            self.stop()
            raise RuntimeError(f"bench.worker fleet did not start: {line!r}; see {self.log}")

    def stop(self) -> dict[str, Any]:
        try:  # communicate() closes stdin: the worker stops its host and reports
            output, _ = self.process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        self._log.close()
        lines = [line for line in output.splitlines() if line.startswith("{")]
        if self.process.returncode != 0 or not lines:
            raise RuntimeError(
                f"bench.worker fleet exited with {self.process.returncode}; see {self.log}"
            )
        report: dict[str, Any] = json.loads(lines[-1])
        return report


def transition(stack: LocalStack, plan: FleetPlan, variant: Variant, logs: Path) -> TransitionRun:
    from azure.storage.queue import QueueClient

    from scaler import bootstrap

    run_started = time.monotonic()
    name = f"{variant.limits}-{variant.list_min_clusters}"
    clusters, env = _prepare(stack, plan.fleet, logs, f"transition-{name}")
    control = stack.emulator.control
    control.set_operation_seconds(plan.operation_seconds)
    if variant.limits == "lowered":
        control.set_limits(plan.lowered_limits)
    env["SCALER_FLEET_LIST_MIN_CLUSTERS"] = str(variant.list_min_clusters)
    env["SCALER_OPERATION_SECONDS"] = f"{plan.operation_seconds:g}"
    pools = pool_names(plan.fleet)
    held = intent_clusters(clusters, plan.intents)
    wanted = targets(clusters, pools, held)
    bodies = intent_bodies(held, name)

    workers = [
        Worker(app_env(stack, **env), logs / f"worker-{name}-{i}.log") for i in range(plan.workers)
    ]
    reports: list[dict[str, Any]] = []
    try:
        for worker in workers:
            worker.wait_ready(timeout=120)
        with app_environment(stack, **env):
            from scaler.settings import Settings

            bootstrap.credential().get_token(Settings.from_env().arm_scope)  # a warm instance
            bootstrap.schedule_tick()
            fire = _timer()
            throttle = control.throttle()
            limits = {k: dict(v) for k, v in throttle["limits"].items()}
            time_scale = float(throttle["time_scale"])
            page_size = int(control.config()["list_page_size"])
            control.refill_buckets()
            control.clear_requests()
            t0 = time.time()
            started = time.perf_counter()
            fire()
            tick_seconds = time.perf_counter() - started
            with QueueClient.from_connection_string(
                stack.azurite.connection_string, INTENTS_QUEUE
            ) as intents:
                for body in bodies.values():
                    intents.send_message(body)
            results: list[dict[str, Any]] = []
            converged = _wait_converged(stack, wanted, t0 + plan.guard_seconds)
            _wait_quiet(stack, set(bodies), results, t0 + plan.guard_seconds + 60)
            bootstrap.reset()
    finally:
        for worker in workers:
            try:
                reports.append(worker.stop())
            except RuntimeError as error:
                print(f"[bench] fleet: {error}", file=sys.stderr)
    results += _take_all(stack)
    log = [r for r in control.requests_log() if r.get("kind") != "Token"]
    final_pools = control.pools()
    missing = off_target(final_pools, wanted)
    stats = control.stats()
    poison = _poison_counts(stack)

    writes = [r for r in log if r.get("kind") == "PutAgentPool"]
    accepted = [r for r in writes if 200 <= int(r["status"] or 0) < 300]
    last_write: dict[str, float] = {}
    for r in accepted:
        key = _pool_key(r["path"])
        last_write[key] = max(last_write.get(key, 0.0), float(r["time"]))
    converge = schedule_converge = None
    wanted_keys = {f"{k}/{p}".lower() for k, by in wanted.items() for p in by}
    held_keys = {f"{c.key}/{INTENT_POOL}".lower() for c in held}
    reached = sorted(t - t0 for key, t in last_write.items() if key in wanted_keys)
    if converged and not missing:
        converge = reached[-1] if reached else 0.0
        schedule_converge = max(
            (t - t0 for key, t in last_write.items() if key in wanted_keys - held_keys),
            default=0.0,
        )
    first_write = min((float(r["time"]) for r in accepted), default=None)
    burst_spent, write_span = _subscription_writes(accepted, clusters, len(pools), limits, t0)

    by_kind: dict[str, Counter[str]] = {}
    for r in log:
        by_kind.setdefault(str(r.get("kind")), Counter())[str(r["status"])] += 1
    reads = _reads(log, clusters, held, page_size, variant.list_min_clusters)
    finals: dict[str, list[dict[str, Any]]] = {i: [] for i in bodies}
    kinds: Counter[str] = Counter()
    timer_kinds: Counter[str] = Counter()
    throttled_in_outcomes = 0
    history: dict[str, list[str]] = {i: [] for i in bodies}
    for doc in sorted(results, key=lambda d: str(d.get("at"))):
        if doc.get("intent_id") in history:
            history[doc["intent_id"]].append(str(doc.get("outcome")))
    for doc in results:
        kinds[str(doc.get("outcome"))] += 1
        throttled_in_outcomes += int(doc.get("throttled") or 0)
        if doc.get("source") == "timer":
            timer_kinds[str(doc.get("outcome"))] += 1
        if doc.get("final") and doc.get("intent_id") in finals:
            finals[doc["intent_id"]].append(doc)
    race_lost = [d for d in results if (d.get("error") or {}).get("code") == "RaceLost"]
    loser_writes = {
        (str(d.get("cluster")).lower(), str(p.get("pool")))
        for d in race_lost
        for p in d.get("pools") or []
        if p.get("outcome") == "started"
    }
    written_by_loser = [
        i
        for i, docs in finals.items()
        for d in docs[:1]
        if d.get("outcome") == "unchanged"
        and (str(d.get("cluster")).lower(), INTENT_POOL) in loser_writes
    ]
    needs = transition_needs(clusters, len(pools), variant.list_min_clusters, page_size)
    return TransitionRun(
        variant=variant,
        clusters=len(clusters),
        pools=len(clusters) * len(pools),
        subscriptions=len({c.subscription for c in clusters}),
        workers=plan.workers,
        limits=limits,
        time_scale=time_scale,
        page_size=page_size,
        bound=transition_bound(needs, limits, time_scale),
        tick_seconds=tick_seconds,
        converge_seconds=converge,
        reached=reached,
        schedule_converge_seconds=schedule_converge,
        first_write_seconds=None if first_write is None else first_write - t0,
        burst_spent=burst_spent,
        write_span=write_span,
        off_target=missing,
        requests=len(log),
        status_429=sum(1 for r in log if r["status"] == 429),
        by_kind={k: dict(v) for k, v in sorted(by_kind.items())},
        throttled_by=dict(stats.get("throttled_by_bucket") or {}),
        reads=reads,
        writes=len(writes),
        writes_accepted=len(accepted),
        write_statuses=dict(sorted(Counter(str(r["status"]) for r in writes).items())),
        intents=list(bodies),
        finals=finals,
        history=history,
        race_lost=len(race_lost),
        written_by_loser=written_by_loser,
        outcomes=dict(sorted(kinds.items())),
        timer_outcomes=dict(sorted(timer_kinds.items())),
        outcome_throttled=throttled_in_outcomes,
        workers_report=reports,
        poison=poison,
        seconds=time.monotonic() - run_started,
    )


def _subscription_writes(
    accepted: Sequence[Mapping[str, Any]],
    clusters: Sequence[Cluster],
    pools_per_cluster: int,
    limits: Mapping[str, Mapping[str, Any]],
    t0: float,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Per subscription, seconds after the tick: when its burst-th write was accepted (only
    those that need more writes than Resource Manager's write burst; the bound takes the burst
    as spent at once, this is how long the app took to send it), and its first and last
    accepted write."""
    needed = Counter(c.subscription.lower() for c in clusters)
    times: dict[str, list[float]] = {}
    for r in accepted:
        parts = _path_parts(str(r["path"]))
        if len(parts) > 1 and parts[0] == "subscriptions":
            times.setdefault(parts[1], []).append(float(r["time"]) - t0)
    span = {sub: (min(ts), max(ts)) for sub, ts in times.items() if ts}
    limit = limits.get("arm_writes")
    if limit is None:
        return {}, span
    burst = int(limit["burst"])
    spent = {}
    for subscription, n in needed.items():
        writes = sorted(times.get(subscription, []))
        if n * pools_per_cluster > burst and len(writes) >= burst:
            spent[subscription] = writes[burst - 1]
    return spent, span


def _wait_converged(
    stack: LocalStack, wanted: Mapping[str, Mapping[str, tuple[str, Any]]], deadline: float
) -> bool:
    """Polls `control.pools()` until every pool is at its target (the time itself is taken
    from the request log afterwards, to the millisecond)."""
    control = stack.emulator.control
    while time.time() < deadline:
        if not off_target(control.pools(), wanted):
            return True
        time.sleep(0.5)
    return False


def _wait_quiet(
    stack: LocalStack,
    intents: set[str],
    results: list[dict[str, Any]],
    deadline: float,
    quiet: float = 3.0,
) -> None:
    """Until every intent has a final outcome and Resource Manager has seen no request for
    `quiet` seconds (follow-up reconciles counted too). Outcomes read meanwhile go to
    `results`."""
    control = stack.emulator.control
    last_total, last_change = -1, time.time()
    while time.time() < deadline:
        results += _take_all(stack)
        finals = {d.get("intent_id") for d in results if d.get("final")}
        total = int(control.stats().get("total", 0))
        if total != last_total:
            last_total, last_change = total, time.time()
        if intents <= finals and time.time() - last_change >= quiet:
            return
        time.sleep(0.5)


def _take_all(stack: LocalStack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with queue(stack, RESULTS_QUEUE) as client:
        while page := list(client.receive_messages(max_messages=32, visibility_timeout=600)):
            for message in page:
                found.append(json.loads(message.content))
            for message in page:
                client.delete_message(message)
    return found


def _poison_counts(stack: LocalStack) -> dict[str, int]:
    from azure.core.exceptions import ResourceNotFoundError

    counts = {}
    for name in (POISON_QUEUE, f"{RECONCILE_QUEUE}-poison"):
        try:
            with queue(stack, name) as client:
                counts[name] = client.get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            counts[name] = 0
    return counts


def _path_parts(path: str) -> list[str]:
    return [part.lower() for part in path.split("?")[0].strip("/").split("/")]


def _pool_key(path: str) -> str:
    """`rg/cluster/pool` of an agent pool's path."""
    parts = _path_parts(path)
    try:
        rg = parts[parts.index("resourcegroups") + 1]
        cluster = parts[parts.index("managedclusters") + 1]
        pool = parts[parts.index("agentpools") + 1]
    except (ValueError, IndexError):
        return path.lower()
    return f"{rg}/{cluster}/{pool}"


def _reads(
    log: Sequence[Mapping[str, Any]],
    clusters: Sequence[Cluster],
    held: Sequence[Cluster],
    page_size: int,
    list_min_clusters: int,
) -> dict[str, SubscriptionReads]:
    per_sub: dict[str, list[Cluster]] = {}
    for c in clusters:
        per_sub.setdefault(c.subscription.lower(), []).append(c)
    held_names = {c.name.lower() for c in held}
    out = {}
    for subscription, group in per_sub.items():
        listed = bool(list_min_clusters) and len(group) >= list_min_clusters
        out[subscription] = SubscriptionReads(
            pages=0,
            cluster_reads=0,
            intent_reads=0,
            expected_pages=math.ceil(len(group) / page_size) if listed else 0,
            clusters=len(group),
        )
    for r in log:
        parts = _path_parts(str(r["path"]))
        if len(parts) < 2 or parts[0] != "subscriptions" or parts[1] not in out:
            continue
        reads = out[parts[1]]
        kind = r.get("kind")
        if kind in LIST_KINDS:
            reads.pages += 1
        elif kind in CLUSTER_READ_KINDS:
            name = parts[parts.index("managedclusters") + 1] if "managedclusters" in parts else ""
            if name in held_names:
                reads.intent_reads += 1
            else:
                reads.cluster_reads += 1
    return out
