"""Composition root: builds the settings, credential and clients once per process and wires
them into the use cases. Entry points ask for `intake()`, `reconciler()` or `schedule_tick()`;
tests call `reset()`."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scaler import telemetry
from scaler.service_layer.events import Events, MessagesWithEvents
from scaler.service_layer.intake import Intake
from scaler.service_layer.ports import MessageGateway
from scaler.service_layer.reconcile import Reconciler
from scaler.service_layer.schedule_tick import ScheduleTick
from scaler.settings import Settings

if TYPE_CHECKING:  # the SDKs load on the first message, not on a cold start
    from azure.core.credentials import TokenCredential


@dataclass
class _Process:
    intake: Intake
    reconciler: Reconciler
    schedule_tick: ScheduleTick
    credential: TokenCredential
    closers: list[object]


_lock = threading.Lock()
_process: _Process | None = None


def intake() -> Intake:
    return _built().intake


def reconciler() -> Reconciler:
    return _built().reconciler


def schedule_tick() -> ScheduleTick:
    return _built().schedule_tick


def credential() -> TokenCredential:
    """The one identity every client of this process uses."""
    return _built().credential


def _built() -> _Process:
    """SDK imports happen here, on first use, not at import time: a cold Functions instance
    loads `function_app` before it gets its first message."""
    global _process
    with _lock:
        if _process is None:
            from azure.data.tables import TableServiceClient
            from azure.storage.queue import QueueServiceClient

            from scaler.adapters.aks import AksGateway
            from scaler.adapters.credentials import build_credential
            from scaler.adapters.queues import QueueMessages
            from scaler.adapters.rate_limits import RateLimiter, RateLimitPolicy
            from scaler.adapters.resource_graph import ResourceGraphDirectory
            from scaler.adapters.schedule_source import schedule_source
            from scaler.adapters.state import TableState
            from scaler.adapters.storage import storage_client
            from scaler.clock import utc_now
            from scaler.service_layer.schedules import Schedules

            env = dict(os.environ)
            settings = Settings.from_env(env)
            # Application Insights (OpenTelemetry), once per process, only with a connection
            # string; its own credential, as it outlives reset(). See scaler/telemetry.py.
            telemetry.configure_azure_monitor(
                env, lambda: build_credential(env, settings.client_id)
            )
            identity = build_credential(env, settings.client_id)
            # One pacing of Resource Manager's limits for every client and thread of the process.
            pacing = [RateLimitPolicy(RateLimiter())]
            arm = (identity, settings.arm_endpoint, settings.arm_scope)
            clusters = AksGateway(*arm, policies=pacing)
            directory = ResourceGraphDirectory(*arm, policies=pacing)
            queues = QueueMessages(storage_client(QueueServiceClient, "queue", env, identity))
            messages: MessageGateway = queues
            events: Events | None = None
            closers: list[object] = []
            if settings.eventgrid_endpoint:  # outcomes go to the queue, then as CloudEvents
                from scaler.adapters.events import EventGridSink

                sink = EventGridSink(settings.eventgrid_endpoint, identity)
                closers.append(sink)
                events = Events(sink)
                messages = MessagesWithEvents(queues, events)
            state = TableState(storage_client(TableServiceClient, "table", env, identity))
            schedule = schedule_source(settings, env, identity)
            schedules = Schedules(schedule, settings.max_count, settings.subscription_id)
            reconcile = Reconciler(settings, clusters, state, messages, schedules, utc_now, events)
            intents = Intake(settings, state, messages, reconcile, utc_now)
            tick = ScheduleTick(settings, schedules, clusters, messages, utc_now, directory)
            closers = [clusters, directory, queues, state, schedule, *closers, identity]
            _process = _Process(intents, reconcile, tick, identity, closers)
        return _process


def reset() -> None:
    """Close every client and forget them, so the next call rebuilds from settings."""
    global _process
    with _lock:
        if _process is not None:
            for closer in _process.closers:
                close = getattr(closer, "close", None)
                if close is not None:
                    close()
        _process = None
