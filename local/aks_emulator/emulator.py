"""Everything the HTTP handlers share: state, faults, tokens, request log, settings, one lock."""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from .auth import TokenIssuer
from .faults import FaultPlan
from .state import AksState

DEFAULT_SEED = Path(__file__).with_name("seed.json")


def load_seed(path: Path | str | None = None) -> dict[str, Any]:
    with open(path or DEFAULT_SEED, encoding="utf-8") as f:
        seed: dict[str, Any] = json.load(f)
    return seed


class Emulator:
    """Shared mutable emulator. Every access to its attributes goes through `lock`."""

    def __init__(
        self,
        seed: dict[str, Any],
        operation_seconds: float = 1.0,
        identity_header: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.initial_operation_seconds = operation_seconds
        self.operation_seconds = operation_seconds
        self.state = AksState(seed)
        self.faults = FaultPlan()
        self.tokens = TokenIssuer(identity_header or secrets.token_urlsafe(24))
        self.requests: list[dict[str, Any]] = []
        self._seq = 0

    @staticmethod
    def now() -> float:
        return time.time()

    def reset(self, seed: dict[str, Any] | None = None) -> None:
        """Back to the start-up seed (or the given one, for this reset only).

        Clears faults and the request log and restores the start-up operation_seconds, so tests
        sharing one emulator process start from the same place. Issued tokens stay valid.
        """
        with self.lock:
            self.state = AksState(seed if seed is not None else self.seed)
            self.faults.clear()
            self.requests.clear()
            self.operation_seconds = self.initial_operation_seconds

    def log_request(
        self,
        method: str,
        path: str,
        if_match: str | None,
        status: int | None,
        fault: str | None,
        body: Any = None,
        etag_after: str | None = None,
    ) -> None:
        with self.lock:
            self._seq += 1
            self.requests.append(
                {
                    "seq": self._seq,
                    "time": self.now(),
                    "method": method,
                    "path": path,
                    "if_match": if_match,
                    "status": status,
                    "fault": fault,
                    "body": body,
                    # The pool's eTag after an accepted write: lets a test check that every
                    # accepted write was based on the version it replaced.
                    "etag_after": etag_after,
                }
            )
