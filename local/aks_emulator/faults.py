"""Fault injection: scripted rules and seeded random faults, switchable at run time."""

from __future__ import annotations

import random as _random
import uuid
from dataclasses import dataclass, field
from typing import Any

# Kinds answered on ARM paths; `token_500` is the only one for the token endpoint.
ARM_KINDS = ("429", "500", "409", "412", "reset", "403", "400")
TOKEN_KINDS = ("token_500",)
ALL_KINDS = ARM_KINDS + TOKEN_KINDS


class FaultConfigError(ValueError):
    """A fault configuration the control API refuses (answered with 400)."""


def _applies(kind: str, is_token: bool) -> bool:
    return (kind in TOKEN_KINDS) == is_token


def _check_filters(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    method = raw.get("method")
    path_contains = raw.get("path_contains")
    if method is not None and not isinstance(method, str):
        raise FaultConfigError("'method' must be a string or null")
    if path_contains is not None and not isinstance(path_contains, str):
        raise FaultConfigError("'path_contains' must be a string or null")
    return (method.upper() if method else None), path_contains


def _matches(method: str | None, path_contains: str | None, req_method: str, path: str) -> bool:
    if method is not None and method != req_method.upper():
        return False
    return path_contains is None or path_contains.lower() in path.lower()


@dataclass(frozen=True)
class Fault:
    """What to answer instead of the normal handling."""

    kind: str
    retry_after: float = 1.0


@dataclass
class FaultRule:
    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    retry_after: float = 1.0

    @classmethod
    def from_dict(cls, raw: Any) -> FaultRule:
        if not isinstance(raw, dict):
            raise FaultConfigError("each rule must be an object")
        kind = str(raw.get("kind"))
        if kind not in ALL_KINDS:
            raise FaultConfigError(
                f"unknown fault kind {raw.get('kind')!r}; use one of {ALL_KINDS}"
            )
        times = raw.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultConfigError("'times' must be a positive integer")
        retry_after = raw.get("retry_after", 1)
        if not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise FaultConfigError("'retry_after' must be a number >= 0")
        method, path_contains = _check_filters(raw)
        return cls(kind, method, path_contains, times, float(retry_after))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path_contains": self.path_contains,
            "times": self.times,
            "retry_after": self.retry_after,
        }


@dataclass
class RandomFaults:
    """Each eligible request fails with probability `rate`; the seed makes runs repeatable."""

    rate: float
    seed: int | None
    kinds: tuple[str, ...]
    retry_after: float = 1.0
    method: str | None = None
    path_contains: str | None = None
    rng: _random.Random = field(default_factory=_random.Random, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> RandomFaults:
        if not isinstance(raw, dict):
            raise FaultConfigError("'random' must be an object or null")
        rate = raw.get("rate", 0.0)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise FaultConfigError("'rate' must be a number between 0 and 1")
        kinds = tuple(str(k) for k in raw.get("kinds") or ("429", "500"))
        unknown = [k for k in kinds if k not in ALL_KINDS]
        if unknown:
            raise FaultConfigError(f"unknown fault kinds {unknown}; use some of {ALL_KINDS}")
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultConfigError("'seed' must be an integer or null")
        retry_after = raw.get("retry_after", 1)
        if not isinstance(retry_after, (int, float)) or retry_after < 0:
            raise FaultConfigError("'retry_after' must be a number >= 0")
        method, path_contains = _check_filters(raw)
        return cls(
            float(rate),
            seed,
            kinds,
            float(retry_after),
            method,
            path_contains,
            _random.Random(seed),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seed": self.seed,
            "kinds": list(self.kinds),
            "retry_after": self.retry_after,
            "method": self.method,
            "path_contains": self.path_contains,
        }


class FaultPlan:
    """The current fault configuration. Not thread-safe on its own: callers hold the lock."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.random: RandomFaults | None = None

    def configure(self, rules: Any, random: Any = None) -> None:
        """Replace the whole configuration; validates everything before changing anything."""
        if rules is None:
            rules = []
        if not isinstance(rules, list):
            raise FaultConfigError("'rules' must be a list")
        parsed = [FaultRule.from_dict(r) for r in rules]
        self.random = RandomFaults.from_dict(random) if random is not None else None
        self.rules = parsed

    def clear(self) -> None:
        self.configure([], None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "random": self.random.to_dict() if self.random else None,
        }

    def pick(self, method: str, path: str, is_token: bool) -> Fault | None:
        """The fault to answer this request with, if any (consumes one use of a rule)."""
        for rule in self.rules:
            if (
                rule.times > 0
                and _applies(rule.kind, is_token)
                and _matches(rule.method, rule.path_contains, method, path)
            ):
                rule.times -= 1
                return Fault(rule.kind, rule.retry_after)
        rnd = self.random
        if rnd is None or not _matches(rnd.method, rnd.path_contains, method, path):
            return None
        # A precondition can only fail on a write: no random 412 for a GET.
        kinds = [
            k
            for k in rnd.kinds
            if _applies(k, is_token) and (k != "412" or method.upper() != "GET")
        ]
        if not kinds:
            return None  # no draw, so the sequence only depends on eligible requests
        if rnd.rng.random() >= rnd.rate:
            return None
        return Fault(rnd.rng.choice(kinds), rnd.retry_after)


def fault_answer(fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and body for every kind except `reset` (which sends nothing)."""
    if fault.kind == "429":
        seconds = fault.retry_after
        shown = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        return (
            429,
            {"Retry-After": shown},
            _error(
                "SubscriptionRequestsThrottled",
                "Number of write requests for subscription exceeded the limit. "
                f"Please try again after '{shown}' seconds.",
            ),
        )
    if fault.kind == "409":
        return (
            409,
            {},
            _error(
                "OperationNotAllowed",
                "Operation is not allowed because there's an in progress scale agent pool "
                "operation. Please wait for it to finish before starting a new operation.",
            ),
        )
    if fault.kind == "412":
        return (
            412,
            {},
            _error(
                "PreconditionFailed",
                "The eTag in the If-Match header does not match the current eTag of the agent "
                "pool.",
            ),
        )
    if fault.kind == "token_500":
        return 500, {}, token_error(500, "An internal error occurred while acquiring the token.")
    if fault.kind == "500":
        return (
            500,
            {},
            _error(
                "InternalServerError",
                "An internal server error occurred. Please retry the request.",
            ),
        )
    if fault.kind == "403":
        return (
            403,
            {},
            _error(
                "AuthorizationFailed",
                "The client does not have authorization to perform action "
                "'Microsoft.ContainerService/managedClusters/agentPools/write' over this scope.",
            ),
        )
    if fault.kind == "400":
        return 400, {}, _error("InvalidParameter", "The request is not valid for this pool.")
    raise ValueError(f"fault kind {fault.kind!r} has no HTTP answer")


def token_error(status: int, message: str) -> dict[str, Any]:
    """The App Service identity endpoint's error shape (MSAL reads statusCode and message)."""
    return {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
