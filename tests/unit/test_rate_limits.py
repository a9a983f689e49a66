"""The app's Resource Manager token buckets: what a request takes from, pacing, Azure's answers,
threads, and the azure-core policy in a real pipeline (fake clock, fake sleep, canned HTTP)."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.adapters.rate_limits import (
    AZURE_LIMITS,
    Limit,
    RateLimiter,
    RateLimitPolicy,
    Throttled,
    classify,
)

ARM = "https://management.azure.com"
SUB = "/subscriptions/Sub-1"
GROUP = f"{SUB}/resourceGroups/RG-1"
AKS = "providers/Microsoft.ContainerService"
CLUSTER = f"{GROUP}/{AKS}/managedClusters/C1"
POOL = f"{CLUSTER}/agentPools/Pool1"
POOLS = f"{CLUSTER}/agentPools"
GRAPH = "/providers/Microsoft.ResourceGraph/resources"
Q = "?api-version=2026-08-01"

SUB_SCOPE = ("sub-1",)
POOL_SCOPE = ("sub-1", "rg-1", "c1", "pool1")


class FakeClock:
    """Time that moves only when told to (or when the fake sleep sleeps)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records each sleep; advances the fake clock when given one, as a real sleep would."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


def limiter_on_fake_time(**kwargs: Any) -> tuple[RateLimiter, FakeClock, RecordingSleep]:
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    return RateLimiter(clock=clock, sleep=sleep, **kwargs), clock, sleep


# --- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("PUT", ARM + POOL + Q, [("arm_writes", SUB_SCOPE), ("aks_put_agent_pool", POOL_SCOPE)]),
        ("GET", ARM + POOL + Q, [("arm_reads", SUB_SCOPE), ("aks_other", SUB_SCOPE)]),
        ("GET", ARM + POOLS + Q, [("arm_reads", SUB_SCOPE), ("aks_other", SUB_SCOPE)]),
        ("DELETE", ARM + POOL, [("arm_deletes", SUB_SCOPE), ("aks_other", SUB_SCOPE)]),
        (
            "GET",
            ARM + CLUSTER,
            [("arm_reads", SUB_SCOPE), ("aks_get_managed_cluster", ("sub-1", "rg-1", "c1"))],
        ),
        (
            "PUT",
            ARM + CLUSTER,
            [("arm_writes", SUB_SCOPE), ("aks_put_managed_cluster", ("sub-1", "rg-1", "c1"))],
        ),
        (
            "POST",
            ARM + CLUSTER + "/listClusterUserCredential",
            [("arm_writes", SUB_SCOPE), ("aks_other", SUB_SCOPE)],
        ),
        (
            "GET",
            f"{ARM}{SUB}/{AKS}/managedClusters{Q}&$skipToken=2",
            [("arm_reads", SUB_SCOPE), ("aks_list_managed_clusters_subscription", SUB_SCOPE)],
        ),
        (
            "GET",
            f"{ARM}{GROUP}/{AKS}/managedClusters",
            [
                ("arm_reads", SUB_SCOPE),
                ("aks_list_managed_clusters_resource_group", ("sub-1", "rg-1")),
            ],
        ),
        (
            "GET",
            f"{ARM}{SUB}/{AKS}/locations/westeurope/operations/op-1{Q}",
            [("arm_reads", SUB_SCOPE), ("aks_get_operation_status", SUB_SCOPE)],
        ),
        # Segment case does not matter; scopes come out lower-case.
        (
            "put",
            ARM + POOL.upper() + Q,
            [("arm_writes", SUB_SCOPE), ("aks_put_agent_pool", POOL_SCOPE)],
        ),
        ("GET", POOL, [("arm_reads", SUB_SCOPE), ("aks_other", SUB_SCOPE)]),  # path only
        ("GET", f"{ARM}{GROUP}{Q}", [("arm_reads", SUB_SCOPE)]),  # not AKS: ARM only
        (
            "GET",
            f"{ARM}{SUB}/resourceGroups/RG-1/providers/Microsoft.Network/virtualNetworks/v",
            [("arm_reads", SUB_SCOPE)],
        ),
        ("POST", f"{ARM}{GRAPH}?api-version=2024-04-01", [("resource_graph", ())]),
        ("POST", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token", []),
        ("GET", "http://127.0.0.1:41234/msi/token?resource=x", []),
        ("GET", f"{ARM}/subscriptions", []),
        ("GET", "not a url at all", []),
        ("GET", "", []),
    ],
)
def test_classification(method: str, url: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert classify(method, url) == expected


def test_the_table_has_azures_numbers_and_the_emulators_names() -> None:
    assert AZURE_LIMITS["arm_reads"] == Limit(250, 25)
    assert AZURE_LIMITS["arm_writes"] == Limit(200, 10)
    assert AZURE_LIMITS["aks_put_agent_pool"] == Limit(20, 1 / 60)
    assert AZURE_LIMITS["aks_get_managed_cluster"] == Limit(60, 1)
    assert AZURE_LIMITS["aks_list_managed_clusters_subscription"] == Limit(500, 1)
    assert AZURE_LIMITS["aks_list_managed_clusters_resource_group"] == Limit(60, 1)
    assert AZURE_LIMITS["aks_other"] == Limit(60, 1)
    assert AZURE_LIMITS["resource_graph"] == Limit(15, 3)


def test_the_names_match_the_emulators() -> None:
    from local.aks_emulator.throttle import DEFAULT_LIMITS  # only the test looks at the emulator

    assert set(DEFAULT_LIMITS) <= set(AZURE_LIMITS)
    for name, limit in DEFAULT_LIMITS.items():
        assert (AZURE_LIMITS[name].burst, AZURE_LIMITS[name].refill_per_second) == (
            limit.burst,
            limit.refill_per_second,
        )


# --- pacing --------------------------------------------------------------------------------------


def test_a_burst_goes_at_once_then_each_request_sleeps_once_for_its_token() -> None:
    limiter, clock, sleep = limiter_on_fake_time()
    for _ in range(60):  # aks_other: 60 burst
        assert limiter.acquire("GET", ARM + POOLS) == 0
    assert sleep.calls == []

    assert limiter.acquire("GET", ARM + POOLS) == pytest.approx(1.0)  # 1 per s
    assert limiter.acquire("GET", ARM + POOLS) == pytest.approx(1.0)
    assert sleep.calls == pytest.approx([1.0, 1.0])  # one computed sleep per acquire
    assert limiter.admitted_count == 62
    assert limiter.waited_seconds == pytest.approx(2.0)
    assert clock.now == pytest.approx(1002.0)


def test_waiting_requests_queue_behind_each_other() -> None:
    """Reservations: three callers at the same instant wait 1, 2 and 3 s, not 1, 1 and 1."""
    clock = FakeClock()
    sleep = RecordingSleep()  # does not move the clock: the three arrive together
    limiter = RateLimiter(clock=clock, sleep=sleep, max_wait_seconds=5)
    for _ in range(60):
        limiter.acquire("GET", ARM + POOLS)
    waits = [limiter.acquire("GET", ARM + POOLS) for _ in range(3)]
    assert waits == pytest.approx([1.0, 2.0, 3.0])
    assert limiter.snapshot()[("aks_other", SUB_SCOPE)] == pytest.approx(-3.0)


def test_a_wait_longer_than_max_wait_raises_and_gives_the_tokens_back() -> None:
    limiter, clock, sleep = limiter_on_fake_time()
    for _ in range(20):  # aks_put_agent_pool: 20 burst, then 1 a minute
        limiter.acquire("PUT", ARM + POOL)

    with pytest.raises(Throttled) as refused:
        limiter.acquire("PUT", ARM + POOL)
    assert refused.value.limit == "aks_put_agent_pool"
    assert refused.value.retry_after == pytest.approx(60.0)
    assert refused.value.local is True
    assert sleep.calls == []
    snapshot = limiter.snapshot()
    assert snapshot[("aks_put_agent_pool", POOL_SCOPE)] == pytest.approx(0.0)  # not -1
    assert snapshot[("arm_writes", SUB_SCOPE)] == pytest.approx(180.0)  # not 179
    assert (limiter.paced_count, limiter.admitted_count) == (1, 20)

    # Another pool of the same cluster has its own bucket.
    assert limiter.acquire("PUT", ARM + CLUSTER + "/agentPools/other") == 0

    clock.advance(60)
    assert limiter.acquire("PUT", ARM + POOL) == 0


def test_the_longest_wait_of_the_buckets_decides() -> None:
    limits = {"arm_writes": Limit(1, 0.5), "aks_put_agent_pool": Limit(1, 0.25)}
    limiter, _, sleep = limiter_on_fake_time(limits=limits, max_wait_seconds=10)
    limiter.acquire("PUT", ARM + POOL)
    limiter.acquire("PUT", ARM + POOL)
    assert sleep.calls == pytest.approx([4.0])  # the pool's 4 s, not Resource Manager's 2 s


def test_requests_that_take_no_bucket_never_wait() -> None:
    limiter, _, sleep = limiter_on_fake_time(max_wait_seconds=0)
    for _ in range(1000):
        limiter.acquire("POST", "https://login.microsoftonline.com/t/oauth2/v2.0/token")
    assert sleep.calls == [] and limiter.snapshot() == {}


def test_time_scale_multiplies_the_refill() -> None:
    limiter, _, sleep = limiter_on_fake_time(time_scale=60)
    for _ in range(20):
        limiter.acquire("PUT", ARM + POOL)
    limiter.acquire("PUT", ARM + POOL)  # 1 a minute at 60x: a second
    assert sleep.calls == pytest.approx([1.0])


def test_delay_for_takes_nothing() -> None:
    limiter, _, _ = limiter_on_fake_time()
    for _ in range(20):
        limiter.acquire("PUT", ARM + POOL)
    assert limiter.delay_for("PUT", ARM + POOL) == pytest.approx(60.0)
    assert limiter.delay_for("PUT", ARM + POOL) == pytest.approx(60.0)
    assert limiter.delay_for("GET", ARM + POOL) == 0


@pytest.mark.parametrize(
    "kwargs", [{"time_scale": 0}, {"time_scale": float("nan")}, {"max_wait_seconds": -1}]
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("burst", "rate"), [(0, 1), (1, 0), (1, float("inf"))])
def test_limits_are_checked(burst: float, rate: float) -> None:
    with pytest.raises(ValueError):
        Limit(burst, rate)


# --- threads -------------------------------------------------------------------------------------


class ThreadedClock:
    """Shared fake time that creeps forward on every read, and remembers what each thread read
    (the limiter reads the clock once per acquire, so that is when its request was reserved)."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.lock = threading.Lock()
        self.read_by: dict[int, float] = {}

    def __call__(self) -> float:
        with self.lock:
            self.now += self.step
            self.read_by[threading.get_ident()] = self.now
            return self.now


def assert_within_bucket(times: list[float], burst: float, rate: float) -> None:
    """No window [t_i, t_j] holds more requests than the bucket allows: burst + rate x length."""
    times = sorted(times)
    for i, j in itertools.combinations_with_replacement(range(len(times)), 2):
        assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1e-6, (i, j, times[i], times[j])


@pytest.mark.parametrize("max_wait", [1_000_000.0, 2.0])
def test_threads_never_exceed_the_bucket(max_wait: float) -> None:
    threads_count, per_thread = 16, 40
    clock = ThreadedClock(step=0.003)
    sleeps: dict[int, list[float]] = {}

    def sleep(seconds: float) -> None:  # records instead of sleeping
        sleeps.setdefault(threading.get_ident(), []).append(seconds)

    limiter = RateLimiter(
        limits={"aks_other": Limit(60, 1)}, clock=clock, sleep=sleep, max_wait_seconds=max_wait
    )
    admitted: list[float] = []
    waited: dict[int, int] = {}
    refused = 0
    record = threading.Lock()
    start = threading.Barrier(threads_count)

    def worker() -> None:
        nonlocal refused
        start.wait()
        me = threading.get_ident()
        for _ in range(per_thread):
            try:
                wait = limiter.acquire("GET", ARM + POOLS)
            except Throttled:
                with record:
                    refused += 1
                continue
            with record:  # the request goes when its token exists
                admitted.append(clock.read_by[me] + wait)
                waited[me] = waited.get(me, 0) + (wait > 0)

    workers = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert len(admitted) + refused == threads_count * per_thread
    assert (limiter.admitted_count, limiter.paced_count) == (len(admitted), refused)
    assert_within_bucket(admitted, burst=60, rate=1)
    # Exactly one sleep per acquire that had to wait: no polling loop.
    assert {me: len(calls) for me, calls in sleeps.items()} == {
        me: n for me, n in waited.items() if n
    }
    if max_wait < 1000:
        assert refused > 0


# --- what Azure says -----------------------------------------------------------------------------


def test_remaining_quota_headers_lower_the_bucket_never_raise_it() -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + POOLS)
    limiter.observe("GET", ARM + POOLS, 200, {"X-Ms-Ratelimit-Remaining-Subscription-Reads": "10"})
    assert limiter.snapshot()[("arm_reads", SUB_SCOPE)] == 10

    # The subscription-wide (all principals) count counts too.
    limiter.observe(
        "GET",
        ARM + POOLS,
        200,
        {
            "x-ms-ratelimit-remaining-subscription-reads": "9",
            "x-ms-ratelimit-remaining-subscription-global-reads": "4",
        },
    )
    assert limiter.snapshot()[("arm_reads", SUB_SCOPE)] == 4

    limiter.observe("GET", ARM + POOLS, 200, {"x-ms-ratelimit-remaining-subscription-reads": "249"})
    assert limiter.snapshot()[("arm_reads", SUB_SCOPE)] == 4

    # Writes have their own count.
    limiter.observe("PUT", ARM + POOL, 200, {"x-ms-ratelimit-remaining-subscription-writes": "3"})
    assert limiter.snapshot()[("arm_writes", SUB_SCOPE)] == 3
    assert limiter.throttled_count == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ms-ratelimit-remaining-subscription-reads": "lots"},
        {"x-ms-ratelimit-remaining-subscription-reads": "-3"},
        {"x-ms-ratelimit-remaining-subscription-reads": "nan"},
        {"x-ms-ratelimit-remaining-subscription-reads": ""},
        {"Retry-After": "soon", "x-ms-retry-after-ms": "1e999"},
        {"x-ms-user-quota-resets-after": "3 seconds"},
    ],
)
def test_odd_headers_change_nothing_and_never_raise(headers: dict[str, str]) -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + POOLS)
    before = limiter.snapshot()
    assert limiter.observe("GET", ARM + POOLS, 200, headers) is None
    assert limiter.snapshot() == before


def test_odd_429s_never_raise() -> None:
    limiter, _, _ = limiter_on_fake_time()
    cases: list[tuple[dict[str, str], str | bytes | None]] = [
        ({"Retry-After": "soon"}, b"\xff\xfe"),
        ({}, "[1, 2]"),
        ({}, '{"error": "Throttled"}'),
        ({}, '{"error": {"code": 7, "message": null}}'),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ]
    for headers, body in cases:
        limiter.acquire("GET", ARM + POOLS)
        assert limiter.observe("GET", ARM + POOLS, 429, headers, body) is not None
    assert limiter.throttled_count == 5


def aks_throttled(handler: str, seconds: int) -> str:
    return json.dumps(
        {
            "error": {
                "code": "Throttled",
                "message": f"The {handler} request limit has been exceeded for SubID='sub-1', "
                f"please retry again in {seconds} seconds. For more information, please visit "
                "aka.ms/aks/throttling",
            }
        }
    )


def test_an_aks_429_blocks_its_bucket_until_retry_after_then_releases_it() -> None:
    limiter, clock, sleep = limiter_on_fake_time()
    limiter.acquire("PUT", ARM + POOL)
    seen = limiter.observe(
        "PUT",
        ARM + POOL,
        429,
        {"Retry-After": "7", "x-ms-ratelimit-remaining-subscription-writes": "199"},
        aks_throttled("PutAgentPoolHandler.PUT", 7),
    )
    assert seen is not None
    assert (seen.limit, seen.retry_after, seen.local) == ("aks_put_agent_pool", 7.0, False)
    assert limiter.throttled_count == 1

    # Nothing goes to that pool for 7 s; a caller is told how long to defer.
    with pytest.raises(Throttled) as refused:
        limiter.acquire("PUT", ARM + POOL)
    assert refused.value.retry_after == pytest.approx(7.0)
    # Other pools, and reads, are not held back.
    assert limiter.acquire("PUT", ARM + CLUSTER + "/agentPools/other") == 0
    assert limiter.acquire("GET", ARM + POOL) == 0

    clock.advance(6.5)
    assert limiter.acquire("PUT", ARM + POOL) == pytest.approx(0.5)  # a short wait: slept
    assert sleep.calls == pytest.approx([0.5])


def test_an_aks_429_is_told_by_its_body_even_when_resource_managers_count_is_0() -> None:
    """Resource Manager may have passed the request with its last token (its count then says 0);
    the body names AKS's handler, so AKS's bucket is the one held."""
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + POOLS)
    seen = limiter.observe(
        "GET",
        ARM + POOLS,
        429,
        {"Retry-After": "3", "x-ms-ratelimit-remaining-subscription-reads": "0"},
        aks_throttled("ListAgentPoolsHandler.GET", 3),
    )
    assert seen is not None and seen.limit == "aks_other"
    assert limiter.delay_for("GET", ARM + POOLS) == pytest.approx(3.0)


def test_the_handler_named_in_the_message_picks_the_bucket() -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + CLUSTER)
    seen = limiter.observe(
        "GET",
        ARM + CLUSTER,
        429,
        {"Retry-After": "5"},
        aks_throttled("ListManagedClustersHandler.GET", 5),
    )
    assert seen is not None and seen.limit == "aks_list_managed_clusters_subscription"
    # An unknown handler: the request's own classification.
    seen = limiter.observe(
        "GET", ARM + CLUSTER, 429, {"Retry-After": "5"}, aks_throttled("NewHandler.GET", 5)
    )
    assert seen is not None and seen.limit == "aks_get_managed_cluster"


def test_resource_managers_429_blocks_the_subscriptions_reads_and_refunds_aks() -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + POOLS)
    body = json.dumps(
        {
            "error": {
                "code": "SubscriptionRequestsThrottled",
                "message": "Number of read requests for subscription 'sub-1' exceeded the limit.",
            }
        }
    )
    seen = limiter.observe("GET", ARM + POOLS, 429, {"Retry-After": "2"}, body)
    assert seen is not None and seen.limit == "arm_reads"
    snapshot = limiter.snapshot()
    # AKS never saw the request: its token is back.
    assert snapshot[("aks_other", SUB_SCOPE)] == 60
    assert limiter.delay_for("GET", ARM + CLUSTER) == pytest.approx(2.0)
    assert limiter.delay_for("PUT", ARM + POOL) == 0  # writes are another bucket
    assert limiter.delay_for("GET", f"{ARM}/subscriptions/sub-2/resourceGroups") == 0


def test_without_a_body_a_count_of_0_means_resource_manager_refused() -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + POOLS)
    seen = limiter.observe(
        "GET",
        ARM + POOLS,
        429,
        {"Retry-After": "2", "x-ms-ratelimit-remaining-subscription-reads": "0"},
    )
    assert seen is not None and seen.limit == "arm_reads"

    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("GET", ARM + CLUSTER)
    seen = limiter.observe(
        "GET",
        ARM + CLUSTER,
        429,
        {"Retry-After": "2", "x-ms-ratelimit-remaining-subscription-reads": "120"},
    )
    assert seen is not None and seen.limit == "aks_get_managed_cluster"


def test_many_429s_saying_the_same_thing_do_not_add_up() -> None:
    limiter, _, _ = limiter_on_fake_time(max_wait_seconds=100)
    for _ in range(10):
        limiter.acquire("GET", ARM + POOLS)
    for _ in range(10):
        limiter.observe("GET", ARM + POOLS, 429, {"Retry-After": "4"}, aks_throttled("X.GET", 4))
    assert limiter.delay_for("GET", ARM + POOLS) == pytest.approx(4.0)
    assert limiter.throttled_count == 10


def test_x_ms_retry_after_ms_is_more_precise_than_retry_after() -> None:
    limiter, _, _ = limiter_on_fake_time(time_scale=60)
    limiter.acquire("PUT", ARM + POOL)
    seen = limiter.observe(
        "PUT",
        ARM + POOL,
        429,
        {"Retry-After": "1", "x-ms-retry-after-ms": "250"},
        aks_throttled("PutAgentPoolHandler.PUT", 1),
    )
    assert seen is not None and seen.retry_after == pytest.approx(0.25)
    assert limiter.delay_for("PUT", ARM + POOL) == pytest.approx(0.25)


def test_a_429_without_any_hint_waits_one_tokens_refill() -> None:
    limiter, _, _ = limiter_on_fake_time()
    limiter.acquire("PUT", ARM + POOL)
    seen = limiter.observe("PUT", ARM + POOL, 429, {}, aks_throttled("PutAgentPoolHandler.PUT", 0))
    assert seen is not None and seen.retry_after == pytest.approx(60.0)


def test_resource_graph_quota_headers() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    graph = ARM + GRAPH
    limiter.acquire("POST", graph)
    # 2 left in this window, which resets in 3 s: two go now, then nothing until the reset.
    limiter.observe(
        "POST",
        graph,
        200,
        {"x-ms-user-quota-remaining": "2", "x-ms-user-quota-resets-after": "00:00:03"},
    )
    assert limiter.acquire("POST", graph) == 0
    assert limiter.acquire("POST", graph) == 0
    assert limiter.delay_for("POST", graph) == pytest.approx(3 + 1 / 3)
    clock.advance(3 + 1 / 3)
    assert limiter.acquire("POST", graph) == 0

    # A 429 with only the quota reset as its hint.
    seen = limiter.observe(
        "POST",
        graph,
        429,
        {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:04"},
    )
    assert seen is not None and (seen.limit, seen.retry_after) == ("resource_graph", 4.0)
    assert limiter.delay_for("POST", graph) == pytest.approx(4.0)


# --- the property --------------------------------------------------------------------------------

READ = ARM + SUB + "/resourceGroups" + Q  # Resource Manager only: one bucket

steps = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.integers(1, 60).map(float)),  # that many in a row
        st.tuples(st.just("advance"), st.floats(0, 30, allow_nan=False)),
        st.tuples(st.just("remaining"), st.integers(0, 400).map(float)),
        st.tuples(st.just("429"), st.floats(0, 20, allow_nan=False)),
    ),
    max_size=150,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    burst=st.integers(1, 40),
    rate=st.sampled_from([0.1, 0.5, 1.0, 2.5, 10.0]),
    time_scale=st.sampled_from([1.0, 3.0, 60.0]),
    max_wait=st.sampled_from([0.0, 0.5, 2.0, 30.0]),
    script=steps,
)
def test_no_window_admits_more_than_the_bucket_allows(
    burst: int,
    rate: float,
    time_scale: float,
    max_wait: float,
    script: list[tuple[str, float]],
) -> None:
    limiter, clock, sleep = limiter_on_fake_time(
        limits={"arm_reads": Limit(burst, rate)}, max_wait_seconds=max_wait, time_scale=time_scale
    )
    admitted: list[float] = []  # when each request that Azure accepted was sent
    for step, value in script:
        if step == "acquire":
            for _ in range(int(value)):
                calls = len(sleep.calls)
                try:
                    limiter.acquire("GET", READ)
                except Throttled as refused:
                    assert refused.retry_after > max_wait
                    assert len(sleep.calls) == calls
                    continue
                assert len(sleep.calls) - calls <= 1
                admitted.append(clock.now)
        elif step == "advance":
            clock.advance(value)
        elif step == "remaining":
            limiter.observe(
                "GET", READ, 200, {"x-ms-ratelimit-remaining-subscription-reads": str(int(value))}
            )
        elif admitted:  # a 429 for the last request sent: it never reached Azure's bucket
            admitted.pop()
            limiter.observe("GET", READ, 429, {"Retry-After": repr(value)})
    assert_within_bucket(admitted, burst, rate * time_scale)


# --- the azure-core policy in a real pipeline ---------------------------------------------------


class CannedNetwork(requests.adapters.BaseAdapter):
    """Where requests' HTTP would go: answers from a list instead, and records what was sent."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[str, str]] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append((str(request.method), str(request.url)))
        status, headers, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response.headers.update({"Content-Type": "application/json", **headers})
        response.raw = io.BytesIO(b"" if body is None else json.dumps(body).encode())
        response.url = str(request.url)
        response.request = request
        response.reason = "Too Many Requests" if status == 429 else "OK"
        return response

    def close(self) -> None:
        pass


class CannedTransport(RequestsTransport):  # type: ignore[misc]  # azure is untyped here
    """azure-core's own requests transport over the canned network; its retry sleeps move the
    fake clock instead of waiting."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]], clock: FakeClock) -> None:
        self.network = CannedNetwork(answers)
        session = requests.Session()
        session.mount("https://", self.network)
        super().__init__(session=session, session_owner=False)
        self.clock = clock
        self.slept: list[float] = []

    def sleep(self, duration: float) -> None:
        self.slept.append(duration)
        self.clock.advance(duration)


class FixedToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


POOL_JSON = {
    "id": POOL,
    "name": "pool1",
    "properties": {"count": 3, "mode": "User", "provisioningState": "Succeeded", "eTag": "e1"},
}


def run(pipeline: Pipeline[Any, Any], method: str, url: str) -> Any:
    return pipeline.run(HttpRequest(method, url)).http_response


def test_every_retry_passes_the_policy() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    transport = CannedTransport(
        [
            (429, {"Retry-After": "2"}, json.loads(aks_throttled("ListAgentPoolsHandler.GET", 2))),
            (200, {"x-ms-ratelimit-remaining-subscription-reads": "100"}, {"value": []}),
        ],
        clock,
    )
    pipeline = Pipeline(
        transport, policies=[RetryPolicy(retry_backoff_factor=0), RateLimitPolicy(limiter)]
    )
    assert run(pipeline, "GET", ARM + POOLS + Q).status_code == 200
    assert len(transport.network.sent) == 2
    assert transport.slept == [2.0]  # azure-core honoured Retry-After before retrying
    assert (limiter.admitted_count, limiter.throttled_count) == (2, 1)
    snapshot = limiter.snapshot()
    assert snapshot[("arm_reads", SUB_SCOPE)] == 100
    assert snapshot[("aks_other", SUB_SCOPE)] < 60


def test_raise_throttled_turns_a_429_into_throttled_without_azure_core_retrying_it() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    transport = CannedTransport(
        [(429, {"Retry-After": "30"}, json.loads(aks_throttled("PutAgentPoolHandler.PUT", 30)))],
        clock,
    )
    pipeline = Pipeline(
        transport, policies=[RetryPolicy(), RateLimitPolicy(limiter, raise_throttled=True)]
    )
    with pytest.raises(Throttled) as refused:
        run(pipeline, "PUT", ARM + POOL + Q)
    assert (refused.value.limit, refused.value.retry_after, refused.value.local) == (
        "aks_put_agent_pool",
        30.0,
        False,
    )
    assert len(transport.network.sent) == 1 and transport.slept == []


@pytest.fixture
def aks_client() -> Iterator[tuple[Any, CannedTransport, RateLimiter]]:
    from azure.mgmt.containerservice import ContainerServiceClient

    limits = {**AZURE_LIMITS, "aks_put_agent_pool": Limit(1, 1 / 60)}
    limiter, clock, _ = limiter_on_fake_time(limits=limits)
    transport = CannedTransport([], clock)
    client = ContainerServiceClient(
        FixedToken(),
        "Sub-1",
        base_url=ARM,
        transport=transport,
        per_retry_policies=[RateLimitPolicy(limiter)],
        retry_total=0,
    )
    yield client, transport, limiter
    client.close()


def test_the_aks_client_takes_per_retry_policies(
    aks_client: tuple[Any, CannedTransport, RateLimiter],
) -> None:
    client, transport, limiter = aks_client
    transport.network.answers = [
        (200, {"x-ms-ratelimit-remaining-subscription-reads": "100"}, {"value": [POOL_JSON]}),
        (200, {"x-ms-ratelimit-remaining-subscription-writes": "150"}, POOL_JSON),
    ]
    pools = list(client.agent_pools.list("RG-1", "C1"))
    assert [pool.name for pool in pools] == ["pool1"]
    pool = pools[0]
    client.agent_pools.begin_create_or_update("RG-1", "C1", "Pool1", pool, polling=False)
    assert limiter.snapshot() == {
        ("arm_reads", SUB_SCOPE): 100,
        ("aks_other", SUB_SCOPE): 59,
        ("arm_writes", SUB_SCOPE): 150,
        ("aks_put_agent_pool", POOL_SCOPE): 0,
    }

    # The pool's bucket is empty: the next write is refused before anything is sent.
    with pytest.raises(Throttled) as refused:
        client.agent_pools.begin_create_or_update("RG-1", "C1", "Pool1", pool, polling=False)
    assert refused.value.local and refused.value.limit == "aks_put_agent_pool"
    assert len(transport.network.sent) == 2


def test_a_429_through_the_aks_client_is_counted_and_still_an_http_error(
    aks_client: tuple[Any, CannedTransport, RateLimiter],
) -> None:
    client, transport, limiter = aks_client
    transport.network.answers = [
        (
            429,
            {"Retry-After": "5", "x-ms-ratelimit-remaining-subscription-reads": "0"},
            json.loads(aks_throttled("ListAgentPoolsHandler.GET", 5)),
        )
    ]
    with pytest.raises(HttpResponseError) as error:
        list(client.agent_pools.list("RG-1", "C1"))
    assert error.value.status_code == 429
    assert limiter.throttled_count == 1
    # The body was read: AKS's bucket is held, not Resource Manager's.
    assert limiter.delay_for("GET", ARM + POOLS) == pytest.approx(5.0)
    # Resource Manager's count said 0: one token's refill (1/25 s) there, not 5 s.
    assert limiter.delay_for("GET", ARM + GROUP) == pytest.approx(1 / 25)


def test_the_resource_graph_client_takes_the_resource_graph_bucket() -> None:
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest

    limiter, clock, _ = limiter_on_fake_time()
    transport = CannedTransport(
        [
            (
                200,
                {"x-ms-user-quota-remaining": "11", "x-ms-user-quota-resets-after": "00:00:05"},
                {
                    "totalRecords": 0,
                    "count": 0,
                    "data": [],
                    "facets": [],
                    "resultTruncated": "false",
                },
            )
        ],
        clock,
    )
    with ResourceGraphClient(
        FixedToken(), transport=transport, per_retry_policies=[RateLimitPolicy(limiter)]
    ) as client:
        client.resources(QueryRequest(query="Resources | take 1", subscriptions=["sub-1"]))
    assert limiter.snapshot() == {("resource_graph", ()): 11}


# --- slowing down after 429s (AIMD) -------------------------------------------------------------


def arm_write_429(limiter: RateLimiter, seconds: int = 1) -> None:
    body = json.dumps({"error": {"code": "SubscriptionRequestsThrottled", "message": "writes"}})
    limiter.observe("PUT", ARM + POOL, 429, {"Retry-After": str(seconds)}, body)


def write_tokens_after(limiter: RateLimiter, clock: Any, seconds: float) -> float:
    clock.advance(seconds)
    return limiter.snapshot()[("arm_writes", SUB_SCOPE)]


def test_a_429_halves_the_refill_so_instances_sharing_a_limit_settle_below_it() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    arm_write_429(limiter, seconds=1)
    # The next token comes exactly at Retry-After, then about 5 a second come, not 10.
    assert write_tokens_after(limiter, clock, 1.0) == pytest.approx(1.0)
    assert 5.5 < write_tokens_after(limiter, clock, 1.0) < 7.0


def test_repeated_429s_slow_down_to_a_floor_at_most_once_a_second() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    for _ in range(3):  # one empty bucket answers several requests in flight: one cut
        arm_write_429(limiter)
    assert write_tokens_after(limiter, clock, 1.0) == pytest.approx(1.0)
    assert 5.5 < write_tokens_after(limiter, clock, 1.0) < 7.0
    for _ in range(10):  # one 429 a second for ten seconds
        arm_write_429(limiter)
        clock.advance(1.0)
    arm_write_429(limiter)
    assert write_tokens_after(limiter, clock, 1.0) == pytest.approx(1.0)
    assert 1.9 < write_tokens_after(limiter, clock, 1.0) < 2.5  # the floor: 10 %, 1 a second


def test_the_refill_recovers_to_the_documented_rate_without_429s() -> None:
    limiter, clock, _ = limiter_on_fake_time()
    arm_write_429(limiter)
    clock.advance(120)  # 2 % of the documented rate comes back each second
    for index in range(200):  # spend the burst
        limiter.acquire("PUT", ARM + f"{CLUSTER}/agentPools/p{index}")
    assert write_tokens_after(limiter, clock, 1.0) == pytest.approx(10.0, abs=0.01)
