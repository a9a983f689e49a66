"""Pace Resource Manager calls below Azure's throttling limits, inside the app.

Azure throttles in two layers, each a set of token buckets (Microsoft's "Understand how Azure
Resource Manager throttles requests", the AKS "Throttling limits on AKS resource provider APIs"
and Resource Graph's "Guidance for throttled requests"):

1. Resource Manager, per subscription and principal: reads 250 burst / 25 per s, writes 200 / 10
   per s, deletes 200 / 10 per s. Every answer says how many tokens are left
   (`x-ms-ratelimit-remaining-subscription-reads` / `-writes` / `-deletes`, and the `-global-`
   count shared by every principal of the subscription).
2. The AKS resource provider behind it, with buckets per agent pool, cluster, resource group or
   subscription depending on the API; and Resource Graph, per principal, with its own quota
   headers (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`).

`RateLimiter` keeps a copy of those buckets in the process, one per (limit, scope), shared by all
threads and all SDK clients of the instance. Before each HTTP attempt it takes a token from every
bucket the request passes (`acquire`): a short wait is slept once, a long one raises `Throttled`
so the caller defers the work with that delay instead of holding a worker (work is never lost,
it is re-queued). After each answer it corrects its copy with what Azure said (`observe`): the
remaining-quota headers lower a bucket (other instances and other apps with the same identity
spend the same bucket), and a 429 empties it until `Retry-After`. A 429 is expected at fleet
scale: it is counted (`throttled_count`), not treated as an error here.

`RateLimitPolicy` plugs the limiter into the Azure SDK clients through azure-core's
`per_retry_policies=[...]`, which places it after the RetryPolicy so that it sees every actual
HTTP attempt, retries included.

Everything except `RateLimitPolicy` is plain Python: no I/O, and the clock and sleep are
injectable so tests run on fake time.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

# The only Azure import: the pipeline policy base class that RateLimitPolicy extends.
from azure.core.pipeline.policies import SansIOHTTPPolicy


@dataclass(frozen=True)
class Limit:
    """One of Azure's token buckets: `burst` tokens when full, refilled continuously."""

    burst: float
    refill_per_second: float

    def __post_init__(self) -> None:
        # A bucket that never refills could never say when to retry; Azure has none.
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise ValueError(f"burst must be a finite number >= 1, not {self.burst!r}")
        if not (self.refill_per_second > 0 and math.isfinite(self.refill_per_second)):
            raise ValueError(f"refill_per_second must be > 0, not {self.refill_per_second!r}")


# Azure's published numbers (November 2026). The names are the emulator's
# (local/aks_emulator/throttle.py), so a benchmark can put its buckets beside ours; the app must
# not import the emulator, hence the copy.
AZURE_LIMITS: dict[str, Limit] = {
    # Resource Manager, per subscription (and principal: the app is one).
    "arm_reads": Limit(250, 25),  # GET, HEAD
    "arm_writes": Limit(200, 10),  # PUT, PATCH, POST
    "arm_deletes": Limit(200, 10),  # DELETE (the app sends none; counted apart by Azure)
    # AKS resource provider.
    "aks_put_agent_pool": Limit(20, 1 / 60),  # per agent pool: one write a minute sustained
    "aks_put_managed_cluster": Limit(20, 1 / 60),  # per cluster
    "aks_get_managed_cluster": Limit(60, 1),  # per cluster
    "aks_get_operation_status": Limit(200, 2),  # per subscription (polling a PUT's operation)
    "aks_list_managed_clusters_subscription": Limit(500, 1),  # per subscription
    "aks_list_managed_clusters_resource_group": Limit(60, 1),  # per resource group
    "aks_other": Limit(60, 1),  # per subscription: LIST/GET agentPools and every other AKS API
    # Resource Graph: "at most 15 queries within every 5-second window" per principal. Modelled
    # as 15 burst refilled at 15/5 per s; its quota headers then hold the refill until the window
    # resets, so the app never sends more than Azure's window allows.
    "resource_graph": Limit(15, 3),
}

# Which parts of a request's path name the bucket of each limit (the scope Azure counts per).
_SCOPE_PARTS: dict[str, tuple[str, ...]] = {
    "aks_put_agent_pool": ("subscription", "resource_group", "cluster", "pool"),
    "aks_put_managed_cluster": ("subscription", "resource_group", "cluster"),
    "aks_get_managed_cluster": ("subscription", "resource_group", "cluster"),
    "aks_list_managed_clusters_resource_group": ("subscription", "resource_group"),
    "resource_graph": (),  # per principal, and the app is one
}
_PER_SUBSCRIPTION = ("subscription",)  # every other limit

# Resource Manager's bucket for each HTTP method (anything unknown counts as a read, as Azure's).
_ARM_LIMIT_OF_METHOD = {
    "GET": "arm_reads",
    "HEAD": "arm_reads",
    "PUT": "arm_writes",
    "PATCH": "arm_writes",
    "POST": "arm_writes",
    "DELETE": "arm_deletes",
}
_ARM_LIMITS = frozenset(_ARM_LIMIT_OF_METHOD.values())

# AKS names the throttled handler in its 429: "The PutAgentPoolHandler.PUT request limit has been
# exceeded for SubID=...". Handlers not listed here fall back to the request's own classification.
_AKS_HANDLER = re.compile(r"\b(\w+Handler)\.\w+\s+request limit", re.IGNORECASE)
_LIMIT_OF_HANDLER = {
    "putagentpoolhandler": "aks_put_agent_pool",
    "putmanagedclusterhandler": "aks_put_managed_cluster",
    "getmanagedclusterhandler": "aks_get_managed_cluster",
    "getoperationstatushandler": "aks_get_operation_status",
    "listmanagedclustershandler": "aks_list_managed_clusters_subscription",
    "listmanagedclustersbyresourcegrouphandler": "aks_list_managed_clusters_resource_group",
    "getagentpoolhandler": "aks_other",
    "listagentpoolshandler": "aks_other",
}

# Float refills such as 30 x (1/60) + 30 x (1/60) must count as a whole token, not 0.99999...
_EPSILON = 1e-9

BucketKey = tuple[str, tuple[str, ...]]  # (limit name, scope), e.g. ("aks_other", ("sub-1",))


class Throttled(Exception):
    """A request that cannot go now: defer it by `retry_after` seconds (it is not an error).

    `local` is True when the app's own pacing refused to send it (no request was made), False
    when Azure answered 429 (see `RateLimitPolicy(raise_throttled=True)`).
    """

    def __init__(self, limit: str, retry_after: float, local: bool) -> None:
        where = "paced by the app" if local else "answered 429 by Azure"
        super().__init__(f"{limit}: {where}; retry after {retry_after:.3f} s")
        self.limit = limit
        self.retry_after = retry_after
        self.local = local


# --- which buckets a request takes from ------------------------------------------------------


def classify(method: str, url: str) -> list[BucketKey]:
    """The buckets (limit name, scope) a request takes one token from, in the order Azure checks
    them: Resource Manager's first, then the resource provider's. Token endpoints and anything
    that is not a Resource Manager URL take none. Scopes are lower-case (Azure ids are not
    case-sensitive, and the SDK and Azure do not agree on `resourceGroups`/`resourcegroups`)."""
    return _keys(*_route(method, url))


def _route(method: str, url: str) -> tuple[dict[str, str], list[str]]:
    """The named parts of an ARM path (subscription, resource_group, cluster, pool) and the
    limits the request counts against."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return {}, []
    segments = [unquote(part).lower() for part in path.split("/") if part]
    method = method.upper()
    if segments[:3] == ["providers", "microsoft.resourcegraph", "resources"]:
        return {}, ["resource_graph"]
    if len(segments) < 2 or segments[0] != "subscriptions":
        return {}, []  # a token endpoint, or a host that is not Resource Manager

    target = {"subscription": segments[1]}
    limits = [_ARM_LIMIT_OF_METHOD.get(method, "arm_reads")]
    match segments[2:]:
        case ["resourcegroups", group, "providers", "microsoft.containerservice", *aks]:
            target["resource_group"] = group
        case ["providers", "microsoft.containerservice", *aks]:
            pass
        case _:
            return target, limits  # another resource provider: only Resource Manager's bucket
    match aks:
        case ["managedclusters", cluster, "agentpools", pool, *_]:
            target.update(cluster=cluster, pool=pool)
        case ["managedclusters", cluster, *_]:
            target["cluster"] = cluster
    limits.append(_aks_limit(method, aks, in_group="resource_group" in target))
    return target, limits


def _aks_limit(method: str, aks: list[str], in_group: bool) -> str:
    """AKS's limit for a path below `providers/Microsoft.ContainerService`."""
    match aks:
        case ["managedclusters"] if method == "GET":
            if in_group:
                return "aks_list_managed_clusters_resource_group"
            return "aks_list_managed_clusters_subscription"
        case ["managedclusters", _] if in_group and method == "GET":
            return "aks_get_managed_cluster"
        case ["managedclusters", _] if in_group and method == "PUT":
            return "aks_put_managed_cluster"
        case ["managedclusters", _, "agentpools", _] if in_group and method == "PUT":
            return "aks_put_agent_pool"
        case ["locations", _, "operations" | "operationresults", _] if method == "GET":
            return "aks_get_operation_status"
    return "aks_other"  # LIST/GET agentPools included: AKS does not name them separately


def _keys(target: Mapping[str, str], limits: list[str]) -> list[BucketKey]:
    return [(name, scope) for name in limits if (scope := _scope(name, target)) is not None]


def _scope(limit: str, target: Mapping[str, str]) -> tuple[str, ...] | None:
    parts = _SCOPE_PARTS.get(limit, _PER_SUBSCRIPTION)
    if not all(part in target for part in parts):
        return None
    return tuple(target[part] for part in parts)


# --- the buckets ---------------------------------------------------------------------------------


@dataclass
class _Bucket:
    """The app's copy of one of Azure's buckets.

    `tokens` may go below zero: a request that has to wait reserves its token at once, so the
    next request queues behind it (fair across threads) instead of racing it for the same token.
    `refill_from` is when refilling continues from; it is later than now only while Azure has
    said the bucket stays empty until then (Resource Graph's quota window).
    """

    burst: float
    rate: float  # tokens per second, time scale applied: what the app refills at now
    tokens: float
    refill_from: float
    nominal: float = 0.0  # the documented refill rate (0: same as `rate` at creation)
    slowed_at: float = -math.inf  # when a 429 last slowed the refill down

    def __post_init__(self) -> None:
        self.nominal = self.nominal or self.rate

    def refill(self, now: float) -> None:
        if now > self.refill_from:
            elapsed = now - self.refill_from
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            # Additive increase back to the documented rate, once Azure's wait is over.
            if self.rate < self.nominal and self.tokens >= 1:
                back = self.nominal * RECOVERY_PER_SECOND * elapsed
                self.rate = min(self.nominal, self.rate + back)
            self.refill_from = now

    def slow_down(self, now: float) -> None:
        """A 429 from Azure: the real bucket refills slower than ours (other instances of the
        app, other apps of the same identity, or lower limits than documented), so halve our
        refill (multiplicative decrease; at most once a second, since one empty bucket answers
        several requests in flight at once, and never below MIN_RATE_SHARE of the documented
        rate)."""
        if now - self.slowed_at >= 1.0:
            self.rate = max(self.nominal * MIN_RATE_SHARE, self.rate / 2)
            self.slowed_at = now

    def reserve(self, now: float) -> float:
        """Take one token; the seconds until it exists (0 when the bucket had one)."""
        self.tokens -= 1
        if self.tokens >= -_EPSILON:
            return 0.0
        return max(0.0, self.refill_from - now) + -self.tokens / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.burst, self.tokens + 1)

    def at_most(self, tokens: float) -> None:
        """Azure's count is lower than ours: believe Azure (it sees every client's requests)."""
        self.tokens = min(self.tokens, tokens)

    def empty_for(self, seconds: float) -> None:
        """Azure refused a request and said the next token comes in `seconds`: with the bucket's
        refill rate, that is a balance of 1 - seconds x rate now. Taking the lower of that and
        ours keeps a burst of 429s saying the same thing from adding up."""
        self.at_most(1 - seconds * self.rate)

    def hold_refill_until(self, moment: float) -> None:
        self.refill_from = max(self.refill_from, moment)


# After a 429, a bucket refills at half its rate (down to MIN_RATE_SHARE of the documented one)
# and gains RECOVERY_PER_SECOND of the documented rate back each second without one: AIMD, as
# TCP does, so instances that share a subscription's limits settle below them together.
MIN_RATE_SHARE = 0.1
RECOVERY_PER_SECOND = 0.02


class RateLimiter:
    """The app's token buckets for Resource Manager, AKS and Resource Graph (see module doc).

    One per process, shared by every thread and SDK client (buckets are keyed by subscription,
    so one limiter serves all subscriptions). Thread-safe: one lock around the bucket arithmetic;
    sleeping happens outside it.

    `max_wait_seconds`: the longest an `acquire` sleeps; a longer wait raises `Throttled`.
    `time_scale`: multiplies every refill rate (the local emulator can refill faster for
    benchmarks; 1 in Azure). Bursts and Azure's Retry-After are not scaled.
    """

    def __init__(
        self,
        limits: Mapping[str, Limit] = AZURE_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_seconds: float = 1.0,
        time_scale: float = 1.0,
    ) -> None:
        if not (time_scale > 0 and math.isfinite(time_scale)):
            raise ValueError(f"time_scale must be a number > 0, not {time_scale!r}")
        if not max_wait_seconds >= 0:
            raise ValueError(f"max_wait_seconds must be >= 0, not {max_wait_seconds!r}")
        self._limits = dict(limits)
        self._clock = clock
        self._sleep = sleep
        self.max_wait_seconds = float(max_wait_seconds)
        self.time_scale = float(time_scale)
        self._lock = threading.Lock()
        self._buckets: dict[BucketKey, _Bucket] = {}
        # Counters for outcomes and benchmarks (written under the lock).
        self.admitted_count = 0  # requests let through (each HTTP attempt counts)
        self.paced_count = 0  # requests refused locally: Throttled(local=True) raised
        self.throttled_count = 0  # 429 answers observed
        self.waited_seconds = 0.0  # total time acquire() slept

    # --- before a request ----------------------------------------------------------------------

    def acquire(self, method: str, url: str) -> float:
        """Take one token from every bucket the request passes, sleeping once if it must wait.

        Returns the seconds slept. Raises `Throttled(local=True)` without taking anything when
        the wait would exceed `max_wait_seconds`: the caller defers the work by `retry_after`.
        """
        keys = self._known(classify(method, url))
        if not keys:
            return 0.0
        with self._lock:
            now = self._clock()
            buckets = [self._bucket(key, now) for key in keys]
            # The request goes when its last bucket has a token for it.
            wait, limit = max(
                (bucket.reserve(now), name) for (name, _), bucket in zip(keys, buckets, strict=True)
            )
            if wait > self.max_wait_seconds:
                for bucket in buckets:
                    bucket.give_back()
                self.paced_count += 1
                raise Throttled(limit, wait, local=True)
            self.admitted_count += 1
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)  # one computed sleep: the token is ours when it ends
        return wait

    def delay_for(self, method: str, url: str) -> float:
        """Seconds a request would wait now, without taking a token (for deferring work)."""
        keys = self._known(classify(method, url))
        with self._lock:
            now = self._clock()
            waits = [0.0]
            for key in keys:
                bucket = self._bucket(key, now)
                waits.append(bucket.reserve(now))
                bucket.give_back()
        return max(waits)

    # --- after an answer -----------------------------------------------------------------------

    def observe(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: str | bytes | None = None,
    ) -> Throttled | None:
        """Correct the buckets with what Azure said about a request that went through `acquire`.

        Remaining-quota headers lower the matching bucket; a 429 empties the bucket that refused
        it until Retry-After and is returned as `Throttled(local=False)` (not raised). `body`, the
        error's JSON, is optional: it tells Resource Manager's 429 from AKS's; without it the
        headers and the request decide. Never raises on odd headers or bodies.
        """
        target, limits = _route(method, url)
        keys = self._known(_keys(target, limits))
        if not keys:
            return None
        answer = _lower_case_keys(headers)
        with self._lock:
            now = self._clock()
            for key in keys:
                self._correct_from_headers(key, self._bucket(key, now), answer, now, status)
            if status != 429:
                return None
            self.throttled_count += 1
            key = _refusing_bucket(keys, target, answer, body)
            if key[0] not in self._limits:  # a limit this limiter leaves out: the request's own
                key = keys[-1]
            bucket = self._bucket(key, now)
            seconds = _retry_after_seconds(answer)
            if seconds is None and key[0] == "resource_graph":
                seconds = _duration_seconds(answer.get("x-ms-user-quota-resets-after"))
            if seconds is None:
                seconds = 1 / bucket.nominal  # no hint at all: one token's documented refill
            # A refused request spent nothing where it was refused nor in any later layer
            # (Resource Manager refuses before AKS sees it), so its tokens there come back. (When
            # AKS names another handler than ours, the request's own AKS token comes back.)
            refused_at = keys.index(key) if key in keys else len(keys) - 1
            for later in keys[refused_at:]:
                self._buckets[later].give_back()
            bucket.slow_down(now)
            bucket.empty_for(seconds)  # at the new rate: the next token comes at Retry-After
            return Throttled(key[0], seconds, local=False)

    def _correct_from_headers(
        self, key: BucketKey, bucket: _Bucket, answer: Mapping[str, str], now: float, status: int
    ) -> None:
        name = key[0]
        if name in _ARM_LIMITS:
            left = _arm_remaining(answer, name)
            if left is not None:
                bucket.at_most(left)
        elif name == "resource_graph":
            left = _count(answer.get("x-ms-user-quota-remaining"))
            if left is not None:
                bucket.at_most(left)
                resets = _duration_seconds(answer.get("x-ms-user-quota-resets-after"))
                # Its quota is a window: nothing comes back before the window resets. (A 429 is
                # handled by empty_for with its Retry-After instead.)
                if resets is not None and status != 429:
                    bucket.hold_refill_until(now + resets)

    # --- for tests and benchmarks --------------------------------------------------------------

    def snapshot(self) -> dict[BucketKey, float]:
        """Tokens in every bucket used so far, refilled to now (negative: requests waiting)."""
        with self._lock:
            now = self._clock()
            for bucket in self._buckets.values():
                bucket.refill(now)
            return {key: bucket.tokens for key, bucket in self._buckets.items()}

    # --- internals -----------------------------------------------------------------------------

    def _known(self, keys: list[BucketKey]) -> list[BucketKey]:
        """Keys of limits this limiter models (a custom table may leave some out)."""
        return [key for key in keys if key[0] in self._limits]

    def _bucket(self, key: BucketKey, now: float) -> _Bucket:
        """The bucket for `key`, refilled to `now`; new buckets start full, like Azure's."""
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._limits[key[0]]
            rate = limit.refill_per_second * self.time_scale
            bucket = self._buckets[key] = _Bucket(limit.burst, rate, limit.burst, now)
        else:
            bucket.refill(now)
        return bucket


# --- reading Azure's answers ---------------------------------------------------------------------


def _refusing_bucket(
    keys: list[BucketKey],
    target: Mapping[str, str],
    answer: Mapping[str, str],
    body: str | bytes | None,
) -> BucketKey:
    """Which of Azure's buckets answered a 429."""
    arm = next((key for key in keys if key[0] in _ARM_LIMITS), None)
    provider = next((key for key in keys if key[0] not in _ARM_LIMITS), None)
    if arm is None or provider is None:
        return keys[0]  # one bucket only (Resource Graph, or an ARM call outside AKS)
    code, message = _error_of(body)
    if code == "SubscriptionRequestsThrottled":
        return arm
    if code == "Throttled":
        found = _AKS_HANDLER.search(message or "")
        limit = _LIMIT_OF_HANDLER.get(found.group(1).lower()) if found else None
        scope = _scope(limit, target) if limit else None
        return (limit, scope) if limit and scope is not None else provider
    if code is None and _arm_remaining(answer, arm[0]) == 0:
        # No body to read: Resource Manager counts every answer it passes on, so a count of 0
        # on a 429 means it was Resource Manager that refused.
        return arm
    return provider


def _arm_remaining(answer: Mapping[str, str], limit: str) -> int | None:
    """Resource Manager's remaining count for `limit` (arm_reads, ...): the lower of this
    principal's and the subscription's global one, when given."""
    family = limit.removeprefix("arm_")
    counts = [
        _count(answer.get(f"x-ms-ratelimit-remaining-subscription-{family}")),
        _count(answer.get(f"x-ms-ratelimit-remaining-subscription-global-{family}")),
    ]
    known = [count for count in counts if count is not None]
    return min(known) if known else None


def _error_of(body: str | bytes | None) -> tuple[str | None, str | None]:
    """(code, message) of an ARM error body `{"error": {"code": ..., "message": ...}}`."""
    if not body:
        return None, None
    try:
        error = json.loads(body).get("error") or {}
        code, message = error.get("code"), error.get("message")
    except (ValueError, TypeError, AttributeError):  # not JSON, or not the usual shape
        return None, None
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def _lower_case_keys(headers: Mapping[str, str]) -> dict[str, str]:
    try:
        return {str(name).lower(): str(value).strip() for name, value in headers.items()}
    except (AttributeError, TypeError):
        return {}


def _count(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _number(value: str | None) -> float | None:
    """A non-negative finite number, or None for anything else."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _retry_after_seconds(answer: Mapping[str, str]) -> float | None:
    """Azure's wait. The millisecond headers first: the emulator sends `x-ms-retry-after-ms` when
    its clock is scaled, because whole Retry-After seconds are too coarse then."""
    for name in ("x-ms-retry-after-ms", "retry-after-ms"):
        millis = _number(answer.get(name))
        if millis is not None:
            return millis / 1000
    raw = answer.get("retry-after")
    seconds = _number(raw)
    if seconds is not None or not raw:
        return seconds
    try:  # Retry-After may also be an HTTP date
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _duration_seconds(value: str | None) -> float | None:
    """Resource Graph's `hh:mm:ss` (fractional seconds allowed)."""
    parts = (value or "").split(":")
    if len(parts) != 3:
        return None
    numbers = [_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    hours, minutes, seconds = (number or 0.0 for number in numbers)
    return hours * 3600 + minutes * 60 + seconds


# --- the Azure SDK side --------------------------------------------------------------------------


class RateLimitPolicy(SansIOHTTPPolicy):  # type: ignore[misc]  # azure-core is untyped here
    """azure-core pipeline policy: `acquire` before every HTTP attempt, `observe` after it.

    Add it to every Resource Manager client of the process with the same limiter:

        ContainerServiceClient(credential, subscription_id, per_retry_policies=[policy])

    `per_retry_policies` puts it after azure-core's RetryPolicy, so retries are paced and
    observed too (a per-call policy would see only the first attempt). `Throttled` from
    `acquire` propagates out of the client call before anything is sent; it is not an
    `AzureError`, so the RetryPolicy does not retry it.

    `raise_throttled=True` turns a 429 answer into `Throttled(local=False)` too, so callers
    handle one exception for "not now"; the RetryPolicy then never retries a 429 itself.
    By default the SDK raises its usual `HttpResponseError` (after its own retries, if any).
    """

    def __init__(self, limiter: RateLimiter, *, raise_throttled: bool = False) -> None:
        super().__init__()
        self.limiter = limiter
        self.raise_throttled = raise_throttled

    def on_request(self, request: Any) -> None:
        http = request.http_request
        self.limiter.acquire(http.method, http.url)

    def on_response(self, request: Any, response: Any) -> None:
        http = request.http_request
        answer = response.http_response
        status = int(answer.status_code)
        body = _error_body(request, answer) if status == 429 else None
        throttled = self.limiter.observe(http.method, http.url, status, answer.headers, body)
        if throttled is not None and self.raise_throttled:
            raise throttled


def _error_body(request: Any, answer: Any) -> str | None:
    """A 429's JSON, when it is already read: never read a streamed body (it belongs to the
    caller)."""
    if request.context.options.get("stream"):
        return None
    try:
        text = answer.text()
    except Exception:  # not read yet, or not decodable: go by the headers
        return None
    return text if isinstance(text, str) else None
