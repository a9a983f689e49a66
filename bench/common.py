"""What every benchmark shares: the app's settings for a running stack, calling the registered
queue function the way the host does, and putting the stack back to a known state."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from azure.storage.queue import QueueClient

from local.stack import LocalStack
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE, STATE_TABLE

# Retries come back within seconds in the benchmarks (the local run uses 2 s / 30 s).
BENCH_SETTINGS = {"SCALER_RETRY_BASE_SECONDS": "1", "SCALER_RETRY_MAX_SECONDS": "4"}


def app_env(stack: LocalStack) -> dict[str, str]:
    return {**stack.settings, **BENCH_SETTINGS}


def app_environment(stack: LocalStack) -> AbstractContextManager[None]:
    """The app's settings in this process's environment (bootstrap reads os.environ)."""
    return stack.app_environment(**BENCH_SETTINGS)


def queue(stack: LocalStack, name: str) -> QueueClient:
    return QueueClient.from_connection_string(stack.azurite.connection_string, name)


def fresh_state(stack: LocalStack, operation_seconds: float | None = None) -> None:
    """Emulator back to its seed (empty request log), empty queues, empty state table."""
    control = stack.emulator.control
    control.reset()
    if operation_seconds is not None:
        control.set_operation_seconds(operation_seconds)
    for name in (INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE):
        with queue(stack, name) as client:
            client.clear_messages()
    with stack.table_service() as tables:
        tables.delete_table(STATE_TABLE)
        tables.create_table(STATE_TABLE)


def deliver(body: str, message_id: str) -> float:
    """Call the queue-triggered function as the worker would; returns its duration in seconds."""
    from azure.functions.queue import QueueMessage

    import function_app
    from local.functions_host import registered_functions

    user_function = registered_functions(function_app.app)["scale_intents"].get_user_function()
    message = QueueMessage(id=message_id, body=body.encode("utf-8"), dequeue_count=1)
    started = time.perf_counter()
    user_function(message)
    return time.perf_counter() - started


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
