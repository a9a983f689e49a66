"""`send --wait [--timeout DURATION] [--until-ready]`: after enqueueing, wait for the intent's
final outcome where the app records it, and optionally until Resource Manager shows its pools
ready.

The outcome is read from the app's state table (one point read of the intent's row per poll,
`TableState.source`), never by consuming `scale-results`: that queue has one reader, the
system that consumes outcomes, and a CLI that took messages from it would steal them.

Exit codes (also in `aks-scaler --help`):
    0  done: applied, unchanged, or superseded (a newer source decides; said on the line)
    4  rejected      5  poisoned (retries spent, parked in the poison queue)
    6  timed out: no final outcome (or, with --until-ready, pools not ready) in time
    3  the state table (or, with --until-ready, the cluster) could not be read
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import isodate

from scaler.cli.io import (
    EXIT_POISONED,
    EXIT_REJECTED,
    EXIT_TIMED_OUT,
    EXIT_UNREACHABLE,
    CliError,
)
from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.pools import (
    AKS_MAX_NODES_PER_POOL,
    Autoscale,
    ManualCount,
    PoolRequest,
    PoolState,
    parse_pool_request,
)
from scaler.domain.sources import Source, SourceKind
from scaler.service_layer.ports import ClusterGateway, GatewayError, SourceRecord, Status

DEFAULT_TIMEOUT = "PT15M"
# Seconds between two point reads of the intent's row, and between two reads of the pools.
STATE_POLL_SECONDS = 1.0
ARM_POLL_SECONDS = 5.0

DONE = "done"
REJECTED = "rejected"
POISONED = "poisoned"
TIMED_OUT = "timed_out"

EXIT_CODES = {DONE: 0, REJECTED: EXIT_REJECTED, POISONED: EXIT_POISONED, TIMED_OUT: EXIT_TIMED_OUT}


def duration(text: str) -> float:
    """`--timeout`: an ISO-8601 duration (PT5M) or a number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = isodate.parse_duration(text)
            seconds = parsed.total_seconds()
        except (isodate.ISO8601Error, ValueError, AttributeError, OverflowError):
            raise ValueError(f"not a duration: {text!r}") from None
    if not seconds > 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return seconds


class SourceReader(Protocol):
    def source(self, cluster: ClusterRef, intent_id: str) -> SourceRecord | None: ...


@dataclass
class Waiter:
    """Polls until a deadline; `clock`/`sleep` are injectable for tests."""

    deadline: float
    progress: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def left(self) -> float:
        return self.deadline - self.clock()

    def pause(self, seconds: float) -> bool:
        """Sleep up to `seconds` (not past the deadline); False once the deadline has passed."""
        left = self.left()
        if left <= 0:
            return False
        self.sleep(min(seconds, left))
        return True


@dataclass(frozen=True)
class Waited:
    status: str  # DONE, REJECTED, POISONED, TIMED_OUT
    outcome: dict[str, Any] | None = None
    note: str | None = None  # said on the outcome line (superseded, an earlier send, ...)
    last_seen: str = "not recorded yet"  # for a timeout's message


def wait_for_outcome(
    store: SourceReader,
    cluster: ClusterRef,
    sent: Source,
    message_id: str,
    waiter: Waiter,
) -> Waited:
    """Poll the intent's row until its final outcome. `sent` is the intent as recorded by the
    app (its id, kind, pools), `message_id` the queue message `send` just put."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    seen = "not recorded yet"
    last_error: str | None = None
    while True:
        try:
            record = store.source(cluster, sent.id)
            last_error = None
        except ClientAuthenticationError as error:
            raise CliError(
                f"cannot read the app's state table: {_line(error)}", EXIT_UNREACHABLE
            ) from None
        except HttpResponseError as error:
            if error.status_code in (401, 403):
                raise CliError(
                    f"cannot read the app's state table (needs Storage Table Data Reader): "
                    f"{_line(error)}",
                    EXIT_UNREACHABLE,
                ) from None
            record, last_error = None, _line(error)
        except AzureError as error:  # storage out of reach for now: keep trying
            record, last_error = None, _line(error)
        if record is not None:
            waited = _judge(record, sent, message_id)
            if waited is not None:
                return waited
            now_seen = _describe(record)
            if now_seen != seen:
                waiter.progress(f"intent {sent.id}: {now_seen}")
                seen = now_seen
        if not waiter.pause(STATE_POLL_SECONDS):
            if last_error is not None:
                raise CliError(
                    f"could not read the app's state table: {last_error}", EXIT_UNREACHABLE
                )
            return Waited(TIMED_OUT, last_seen=seen)


def _judge(record: SourceRecord, sent: Source, message_id: str) -> Waited | None:
    """The final answer this row gives for the intent just sent, or None to keep waiting."""
    mine = record.message_id == message_id
    if not mine:
        if not record.source.same_request(sent):
            # The app refuses an id already recorded for another request (nothing recorded):
            # the same answer it publishes on scale-results.
            return Waited(
                REJECTED,
                note=f"DuplicateId: id {sent.id!r} is already used by another intent for this "
                f"cluster (asking {record.source.kind} of "
                f"{', '.join(sorted(record.source.pools)) or 'a release'}); use a new id",
            )
        if record.source.kind is SourceKind.LEASE:
            return None  # a renewal: wait until the app has taken this message
    if record.status is not Status.FINAL or record.outcome is None:
        return None
    outcome = record.outcome
    note = None
    if not mine:
        note = (
            f"the same intent was sent before (message {record.message_id}); an id has one "
            "final outcome, and this is it"
        )
    status = {"rejected": REJECTED, "poisoned": POISONED}.get(str(outcome.get("outcome")), DONE)
    if outcome.get("outcome") == "superseded":
        note = "; ".join(
            n for n in ("done: a newer or stronger source decides these pools", note) if n
        )
    return Waited(status, outcome, note)


def _describe(record: SourceRecord) -> str:
    if record.status is Status.DEFERRED:
        return f"deferred (attempt {record.attempt}); the app retries it"
    if record.status is Status.PENDING:
        return "recorded, waiting for its reconcile"
    return record.status.value


# --- until ready ------------------------------------------------------------------------------


def targets_of(outcome: Mapping[str, Any]) -> dict[str, PoolRequest | None]:
    """Each pool of the outcome and the desired state it reports (None: only wait for no
    operation in progress)."""
    targets: dict[str, PoolRequest | None] = {}
    for pool in outcome.get("pools") or []:
        desired = pool.get("desired")
        try:
            request = (
                parse_pool_request(desired, "desired", AKS_MAX_NODES_PER_POOL)
                if desired is not None
                else None
            )
        except InvalidInput:
            request = None
        targets[str(pool["pool"])] = request
    return targets


def is_ready(pool: PoolState | None, request: PoolRequest | None) -> bool:
    """At the desired state, with no operation in progress (provisioningState Succeeded)."""
    if pool is None or pool.is_busy:
        return False
    if request is None:
        return True
    if isinstance(request, ManualCount):
        return not pool.is_stopped and not pool.autoscale and pool.count == request.count
    if isinstance(request, Autoscale):
        return (
            not pool.is_stopped
            and pool.autoscale
            and (pool.min_count, pool.max_count) == (request.min_count, request.max_count)
            and request.min_count <= pool.count <= request.max_count
        )
    return pool.is_stopped == (request.code == "Stopped")


def wait_until_ready(
    clusters: ClusterGateway,
    cluster: ClusterRef,
    targets: Mapping[str, PoolRequest | None],
    waiter: Waiter,
) -> tuple[bool, dict[str, PoolState]]:
    """Read the cluster's pools until every target is ready; (ready, the pools last read)."""
    seen: dict[str, str] = {}
    last: dict[str, PoolState] = {}
    while True:
        try:
            last = {p.name: p for p in clusters.list_pools(cluster)}
        except GatewayError as error:
            if not error.transient:
                raise CliError(
                    f"could not read the pools of {cluster.short_name}: {error}", EXIT_UNREACHABLE
                ) from None
        else:
            waiting = {n: r for n, r in targets.items() if not is_ready(last.get(n), r)}
            if not waiting:
                return True, last
            for name in waiting:
                text = _pool_text(last.get(name))
                if seen.get(name) != text:
                    want = _form_text(waiting[name])
                    waiter.progress(f"{name}: {text}; waiting for {want}")
                    seen[name] = text
        if not waiter.pause(ARM_POLL_SECONDS):
            return False, last


def _pool_text(pool: PoolState | None) -> str:
    if pool is None:
        return "no such pool"
    if pool.is_stopped:
        text = "stopped"
    elif pool.autoscale:
        text = f"autoscale {pool.min_count}-{pool.max_count}, {pool.count} nodes"
    else:
        text = f"{pool.count} nodes"
    if pool.is_busy:
        text += f", {pool.provisioning_state} (operation in progress)"
    return text


def _form_text(request: PoolRequest | None) -> str:
    if request is None:
        return "provisioningState Succeeded"
    if isinstance(request, ManualCount):
        form = f"{request.count} nodes"
    elif isinstance(request, Autoscale):
        form = f"autoscale {request.min_count}-{request.max_count}"
    else:
        form = request.code.lower()
    return f"{form}, provisioningState Succeeded"


def _line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
