"""What every benchmark shares: the app's settings for a running stack, calling the registered
queue functions the way the host does (the reconcile queue included), counting the storage
requests the app's functions make, and putting the stack back to a known state."""

from __future__ import annotations

import contextlib
import contextvars
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.storage.queue import QueueClient

from local.stack import LocalStack
from scaler.settings import (
    INTENTS_QUEUE,
    POISON_QUEUE,
    RECONCILE_QUEUE,
    RESULTS_QUEUE,
    STATE_TABLE,
    Settings,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# A schedule that names no pool of the emulator's clusters: a reconcile converges only what the
# benchmark's intents ask, and the timer (never started here) would have nothing to do.
UNSCHEDULED = BENCH_DIR / "unscheduled.toml"
# The app's own default, not the local stack's 1 s: the benchmarks measure what ships.
DEFAULT_COALESCE_SECONDS: float = Settings.coalesce_seconds

# Retries come back within seconds in the benchmarks (the local run uses 2 s / 30 s).
BENCH_SETTINGS = {
    "SCALER_RETRY_BASE_SECONDS": "1",
    "SCALER_RETRY_MAX_SECONDS": "4",
    "SCALER_SCHEDULE_FILE": str(UNSCHEDULED),
    "SCALER_COALESCE_SECONDS": f"{DEFAULT_COALESCE_SECONDS:g}",
}


def app_env(stack: LocalStack, **overrides: str) -> dict[str, str]:
    return {**stack.settings, **BENCH_SETTINGS, **overrides}


def app_environment(stack: LocalStack, **overrides: str) -> AbstractContextManager[None]:
    """The app's settings in this process's environment (bootstrap reads os.environ)."""
    return stack.app_environment(**{**BENCH_SETTINGS, **overrides})


def queue(stack: LocalStack, name: str) -> QueueClient:
    return QueueClient.from_connection_string(stack.azurite.connection_string, name)


def fresh_state(stack: LocalStack, operation_seconds: float | None = None) -> None:
    """Emulator back to its seed (empty request log, full throttle buckets), empty queues,
    empty state table. The app's clients stay warm: with coalescing on, call
    `scaler.bootstrap.reset()` too, or its intake still counts on a reconcile queued before."""
    control = stack.emulator.control
    control.reset()
    if operation_seconds is not None:
        control.set_operation_seconds(operation_seconds)
    for name in (INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE, RECONCILE_QUEUE):
        with queue(stack, name) as client:
            client.clear_messages()
    with stack.table_service() as tables:
        tables.delete_table(STATE_TABLE)
        tables.create_table(STATE_TABLE)


def user_function(name: str) -> Callable[[Any], None]:
    import function_app
    from local.functions_host import registered_functions

    function: Callable[[Any], None] = registered_functions(function_app.app)[
        name
    ].get_user_function()
    return function


def deliver(body: str, message_id: str, function: str = "scale_intents") -> float:
    """Call a queue-triggered function as the worker would; returns its duration in seconds."""
    from azure.functions.queue import QueueMessage

    call = user_function(function)
    message = QueueMessage(id=message_id, body=body.encode("utf-8"), dequeue_count=1)
    started = time.perf_counter()
    call(message)
    return time.perf_counter() - started


def settle(stack: LocalStack, quiet: float = 1.0, timeout: float = 30.0) -> list[float]:
    """Deliver the visible `scale-reconcile` messages to the reconcile function as the host
    would, until none has been visible for `quiet` seconds. Returns each call's duration."""
    durations = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    with queue(stack, RECONCILE_QUEUE) as client:
        while time.monotonic() < deadline:
            messages = list(client.receive_messages(max_messages=16, visibility_timeout=60))
            for message in messages:
                durations.append(deliver(message.content, message.id, "scale_reconcile"))
                client.delete_message(message)
            if messages:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                break
            else:
                time.sleep(0.05)
    return durations


def arm_requests(stack: LocalStack) -> list[dict[str, Any]]:
    """Resource Manager requests only: not the token endpoint, not the control API."""
    return [r for r in stack.emulator.control.requests_log() if not r["path"].startswith("/msi")]


def take_results(stack: LocalStack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with queue(stack, RESULTS_QUEUE) as client:
        while messages := list(client.receive_messages(max_messages=32)):
            for message in messages:
                found.append(json.loads(message.content))
                client.delete_message(message)
    return found


def send_all(stack: LocalStack, name: str, bodies: Iterable[str], threads: int = 16) -> float:
    """Enqueue in parallel; returns the seconds it took."""
    bodies = list(bodies)
    clients = [queue(stack, name) for _ in range(threads)]
    chunks = [bodies[i::threads] for i in range(threads)]

    def send(pair: tuple[QueueClient, list[str]]) -> None:
        client, chunk = pair
        for body in chunk:
            client.send_message(body)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, zip(clients, chunks, strict=True)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return elapsed


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- storage requests, counted at the HTTP transport ----------------------------------------------

# The function whose call is running on this thread; requests made outside a function (the
# host's own receive and delete, the benchmark's sends) are not the app's.
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


@dataclass
class StorageRequests:
    """HTTP requests the app's functions sent, by (function, service, operation)."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    failed: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # status >= 400

    def total(self, *, service: str | None = None, function: str | None = None) -> int:
        return sum(
            n
            for (f, s, _), n in self.counts.items()
            if (service is None or s == service) and (function is None or f == function)
        )

    @property
    def storage(self) -> int:
        return self.total(service="table") + self.total(service="queue")

    def by_operation(self) -> dict[str, int]:
        """`"table query": n, "queue send": n, …` over both functions."""
        out: Counter[str] = Counter()
        for (_, service, operation), n in self.counts.items():
            if service in ("table", "queue"):
                out[f"{service} {operation}"] += n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def by_function(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (function, service, _), n in self.counts.items():
            if service in ("table", "queue"):
                out[function] += n
        return dict(sorted(out.items()))


def _operation(service: str, method: str, path: str, query: str) -> str:
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    if service == "table":
        if tail == "$batch":
            return "transaction"
        if method == "GET":
            return "query" if "(" not in tail or "$filter" in query else "get"
        if method == "POST":
            return "insert"
        return {"PUT": "update", "MERGE": "merge", "PATCH": "merge", "DELETE": "delete"}.get(
            method, method.lower()
        )
    if service == "queue":
        if path.endswith("/messages"):
            return {"POST": "send", "GET": "receive", "DELETE": "clear"}.get(method, method)
        if "/messages/" in path:
            return {"DELETE": "delete", "PUT": "update"}.get(method, method)
        return method.lower()
    return method.lower()


@contextlib.contextmanager
def count_requests(stack: LocalStack) -> Iterator[StorageRequests]:
    """Count every HTTP request azure-core sends from this process while a benchmark-wrapped
    function runs (see `counted`), at the transport: retries are separate requests, a table
    transaction is one. The app's code is not touched; only this process's transport class."""
    from azure.core.pipeline.transport import RequestsTransport

    ports = {
        stack.azurite.ports["queue"]: "queue",
        stack.azurite.ports["table"]: "table",
        stack.azurite.ports["blob"]: "blob",
        urlsplit(stack.emulator.arm_endpoint).port: "arm",
    }
    seen = StorageRequests()
    lock = threading.Lock()
    original = RequestsTransport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        function = _function.get()
        response = original(self, request, **kwargs)
        if function is not None:
            url = urlsplit(request.url)
            service = ports.get(url.port, "other")
            if service == "arm" and url.path.startswith("/msi"):
                service = "token"
            key = (function, service, _operation(service, request.method, url.path, url.query))
            with lock:
                seen.counts[key] += 1
                if response.status_code >= 400:
                    seen.failed[key] += 1
        return response

    RequestsTransport.send = send
    try:
        yield seen
    finally:
        RequestsTransport.send = original


def counted(name: str, call: Callable[[Any], None], calls: Counter[str]) -> Callable[[Any], None]:
    """`call` with its requests attributed to `name` by count_requests, and its calls counted."""

    def wrapper(message: Any) -> None:
        token = _function.set(name)
        try:
            calls[name] += 1
            call(message)
        finally:
            _function.reset(token)

    return wrapper


@dataclass
class HostRun:
    """What a run of the local Functions host did until every intent had its final outcome."""

    seconds: float  # first poll until the last final outcome was seen
    calls: dict[str, int]
    outcomes: dict[str, int]  # every published outcome, by kind (deferred ones included)
    finals: dict[str, dict[str, Any]]  # intent id → its final outcome
    reconcile_left: int  # messages still on scale-reconcile (delayed wake-ups) at the end


def run_host(
    stack: LocalStack,
    expected: int,
    calls: Counter[str],
    quiet: float = 3.0,
    guard: float = 600.0,
) -> HostRun:
    """Run `function_app` under the local Functions host (both queue triggers, host.json's
    settings; no timer) until `expected` intents have a final outcome and no function has run
    for `quiet` seconds, so follow-up reconciles are counted too. Every function is wrapped by
    `counted`. `guard` stops a hang; it is not a measurement."""
    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings

    finals: dict[str, dict[str, Any]] = {}
    outcomes: Counter[str] = Counter()
    with stack.queue_service() as queues:
        host = LocalFunctionsHost(
            function_app.app, queues, QueueSettings.from_host_json(REPO_ROOT / "host.json")
        )
        names = {"scale-intents": "scale_intents", "scale-reconcile": "scale_reconcile"}
        for queue_name, call in list(host.queue_functions.items()):
            name = names.get(queue_name, queue_name)
            host.queue_functions[queue_name] = counted(name, call, calls)
        started = time.perf_counter()
        host.start()
        deadline = time.monotonic() + guard
        last_final = started
        try:
            while time.monotonic() < deadline:
                for result in take_results(stack):
                    outcomes[result["outcome"]] += 1
                    if result.get("final"):
                        finals[result["intent_id"]] = result
                        last_final = time.perf_counter()
                if len(finals) >= expected:
                    before = sum(calls.values())
                    time.sleep(quiet)
                    if sum(calls.values()) == before:
                        break
                else:
                    time.sleep(0.1)
        finally:
            host.stop()
        for result in take_results(stack):  # published by a follow-up, if any
            outcomes[result["outcome"]] += 1
    with queue(stack, RECONCILE_QUEUE) as client:
        left = client.get_queue_properties().approximate_message_count or 0
    return HostRun(last_final - started, dict(calls), dict(outcomes), finals, left)
