"""Composition root: builds the settings, credential and clients once per process and wires
them into the use cases. Entry points ask for `scale_service()`; tests call `reset()`."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scaler.service import ScaleService
from scaler.settings import Settings

if TYPE_CHECKING:  # the SDKs load on the first message, not on a cold start
    from azure.core.credentials import TokenCredential


@dataclass
class _Process:
    service: ScaleService
    credential: TokenCredential
    closers: list[object]


_lock = threading.Lock()
_process: _Process | None = None


def scale_service() -> ScaleService:
    return _built().service


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
            from scaler.adapters.schedule_source import schedule_source
            from scaler.adapters.state import TableState
            from scaler.adapters.storage import storage_client

            env = dict(os.environ)
            settings = Settings.from_env(env)
            identity = build_credential(env, settings.client_id)
            clusters = AksGateway(identity, settings.arm_endpoint, settings.arm_scope)
            messages = QueueMessages(storage_client(QueueServiceClient, "queue", env, identity))
            state = TableState(storage_client(TableServiceClient, "table", env, identity))
            schedule = schedule_source(settings, env, identity)
            service = ScaleService(settings, clusters, messages, state, schedule)
            closers = [clusters, messages, state, schedule, identity]
            _process = _Process(service, identity, closers)
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
