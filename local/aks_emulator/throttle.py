"""Resource Manager and AKS request throttling: token buckets with a scalable clock.

Two layers, like Azure (see Microsoft's "Understand how Azure Resource Manager throttles
requests" and the AKS "Throttling limits on AKS resource provider APIs"):

1. Resource Manager, per subscription (or tenant) and per principal, one bucket per operation
   type (reads 250 / 25 per s, writes 200 / 10 per s, deletes 200 / 10 per s), plus a global
   per-subscription bucket of 15 times that across all principals. Every answer carries
   `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` and the `-global-` variant.
2. The AKS resource provider, after Resource Manager, with buckets per agent pool, per cluster,
   per resource group or per subscription depending on the API.
3. Azure Resource Graph, on its own (its queries take no Resource Manager token): a quota per
   principal of 15 queries in a fixed 5-second window ("Guidance for throttled requests in
   Azure Resource Graph"). Every answer carries `x-ms-user-quota-remaining` and
   `x-ms-user-quota-resets-after` (hh:mm:ss); the quota comes back whole when the window ends.

A request takes one token from each bucket it passes; an empty bucket answers 429 with
`Retry-After` (whole seconds until a token, at least 1). A request refused by Resource
Manager never reaches AKS and takes no AKS token.

Time scale: buckets refill `time_scale` times faster than real time (60 turns 1 per minute into
1 per second), so a benchmark that models minutes runs in seconds with the same ratios.
`Retry-After` is in real seconds; when the scale is not 1 the answer also carries
`x-ms-retry-after-ms` (real milliseconds, an emulator extension) because whole seconds are too
coarse for refill rates that become sub-second.

Pure model: no I/O and no locking; callers pass `now` (monotonic seconds) and hold the lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .resourcegraph import resource_graph_error

GLOBAL_FACTOR = 15  # the global per-subscription limit is 15x the per-principal one
NEVER_SECONDS = 3600  # Retry-After of a bucket that never refills (a limit set to refill 0)
EPSILON = 1e-9  # float refill sums such as 30 x (1/60) + 30 x (1/60) count as a whole token


@dataclass(frozen=True)
class Limit:
    """A token bucket (`burst`, refilled continuously), or with `window_seconds` a fixed window:
    `burst` requests per window, all given back when the window ends."""

    burst: float
    refill_per_second: float  # a window's average: burst / window_seconds
    scope: str  # what one bucket is for: documentation and the control API
    window_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "burst": self.burst,
            "refill_per_second": self.refill_per_second,
            "scope": self.scope,
        }
        if self.window_seconds is not None:
            answer["window_seconds"] = self.window_seconds
        return answer


def window_limit(quota: float, seconds: float, scope: str) -> Limit:
    return Limit(quota, quota / seconds if seconds > 0 else 0.0, scope, seconds)


DEFAULT_LIMITS: dict[str, Limit] = {
    # Resource Manager, per subscription (or tenant) and principal.
    "arm_reads": Limit(250, 25, "subscription+principal"),
    "arm_writes": Limit(200, 10, "subscription+principal"),
    "arm_deletes": Limit(200, 10, "subscription+principal"),
    # AKS resource provider.
    "aks_put_agent_pool": Limit(20, 1 / 60, "agent pool"),
    "aks_put_managed_cluster": Limit(20, 1 / 60, "cluster"),
    "aks_get_managed_cluster": Limit(60, 1, "cluster"),
    "aks_get_operation_status": Limit(200, 2, "subscription"),
    "aks_list_managed_clusters_subscription": Limit(500, 1, "subscription"),
    "aks_list_managed_clusters_resource_group": Limit(60, 1, "resource group"),
    "aks_other": Limit(60, 1, "subscription"),
    # Azure Resource Graph, per principal (user): 15 queries in every 5-second window.
    "resource_graph": window_limit(15, 5, "principal"),
}

ARM_OPERATIONS = {
    "GET": "reads",
    "HEAD": "reads",
    "PUT": "writes",
    "PATCH": "writes",
    "POST": "writes",
    "DELETE": "deletes",
}


class ThrottleConfigError(ValueError):
    """A throttle setting the control API refuses (answered with 400)."""


@dataclass(frozen=True)
class RequestKind:
    """What an ARM request is, for the AKS bucket it takes and for the request log."""

    name: str  # e.g. "PutAgentPool": the request log's `kind`
    handler: str  # e.g. "PutAgentPoolHandler.PUT": named in AKS's 429 message
    limit: str  # key of DEFAULT_LIMITS
    scope: tuple[str, ...]  # which bucket of that limit (lower-case names)


# (route, method) -> (kind name, AKS handler, limit). Scope is worked out from the path.
_AKS_KINDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("pool", "PUT"): ("PutAgentPool", "PutAgentPoolHandler.PUT", "aks_put_agent_pool"),
    ("pool", "GET"): ("GetAgentPool", "GetAgentPoolHandler.GET", "aks_other"),
    ("pools", "GET"): ("ListAgentPools", "ListAgentPoolsHandler.GET", "aks_other"),
    ("cluster", "GET"): (
        "GetManagedCluster",
        "GetManagedClusterHandler.GET",
        "aks_get_managed_cluster",
    ),
    ("cluster", "PUT"): (
        "PutManagedCluster",
        "PutManagedClusterHandler.PUT",
        "aks_put_managed_cluster",
    ),
    ("clusters", "GET"): (
        "ListManagedClusters",
        "ListManagedClustersHandler.GET",
        "aks_list_managed_clusters_subscription",
    ),
    ("clusters_rg", "GET"): (
        "ListManagedClustersByResourceGroup",
        "ListManagedClustersByResourceGroupHandler.GET",
        "aks_list_managed_clusters_resource_group",
    ),
    ("operation", "GET"): (
        "GetOperationStatus",
        "GetOperationStatusHandler.GET",
        "aks_get_operation_status",
    ),
}
_ROUTE_NOUNS = {
    "pool": "AgentPool",
    "pools": "AgentPools",
    "cluster": "ManagedCluster",
    "clusters": "ManagedClusters",
    "clusters_rg": "ManagedClustersByResourceGroup",
    "operation": "OperationStatus",
}


def request_kind(route: str, method: str, args: dict[str, str]) -> RequestKind:
    """The kind of a routed ARM request; methods the emulator does not serve fall in `aks_other`."""
    method = method.upper()
    a = {k: v.lower() for k, v in args.items()}
    sub = a.get("sub", "")
    known = _AKS_KINDS.get((route, method))
    if known is None:
        verb = method.capitalize()
        noun = _ROUTE_NOUNS.get(route, "Resource")
        name, handler, limit = f"{verb}{noun}", f"{verb}{noun}Handler.{method}", "aks_other"
    else:
        name, handler, limit = known
    scope: tuple[str, ...]
    if limit == "aks_put_agent_pool":
        scope = (sub, a["rg"], a["cluster"], a["pool"])
    elif limit in ("aks_put_managed_cluster", "aks_get_managed_cluster"):
        scope = (sub, a["rg"], a["cluster"])
    elif limit == "aks_list_managed_clusters_resource_group":
        scope = (sub, a["rg"])
    else:
        scope = (sub,)
    return RequestKind(name, handler, limit, scope)


@dataclass
class Bucket:
    tokens: float
    updated: float  # virtual seconds

    def refill(self, limit: Limit, factor: float, vnow: float) -> None:
        if vnow > self.updated:
            burst = limit.burst * factor
            self.tokens = min(
                burst, self.tokens + (vnow - self.updated) * limit.refill_per_second * factor
            )
            self.updated = vnow


@dataclass
class Window:
    """A fixed-window quota: `remaining` requests until `ends` (virtual seconds; None before the
    first request of a window, which starts the window)."""

    remaining: float
    ends: float | None = None

    def roll(self, limit: Limit, vnow: float) -> None:
        if self.ends is not None and vnow >= self.ends - EPSILON:
            self.remaining, self.ends = limit.burst, None

    def left(self, limit: Limit, vnow: float) -> float:
        """Virtual seconds until the quota is whole again (a whole window if not started)."""
        length = limit.window_seconds if limit.window_seconds is not None else 0.0
        return length if self.ends is None else max(0.0, self.ends - vnow)


@dataclass
class Verdict:
    """The outcome of a throttle check: allowed, or the 429 to answer instead."""

    allowed: bool
    headers: dict[str, str]
    throttled_by: str | None = None  # e.g. "arm_reads", "arm_reads_global", "aks_put_agent_pool"
    retry_after: int = 0  # whole real seconds
    body: dict[str, Any] | None = None


def hhmmss(seconds: float) -> str:
    """Whole seconds rounded up, as `hh:mm:ss` (Resource Graph's `x-ms-user-quota-resets-after`)."""
    total = max(0, math.ceil(seconds - EPSILON))
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def _retry_headers(real_wait: float, time_scale: float) -> tuple[int, dict[str, str]]:
    real_wait = min(real_wait, NEVER_SECONDS)
    seconds = max(1, math.ceil(real_wait - EPSILON))
    headers = {"Retry-After": str(seconds)}
    if time_scale != 1:
        headers["x-ms-retry-after-ms"] = str(max(1, math.ceil(real_wait * 1000 - 1e-6)))
    return seconds, headers


class Throttler:
    """All buckets, the limits they follow and the scalable clock they refill by."""

    def __init__(self, enabled: bool = True, time_scale: float = 1.0) -> None:
        check_time_scale(time_scale)
        self.enabled = enabled
        self.time_scale = float(time_scale)
        self.limits: dict[str, Limit] = dict(DEFAULT_LIMITS)
        self._buckets: dict[tuple[str, tuple[str, ...]], Bucket] = {}
        self._windows: dict[tuple[str, tuple[str, ...]], Window] = {}
        self._virtual = 0.0
        self._real: float | None = None

    # --- clock ---------------------------------------------------------------------------------

    def _vnow(self, now: float) -> float:
        """Virtual seconds: real time since the last call, times the scale in force then."""
        if self._real is None:
            self._real = now
        if now > self._real:
            self._virtual += (now - self._real) * self.time_scale
            self._real = now
        return self._virtual

    def set_time_scale(self, scale: float, now: float) -> None:
        check_time_scale(scale)
        self._vnow(now)  # what has refilled so far refilled at the old scale
        self.time_scale = float(scale)

    # --- settings ------------------------------------------------------------------------------

    def refill_all(self) -> None:
        """Every bucket full again (buckets are made full when first used)."""
        self._buckets.clear()
        self._windows.clear()

    def set_limits(self, raw: Any) -> None:
        """Override limits: `{"aks_put_agent_pool": {"burst": 2, "refill_per_second": 0.5}}`.

        Validates everything before changing anything; the overridden limits' buckets refill.
        """
        if not isinstance(raw, dict):
            raise ThrottleConfigError("'limits' must be an object")
        new = dict(self.limits)
        for name, value in raw.items():
            if name not in DEFAULT_LIMITS:
                raise ThrottleConfigError(
                    f"unknown limit {name!r}; use one of {sorted(DEFAULT_LIMITS)}"
                )
            window = new[name].window_seconds
            keys = {"burst", "refill_per_second"} if window is None else {"burst", "window_seconds"}
            if not isinstance(value, dict) or set(value) - keys:
                raise ThrottleConfigError(
                    f"limit {name!r} must be an object with some of {sorted(keys)}"
                )
            burst = value.get("burst", new[name].burst)
            rate = value.get("refill_per_second", new[name].refill_per_second)
            window = value.get("window_seconds", window)
            checks = (("burst", burst), ("refill_per_second", rate), ("window_seconds", window))
            for field_name, number in checks:
                if number is not None and (
                    isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0
                ):
                    raise ThrottleConfigError(f"{name}.{field_name} must be a number >= 0")
            if burst < 1:
                raise ThrottleConfigError(f"{name}.burst must be at least 1")
            if window is None:
                new[name] = Limit(float(burst), float(rate), new[name].scope)
            elif window <= 0:
                raise ThrottleConfigError(f"{name}.window_seconds must be > 0")
            else:
                new[name] = window_limit(float(burst), float(window), new[name].scope)
        self.limits = new
        for bucket_key in [
            k for k in self._buckets if k[0] in raw or k[0].removesuffix("_global") in raw
        ]:
            del self._buckets[bucket_key]
        for window_key in [k for k in self._windows if k[0] in raw]:
            del self._windows[window_key]

    def to_dict(self, now: float) -> dict[str, Any]:
        vnow = self._vnow(now)
        buckets = []
        for (name, scope), bucket in self._buckets.items():
            limit, factor = self._limit(name)
            bucket.refill(limit, factor, vnow)
            buckets.append(
                {
                    "limit": name,
                    "scope": list(scope),
                    "tokens": round(bucket.tokens, 3),
                    "burst": limit.burst * factor,
                }
            )
        for (name, scope), window in self._windows.items():
            limit = self.limits[name]
            window.roll(limit, vnow)
            buckets.append(
                {
                    "limit": name,
                    "scope": list(scope),
                    "tokens": window.remaining,
                    "burst": limit.burst,
                    "resets_in_seconds": round(window.left(limit, vnow) / self.time_scale, 3),
                }
            )
        return {
            "enabled": self.enabled,
            "time_scale": self.time_scale,
            "limits": {name: limit.to_dict() for name, limit in self.limits.items()},
            "buckets": buckets,
        }

    # --- checks --------------------------------------------------------------------------------

    def _limit(self, name: str) -> tuple[Limit, float]:
        if name.endswith("_global"):
            return self.limits[name.removesuffix("_global")], GLOBAL_FACTOR
        return self.limits[name], 1

    def _bucket(self, name: str, scope: tuple[str, ...], vnow: float) -> Bucket:
        limit, factor = self._limit(name)
        bucket = self._buckets.get((name, scope))
        if bucket is None:
            bucket = self._buckets[(name, scope)] = Bucket(limit.burst * factor, vnow)
        else:
            bucket.refill(limit, factor, vnow)
        return bucket

    def _wait(self, name: str, bucket: Bucket) -> float:
        """Real seconds until `bucket` holds a whole token."""
        limit, factor = self._limit(name)
        rate = limit.refill_per_second * factor * self.time_scale
        missing = 1 - bucket.tokens
        if missing <= EPSILON:
            return 0.0
        return math.inf if rate <= 0 else missing / rate

    def _take(
        self, names: list[tuple[str, tuple[str, ...]]], now: float
    ) -> tuple[list[Bucket], str | None, float]:
        """One token from each bucket, or none at all: (buckets, the empty one, real wait)."""
        vnow = self._vnow(now)
        buckets = [self._bucket(name, scope, vnow) for name, scope in names]
        if self.enabled:
            waits = [
                (self._wait(name, b), name) for (name, _), b in zip(names, buckets, strict=True)
            ]
            wait, name = max(waits)
            if wait > 0:
                return buckets, name, wait
            for bucket in buckets:
                bucket.tokens -= 1
        return buckets, None, 0.0

    def arm(self, method: str, subscription: str | None, principal: str, now: float) -> Verdict:
        """Resource Manager's check; its headers go on the answer whatever happens next."""
        operation = ARM_OPERATIONS.get(method.upper(), "reads")
        level = "subscription" if subscription else "tenant"
        scope = (subscription or "").lower()
        name = f"arm_{operation}"
        buckets, empty, wait = self._take(
            [(name, (level, scope, principal)), (f"{name}_global", (level, scope))], now
        )
        own, everyone = buckets
        if self.enabled:
            remaining, global_remaining = math.floor(own.tokens), math.floor(everyone.tokens)
        else:  # nothing is counted: report full buckets
            remaining = int(self.limits[name].burst)
            global_remaining = int(self.limits[name].burst * GLOBAL_FACTOR)
        headers = {
            f"x-ms-ratelimit-remaining-{level}-{operation}": str(max(0, remaining)),
            f"x-ms-ratelimit-remaining-{level}-global-{operation}": str(max(0, global_remaining)),
        }
        if empty is None:
            return Verdict(True, headers)
        seconds, retry = _retry_headers(wait, self.time_scale)
        kind = operation.removesuffix("s")
        message = (
            f"Number of {kind} requests for {level} '{subscription or 'tenant'}' exceeded the "
            f"limit. Please try again after '{seconds}' seconds."
        )
        return Verdict(
            False,
            {**headers, **retry},
            empty,
            seconds,
            {"error": {"code": "SubscriptionRequestsThrottled", "message": message}},
        )

    def aks(self, kind: RequestKind, subscription: str, now: float) -> Verdict:
        """The AKS resource provider's check for one request."""
        _, empty, wait = self._take([(kind.limit, kind.scope)], now)
        if empty is None:
            return Verdict(True, {})
        seconds, headers = _retry_headers(wait, self.time_scale)
        message = (
            f"The {kind.handler} request limit has been exceeded for SubID='{subscription}', "
            f"please retry again in {seconds} seconds. For more information, please visit "
            "aka.ms/aks/throttling"
        )
        return Verdict(
            False,
            headers,
            empty,
            seconds,
            {"error": {"code": "Throttled", "message": message}},
        )

    def resource_graph(self, principal: str, now: float) -> Verdict:
        """Resource Graph's per-principal quota: a fixed window, its two headers on every answer."""
        name = "resource_graph"
        limit = self.limits[name]
        vnow = self._vnow(now)
        window = self._windows.get((name, (principal,)))
        if window is None:
            window = self._windows[(name, (principal,))] = Window(limit.burst)
        window.roll(limit, vnow)
        if not self.enabled:  # nothing is counted: report a whole quota and a whole window
            return Verdict(True, self._quota_headers(limit.burst, Window(limit.burst), vnow))
        if window.remaining < 1 - EPSILON:
            real_wait = min(window.left(limit, vnow) / self.time_scale, NEVER_SECONDS)
            headers = self._quota_headers(0, window, vnow)
            if self.time_scale != 1:  # hh:mm:ss is too coarse once windows get sub-second
                headers["x-ms-retry-after-ms"] = str(max(1, math.ceil(real_wait * 1000 - 1e-6)))
            body = resource_graph_error(
                "RateLimiting",
                [
                    {
                        "code": "RateLimiting",
                        "message": "Client application has been throttled and should not "
                        "attempt to repeat the request until an amount of time has elapsed. "
                        "Please see https://aka.ms/resourcegraph-throttling for help.",
                    }
                ],
            )
            return Verdict(False, headers, name, max(1, math.ceil(real_wait - EPSILON)), body)
        if window.ends is None:
            window.ends = vnow + (limit.window_seconds or 0.0)
        window.remaining -= 1
        return Verdict(True, self._quota_headers(window.remaining, window, vnow))

    def _quota_headers(self, remaining: float, window: Window, vnow: float) -> dict[str, str]:
        left = window.left(self.limits["resource_graph"], vnow) / self.time_scale
        return {
            "x-ms-user-quota-remaining": str(max(0, math.floor(remaining + EPSILON))),
            "x-ms-user-quota-resets-after": hhmmss(left),
        }


def check_time_scale(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ThrottleConfigError("'throttle_time_scale' must be a number > 0")
    return float(value)
