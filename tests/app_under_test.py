"""The app under test: Azurite and the AKS emulator as real processes, one stack for the whole
session, and the functions of function_app.py called as the worker calls them. The fixtures are
registered for every suite by tests/conftest.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueClient

import function_app
from local.aks_emulator.control import EmulatorControl
from local.functions_host import registered_functions
from local.stack import LocalStack, local_stack
from scaler import bootstrap
from scaler.settings import (
    INTENTS_QUEUE,
    POISON_QUEUE,
    RECONCILE_QUEUE,
    RESULTS_QUEUE,
    STATE_TABLE,
)

SUB = "00000000-0000-0000-0000-000000000000"
UNSCHEDULED = Path(__file__).parent / "data" / "unscheduled.toml"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with local_stack(operation_seconds=0.5) as running:
        yield running


@dataclass
class App:
    """The function app as the host sees it, plus what the tests read back."""

    stack: LocalStack
    emulator: EmulatorControl

    def queue(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self.stack.azurite.connection_string, name)

    def deliver(self, body: str | bytes, dequeue_count: int = 1, message_id: str = "m-1") -> None:
        """Call the intent function exactly as the worker would."""
        self.call("scale_intents", body, dequeue_count, message_id)

    def call(
        self, function: str, body: str | bytes, dequeue_count: int = 1, message_id: str = "m-1"
    ) -> None:
        """Call a queue-triggered function of function_app.py as the worker would."""
        registered = registered_functions(function_app.app)[function]
        raw = body.encode() if isinstance(body, str) else body
        message = FunctionsQueueMessage(id=message_id, body=raw, dequeue_count=dequeue_count)
        registered.get_user_function()(message)

    def settle(self, timeout: float = 15.0, quiet: float = 1.5) -> int:
        """Deliver `scale-reconcile` messages to the reconcile function as the host would,
        including delayed ones that become visible within `timeout`; stop once nothing has been
        visible for `quiet` seconds (so wake-ups queued far ahead are left alone). Returns how
        many were delivered."""
        delivered = 0
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        with self.queue(RECONCILE_QUEUE) as client:
            # Nothing queued, not even invisible (a delayed wake-up): nothing to wait for.
            if client.get_queue_properties().approximate_message_count == 0:
                return 0
            while time.monotonic() < deadline:
                messages = list(client.receive_messages(max_messages=16, visibility_timeout=60))
                for message in messages:
                    self.call(
                        "scale_reconcile",
                        message.content,
                        message.dequeue_count or 1,
                        message.id,
                    )
                    client.delete_message(message)
                    delivered += 1
                if messages:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= quiet:
                    return delivered
                else:
                    time.sleep(0.1)
        return delivered

    def tick(self, past_due: bool = False) -> int:
        """Fire the schedule timer as the host would, then deliver the reconciles it queued
        (one per cluster) and what they queue in turn, as the host would. Returns how many
        reconciles ran."""
        from azure.functions.timer import TimerRequest

        timer = registered_functions(function_app.app)["scale_schedule"]
        timer.get_user_function()(TimerRequest(past_due=past_due))
        return self.settle(quiet=0.3)

    def take(self, name: str, timeout: float = 0, count: int = 1) -> list[dict[str, Any]]:
        """Receive and delete the visible messages of a queue, waiting up to `timeout` for at
        least `count` of them."""
        deadline = time.monotonic() + timeout
        taken: list[dict[str, Any]] = []
        with self.queue(name) as client:
            while True:
                for message in client.receive_messages(max_messages=32):
                    client.delete_message(message)
                    taken.append(json.loads(message.content))
                if len(taken) >= count or time.monotonic() >= deadline:
                    return taken
                time.sleep(0.2)

    def results(self) -> list[dict[str, Any]]:
        return self.take(RESULTS_QUEUE)

    def only_result(self) -> dict[str, Any]:
        results = self.results()
        assert len(results) == 1, results
        return results[0]

    def pool(self, name: str, cluster: str = "aks-demo") -> dict[str, Any]:
        return self.emulator.pool("rg-demo", cluster, name)

    def arm_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.emulator.requests_log() if not r["path"].startswith("/msi")]

    def lists(self) -> list[dict[str, Any]]:
        return [r for r in self.arm_requests() if r["method"] == "GET"]


@pytest.fixture
def app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    for name, value in stack.settings.items():
        monkeypatch.setenv(name, value)
    # Reconcile at once: tests deliver the reconcile messages themselves (App.settle).
    monkeypatch.setenv("SCALER_COALESCE_SECONDS", "0")
    # A schedule that names none of the emulator's pools: tests of the schedule set their own.
    monkeypatch.setenv("SCALER_SCHEDULE_FILE", str(UNSCHEDULED))
    stack.emulator.control.reset()
    for name in (INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE, RECONCILE_QUEUE):
        with QueueClient.from_connection_string(stack.azurite.connection_string, name) as queue:
            queue.clear_messages()
    with stack.table_service() as tables:  # forget pool records and finished intents
        tables.delete_table(STATE_TABLE)
        tables.create_table(STATE_TABLE)
    bootstrap.reset()
    yield App(stack, stack.emulator.control)
    bootstrap.reset()


@pytest.fixture
def settings_override(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def override(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        bootstrap.reset()

    return override
