"""A stand-in for the Azure Functions host, for machines without Core Tools (`func`).

It drives the functions registered in `function_app.py` exactly as the host would call them:
every queue trigger (today `scale-intents` and `scale-reconcile`) polls Azurite with host.json's
batch size, polling interval, visibility timeout and poison semantics (after `maxDequeueCount`
failed deliveries the message moves to `<queue>-poison`, created on first use as the host does);
timer triggers fire on an interval. A queue name given as `%SETTING%` is read from the
environment, as the host resolves binding expressions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueMessage, QueueServiceClient

log = logging.getLogger("local.host")

# The host keeps a message invisible while a function runs (and renews that lease); a message
# whose function died with its process comes back when the lease ends.
PROCESSING_LEASE_SECONDS = 300


@dataclass(frozen=True)
class QueueSettings:
    """The `extensions.queues` section of host.json that the host applies to queue triggers."""

    batch_size: int = 16
    max_polling_seconds: float = 2.0
    visibility_timeout_seconds: int = 30
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, path: Path) -> QueueSettings:
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        return cls(
            batch_size=int(queues.get("batchSize", 16)),
            max_polling_seconds=_seconds(queues.get("maxPollingInterval", "00:00:02")),
            visibility_timeout_seconds=int(_seconds(queues.get("visibilityTimeout", "00:00:30"))),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            message_encoding=str(queues.get("messageEncoding", "base64")),
        )


def registered_functions(app: func.FunctionApp) -> dict[str, Any]:
    """name → function object, as the worker indexes them. `get_functions()` caches and
    refuses a second indexing of the same app, so the cache is cleared first."""
    app.functions_bindings = None
    return {function.get_function_name(): function for function in app.get_functions()}


@dataclass
class Invocation:
    """One delivery of a queue message to its function (recorded when asked for)."""

    queue: str
    message_id: str
    body: str
    dequeue_count: int
    started: float  # time.time(), comparable with the emulator's request log
    ended: float = 0.0
    error: str | None = None  # the exception the function raised, if it did
    moved_to_poison: bool = False


_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


def resolve_setting_expression(value: str) -> str:
    """`%NAME%` → the app setting NAME, as the host resolves binding expressions."""

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"binding expression {match.group(0)} names no app setting")
        return os.environ[name]

    return _SETTING.sub(setting, value)


def trigger_of(function: Any) -> dict[str, Any]:
    for raw in function.get_raw_bindings():
        binding: dict[str, Any] = json.loads(raw)
        if binding["type"].endswith("Trigger"):
            return binding
    raise ValueError(f"function {function.get_function_name()} has no trigger")


class LocalFunctionsHost:
    def __init__(
        self,
        app: func.FunctionApp,
        queues: QueueServiceClient,
        settings: QueueSettings,
        timer_interval_seconds: float | None = None,
        lease_seconds: int = PROCESSING_LEASE_SECONDS,
        record_invocations: bool = False,
    ) -> None:
        """`record_invocations`: keep every delivery in `invocations` (for tests that check what
        each function call did; unbounded, so off by default)."""
        self._queues = queues
        self._lease_seconds = lease_seconds
        self._settings = settings
        self._timer_interval = timer_interval_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.queue_functions: dict[str, Callable[..., Any]] = {}
        self.timer_functions: dict[str, Callable[..., Any]] = {}
        # queue name → the function it triggers: every queue trigger is polled.
        self.queue_triggers: dict[str, str] = {}
        self.invocations: list[Invocation] | None = [] if record_invocations else None
        self._invocations_lock = threading.Lock()
        self._poison_ready: set[str] = set()
        for name, function in registered_functions(app).items():
            trigger = trigger_of(function)
            if trigger["type"] == "queueTrigger":
                queue_name = resolve_setting_expression(trigger["queueName"])
                if queue_name in self.queue_triggers:
                    raise ValueError(
                        f"functions {self.queue_triggers[queue_name]} and {name} both trigger "
                        f"on queue {queue_name}: the host would compete them for messages"
                    )
                self.queue_triggers[queue_name] = name
                self.queue_functions[queue_name] = function.get_user_function()
            elif trigger["type"] == "timerTrigger":
                self.timer_functions[name] = function.get_user_function()

    def start(self) -> None:
        for queue_name, user_function in self.queue_functions.items():
            self._spawn(f"queue:{queue_name}", self._poll_queue, queue_name, user_function)
        if self._timer_interval:
            for name, user_function in self.timer_functions.items():
                self._spawn(f"timer:{name}", self._run_timer, user_function)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def drain(self, queue_name: str) -> int:
        """Process what is visible on a queue now, then return how many messages ran."""
        user_function = self.queue_functions[queue_name]
        client = self._queues.get_queue_client(queue_name)
        total = 0
        with ThreadPoolExecutor(self._settings.batch_size) as pool:
            while batch := self._receive(client):
                list(pool.map(lambda m: self._deliver(client, queue_name, user_function, m), batch))
                total += len(batch)
        return total

    # -- queue semantics ---------------------------------------------------------------------

    def _poll_queue(self, queue_name: str, user_function: Callable[..., Any]) -> None:
        client = self._queues.get_queue_client(queue_name)
        idle = 0.1
        with ThreadPoolExecutor(self._settings.batch_size) as pool:
            while not self._stop.is_set():
                try:
                    batch = self._receive(client)
                except Exception as error:  # storage restarting: back off like the host does
                    log.warning("polling %s failed: %s", queue_name, error)
                    batch = []
                if not batch:
                    self._stop.wait(idle)
                    idle = min(idle * 2, self._settings.max_polling_seconds)
                    continue
                idle = 0.1
                list(pool.map(lambda m: self._deliver(client, queue_name, user_function, m), batch))

    def _receive(self, client: Any) -> list[QueueMessage]:
        return list(
            client.receive_messages(
                messages_per_page=self._settings.batch_size,
                max_messages=self._settings.batch_size,
                visibility_timeout=self._lease_seconds,
            )
        )

    def _deliver(
        self, client: Any, queue_name: str, user_function: Callable[..., Any], message: QueueMessage
    ) -> None:
        body = message.content if isinstance(message.content, str) else str(message.content)
        invocation = Invocation(
            queue_name, str(message.id), body, int(message.dequeue_count or 1), time.time()
        )
        if self.invocations is not None:
            with self._invocations_lock:
                self.invocations.append(invocation)
        try:
            if message.dequeue_count > self._settings.max_dequeue_count:
                raise RuntimeError("delivered more often than maxDequeueCount")
            user_function(
                FunctionsQueueMessage(
                    id=message.id,
                    body=body.encode("utf-8"),
                    dequeue_count=message.dequeue_count,
                    insertion_time=message.inserted_on,
                    expiration_time=message.expires_on,
                    pop_receipt=message.pop_receipt,
                )
            )
        except Exception as error:
            invocation.ended = time.time()
            invocation.error = f"{type(error).__name__}: {error}"[:500]
            log.exception("function for %s failed on message %s", queue_name, message.id)
            try:
                invocation.moved_to_poison = self._after_failure(client, queue_name, message, body)
            except Exception as error:  # storage gone: the lease expires and it comes back
                log.warning("could not release message %s: %s", message.id, error)
            return
        invocation.ended = time.time()
        try:
            client.delete_message(message.id, message.pop_receipt)
        except Exception as error:
            log.warning("could not delete message %s: %s", message.id, error)

    def _after_failure(
        self, client: Any, queue_name: str, message: QueueMessage, body: str
    ) -> bool:
        """Back on the queue after the visibility timeout, or (deliveries spent) to the poison
        queue. Returns whether it was moved to the poison queue."""
        if message.dequeue_count >= self._settings.max_dequeue_count:
            poison = self._queues.get_queue_client(f"{queue_name}-poison")
            if poison.queue_name not in self._poison_ready:
                # The host creates `<queue>-poison` when it first needs it; only the intents'
                # poison queue is created by infra/, so a failing `scale-reconcile` message
                # would otherwise never leave its queue.
                with contextlib.suppress(ResourceExistsError):
                    poison.create_queue()
                self._poison_ready.add(poison.queue_name)
            poison.send_message(body)
            client.delete_message(message.id, message.pop_receipt)
            log.error("message %s moved to %s-poison", message.id, queue_name)
            return True
        client.update_message(
            message.id,
            message.pop_receipt,
            visibility_timeout=self._settings.visibility_timeout_seconds,
        )
        return False

    # -- timers ------------------------------------------------------------------------------

    def _run_timer(self, user_function: Callable[..., Any]) -> None:
        """Fire at start-up, then every interval (the real host follows the NCRONTAB)."""
        assert self._timer_interval
        while True:
            try:
                user_function(TimerRequest(past_due=False))
            except Exception:
                log.exception("timer function failed")
            if self._stop.wait(self._timer_interval):
                return

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def _seconds(timespan: str) -> float:
    hours, minutes, seconds = timespan.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
