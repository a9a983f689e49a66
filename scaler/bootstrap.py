"""Composition root: builds the settings, credential and clients once per process and wires
them into the use cases. Entry points ask for `scale_service()`; tests call `reset()`."""

from __future__ import annotations

import os
import threading

from scaler.service import ScaleService
from scaler.settings import Settings

_lock = threading.Lock()
_service: ScaleService | None = None
_closers: list[object] = []


def scale_service() -> ScaleService:
    """The process-wide service. SDK imports happen here, on first use, not at import time:
    a cold Functions instance loads `function_app` before it gets its first message."""
    global _service
    with _lock:
        if _service is None:
            from scaler.adapters.aks import AksGateway
            from scaler.adapters.credentials import build_credential
            from scaler.adapters.queues import QueueMessages, queue_service

            env = dict(os.environ)
            settings = Settings.from_env(env)
            credential = build_credential(env, settings.client_id)
            clusters = AksGateway(credential, settings.arm_endpoint, settings.arm_scope)
            messages = QueueMessages(queue_service(env, credential))
            _closers.extend([clusters, messages, credential])
            _service = ScaleService(settings, clusters, messages)
        return _service


def reset() -> None:
    """Close every client and forget the service, so the next call rebuilds from settings."""
    global _service
    with _lock:
        for closer in _closers:
            close = getattr(closer, "close", None)
            if close is not None:
                close()
        _closers.clear()
        _service = None
