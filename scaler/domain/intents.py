"""Scale intents: the JSON contract other systems write against, parsed and validated.

Parsing is pure: it takes the message text, the defaults from settings and the current time,
and returns an `Intent` or raises `InvalidInput` naming the field. Nothing here does I/O, so an
invalid intent can never reach Resource Manager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import isodate

from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID, ClusterRef
from scaler.domain.errors import InvalidInput, field_name
from scaler.domain.message_text import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from scaler.domain.message_text import decode_message as decode_message
from scaler.domain.pools import (
    ManualCount,
    PoolRequest,
    is_whole_number,
    json_type,
    parse_pool_name,
    parse_pool_request,
)

MAX_POOLS_PER_INTENT = 100
MAX_REASON_CHARS = 1000
# A hold outlives its intent; a month is long enough for any planned exception and short enough
# that a forgotten hold does not pin a pool for good.
MAX_HOLD = timedelta(days=31)

# Set by the app itself when it re-enqueues an intent after a transient failure.
RETRY_FIELD = "_retry"
FIELDS = frozenset(
    {
        "pools",
        "resource_group",
        "cluster",
        "subscription_id",
        "id",
        "issued_at",
        "expires_at",
        "dry_run",
        "reason",
        "hold",
        "hold_until",
        "lease",
        "release",
        RETRY_FIELD,
    }
)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass(frozen=True)
class IntentDefaults:
    """What an intent that names no cluster targets, and the bound on counts."""

    subscription_id: str
    resource_group: str
    cluster: str
    max_count: int
    # How long a lease may last (SCALER_MAX_LEASE), and how far a producer's clock may run ahead
    # of ours (SCALER_MAX_CLOCK_SKEW): an issued_at beyond it would outrank every later intent.
    max_lease: timedelta = timedelta(days=1)
    max_clock_skew: timedelta = timedelta(minutes=5)
    max_attempts: int = 8


@dataclass(frozen=True)
class Intent:
    id: str
    cluster: ClusterRef
    pools: Mapping[str, PoolRequest]
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    dry_run: bool = False
    reason: str | None = None
    # A hold: until when this intent's state wins over everything else.
    hold_until: datetime | None = None
    # A lease: capacity borrowed until then (the id is the lease id); see domain/resolution.py.
    lease_until: datetime | None = None
    lease: timedelta | None = None
    # A release: the id of the lease it ends early (pools stay empty).
    release: str | None = None
    # Which try of a dry run this is (`_retry`, set when the app re-enqueues it).
    attempt: int = 1

    def to_message(self) -> dict[str, Any]:
        """The intent as a queue message: what `send` enqueues and what a retry re-enqueues."""
        message: dict[str, Any] = {
            **({"id": self.id} if self.id else {}),
            "subscription_id": self.cluster.subscription_id,
            "resource_group": self.cluster.resource_group,
            "cluster": self.cluster.name,
            "pools": {name: request.to_json() for name, request in self.pools.items()},
        }
        if self.issued_at:
            message["issued_at"] = self.issued_at.isoformat()
        if self.expires_at:
            message["expires_at"] = self.expires_at.isoformat()
        if self.dry_run:
            message["dry_run"] = True
        if self.reason:
            message["reason"] = self.reason
        if self.hold_until:
            message["hold_until"] = self.hold_until.isoformat()
        if self.lease is not None:
            message["lease"] = isodate.duration_isoformat(self.lease)
        if self.release is not None:
            message["release"] = self.release
            del message["pools"]
        if self.attempt > 1:
            message[RETRY_FIELD] = {"attempt": self.attempt}
        return message


def parse_intent(body: bytes | str, defaults: IntentDefaults, now: datetime) -> Intent:
    return intent_from_json(decode_message(body), defaults, now)


def intent_from_json(
    document: Mapping[str, Any], defaults: IntentDefaults, now: datetime
) -> Intent:
    """`now` is when the intent is accepted: `hold` and `lease` durations run from it."""
    if "pools" not in document and "release" not in document:
        document = _from_seed_shorthand(document)
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise InvalidInput(
            field_name(unknown[0]),
            f"unknown field (allowed: {', '.join(sorted(FIELDS - {RETRY_FIELD}))})",
        )

    cluster = ClusterRef(
        subscription_id=_text(
            document, "subscription_id", defaults.subscription_id, SUBSCRIPTION_ID
        ),
        resource_group=_text(
            document, "resource_group", defaults.resource_group, RESOURCE_GROUP_NAME
        ),
        name=_text(document, "cluster", defaults.cluster, CLUSTER_NAME),
    )
    issued_at = _timestamp(document, "issued_at")
    if issued_at is not None and issued_at - now > defaults.max_clock_skew:
        raise InvalidInput(
            "issued_at",
            f"{issued_at.isoformat()} is in the future (now {now.isoformat()}; at most "
            f"{_minutes(defaults.max_clock_skew)} ahead, SCALER_MAX_CLOCK_SKEW): check the "
            "producer's clock",
        )
    expires_at = _timestamp(document, "expires_at")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(
            "expires_at", f"the intent expired at {expires_at.isoformat()} (now {now.isoformat()})"
        )
    if issued_at is not None and expires_at is not None and expires_at <= issued_at:
        raise InvalidInput("expires_at", "must be later than issued_at")
    dry_run = _flag(document, "dry_run")
    hold_until = _hold_until(document, now, now)
    if hold_until is not None and dry_run:
        raise InvalidInput("hold", "a dry run changes nothing, so it cannot hold anything")
    lease = _lease(document, defaults.max_lease)
    if lease is not None and hold_until is not None:
        raise InvalidInput("lease", "give lease or hold, not both")
    release = _release(document)
    pools = {} if release is not None else _pools(document["pools"], defaults.max_count)
    if lease is not None:
        _lease_pools(pools)
    intent_id = _text(document, "id", "", _ID)
    if lease is not None and not intent_id:
        raise InvalidInput("id", "a lease needs an id: it is the lease id, to renew or release it")

    attempt = _check_retry(document, defaults.max_attempts)
    return Intent(
        id=intent_id,
        cluster=cluster,
        pools=pools,
        issued_at=issued_at,
        expires_at=expires_at,
        dry_run=dry_run,
        reason=_reason(document),
        hold_until=hold_until,
        lease_until=now + lease if lease is not None else None,
        lease=lease,
        release=release,
        attempt=attempt,
    )


def intent_id_of(body: bytes | str) -> str | None:
    """The producer's id, if the message carries a usable one: lets a rejection be correlated."""
    try:
        candidate = decode_message(body).get("id")
    except InvalidInput:
        return None
    return candidate if isinstance(candidate, str) and _ID.fullmatch(candidate) else None


def _from_seed_shorthand(document: Mapping[str, Any]) -> Mapping[str, Any]:
    # The seed project's format: {"manualpool2": 5, ...} targets the default cluster.
    if (
        document
        and not (set(document) & FIELDS)
        and all(is_whole_number(v) for v in document.values())
    ):
        return {"pools": dict(document)}
    raise InvalidInput("pools", 'is required (or send the short form {"<pool>": <count>, ...})')


def _pools(value: object, max_count: int) -> dict[str, PoolRequest]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput("pools", "must be a non-empty object of pool name → desired state")
    if len(value) > MAX_POOLS_PER_INTENT:
        raise InvalidInput("pools", f"at most {MAX_POOLS_PER_INTENT} pools per intent")
    return {
        parse_pool_name(name, f"pools.{name}"): parse_pool_request(
            request, f"pools.{name}", max_count
        )
        for name, request in value.items()
    }


def _text(document: Mapping[str, Any], name: str, default: str, pattern: re.Pattern[str]) -> str:
    value = document.get(name, default)
    if name not in document and not default:
        if name == "id":
            return ""
        raise InvalidInput(name, "is required: the intent names none and no default is configured")
    if not isinstance(value, str):
        raise InvalidInput(name, f"must be a string, got {json_type(value)}")
    if not pattern.fullmatch(value):
        raise InvalidInput(name, f"{value!r} is not a valid {name.replace('_', ' ')}")
    return value


# Every timestamp an intent carries lies in this window, so no arithmetic on one (plus a hold or
# a lease, minus a clock skew) can leave datetime's years 1..9999, and every one can be stored
# in Table storage (which keeps nothing before 1601).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
# No duration an intent carries is longer than this, whatever the caller's own maximum: a
# timestamp in the window plus any duration stays a valid datetime.
LONGEST_DURATION = timedelta(days=10 * 366)


def _timestamp(document: Mapping[str, Any], name: str) -> datetime | None:
    if name not in document:
        return None
    value = document[name]
    if not isinstance(value, str):
        raise InvalidInput(name, "must be an ISO-8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, f"{value!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidInput(name, f"{value!r} has no time zone; add Z or an offset like +01:00")
    try:  # an offset can push year 1 or 9999 out of range when the two are compared
        inside = EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP
    except OverflowError:
        inside = False
    if not inside:
        raise InvalidInput(
            name,
            f"{value!r} is outside {EARLIEST_TIMESTAMP.year}-01-01 to "
            f"{LATEST_TIMESTAMP.year}-01-01 (UTC)",
        )
    return moment


def _duration(
    document: Mapping[str, Any], name: str, maximum: timedelta, *, too_long: str | None = None
) -> timedelta | None:
    """An ISO-8601 duration field ("PT3H", "P1DT12H"), positive and at most `maximum` (and
    never more than LONGEST_DURATION); None when absent. `too_long` replaces the problem text
    for a duration over the maximum."""
    if name not in document:
        return None
    value = document[name]
    limit = min(maximum, LONGEST_DURATION)
    too_long = too_long or f"{value} is longer than {isodate.duration_isoformat(limit)}"
    try:
        duration = isodate.parse_duration(value) if isinstance(value, str) else None
    except OverflowError:  # "P9999999999D": more days than a timedelta holds
        raise InvalidInput(name, too_long) from None
    except (isodate.ISO8601Error, ValueError, ArithmeticError):
        duration = None
    if isinstance(duration, isodate.Duration):
        raise InvalidInput(
            name, f"{value!r}: months and years have no fixed length; use days, e.g. P30D"
        )
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        raise InvalidInput(
            name, f"{value!r} is not a positive ISO-8601 duration like PT3H or P1DT12H"
        )
    if duration > limit:
        raise InvalidInput(name, too_long)
    return duration


def _hold_until(document: Mapping[str, Any], start: datetime, now: datetime) -> datetime | None:
    """`hold` (an ISO-8601 duration from `start`, e.g. "PT3H") or `hold_until` (a time)."""
    if "hold" in document and "hold_until" in document:
        raise InvalidInput("hold", "give hold or hold_until, not both")
    too_long = f"a hold lasts at most {MAX_HOLD.days} days"
    duration = _duration(document, "hold", MAX_HOLD, too_long=too_long)
    until = start + duration if duration is not None else _timestamp(document, "hold_until")
    if until is None:
        return None
    if until <= now:
        raise InvalidInput("hold", f"the hold would already have ended at {until.isoformat()}")
    if until - now > MAX_HOLD:
        raise InvalidInput("hold", too_long)
    return until


def _flag(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    return value


def _reason(document: Mapping[str, Any]) -> str | None:
    value = document.get("reason")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS:
        raise InvalidInput("reason", f"must be a string of at most {MAX_REASON_CHARS} characters")
    return value


def _check_retry(document: Mapping[str, Any], max_attempts: int) -> int:
    """`_retry` is set by the app when it re-enqueues a dry run that met a transient failure
    (everything else is retried by the reconcile). Producers must not set it; it is checked as
    strictly as every other field."""
    if RETRY_FIELD not in document:
        return 1
    retry = document[RETRY_FIELD]
    if not isinstance(retry, Mapping) or set(retry) != {"attempt"}:
        raise InvalidInput(RETRY_FIELD, 'is reserved; the only form is {"attempt": N}')
    attempt = retry["attempt"]
    if not is_whole_number(attempt) or not 1 <= attempt <= max_attempts:
        raise InvalidInput(
            f"{RETRY_FIELD}.attempt",
            f"must be a whole number from 1 to {max_attempts} (SCALER_MAX_ATTEMPTS)",
        )
    return int(attempt)


def _lease(document: Mapping[str, Any], maximum: timedelta) -> timedelta | None:
    if "lease" not in document:
        return None
    value = document["lease"]
    try:
        duration = isodate.parse_duration(value) if isinstance(value, str) else None
    except (isodate.ISO8601Error, ValueError, OverflowError):
        duration = None
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        raise InvalidInput(
            "lease", f"{value!r} is not a positive ISO-8601 duration like PT2H or PT30M"
        )
    if duration > maximum:
        raise InvalidInput(
            "lease",
            f"{value} is longer than {isodate.duration_isoformat(maximum)} (SCALER_MAX_LEASE)",
        )
    return duration


def _lease_pools(pools: Mapping[str, PoolRequest]) -> None:
    """A lease borrows capacity: it names node counts, which add up across leases."""
    for name, request in pools.items():
        if not isinstance(request, ManualCount):
            raise InvalidInput(
                f"pools.{name}",
                "a lease asks for a node count (e.g. 4): counts of concurrent leases add up",
            )
        if request.count < 1:
            raise InvalidInput(f"pools.{name}", "a lease asks for at least 1 node")


def _release(document: Mapping[str, Any]) -> str | None:
    if "release" not in document:
        return None
    for other in ("pools", "lease", "hold", "hold_until"):
        if other in document:
            raise InvalidInput("release", f"a release names only the lease; drop {other!r}")
    value = document["release"]
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput("release", f"{value!r} is not a lease id (the id of a lease intent)")
    return value


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} minutes"
