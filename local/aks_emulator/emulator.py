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
from .throttle import Throttler, check_time_scale

DEFAULT_SEED = Path(__file__).with_name("seed.json")
DEFAULT_LIST_PAGE_SIZE = 100


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
        throttling: bool = True,
        throttle_time_scale: float = 1.0,
        list_page_size: int = DEFAULT_LIST_PAGE_SIZE,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.initial_operation_seconds = operation_seconds
        self.operation_seconds = operation_seconds
        check_time_scale(throttle_time_scale)
        check_page_size(list_page_size)
        self.initial_throttling = (throttling, float(throttle_time_scale))
        self.throttle = Throttler(throttling, throttle_time_scale)
        self.initial_list_page_size = list_page_size
        self.list_page_size = list_page_size
        self.state = AksState(seed)
        self.faults = FaultPlan()
        self.tokens = TokenIssuer(identity_header or secrets.token_urlsafe(24))
        self.requests: list[dict[str, Any]] = []
        self._seq = 0
        # CloudEvents published to the Event Grid route (eventgrid.py), in arrival order.
        self.events: list[dict[str, Any]] = []
        self._event_seq = 0
        self.eventgrid_status: int | None = None  # answer every publish with this, for tests

    @staticmethod
    def now() -> float:
        return time.time()

    @staticmethod
    def clock() -> float:
        """Monotonic seconds, for the throttle buckets (wall-clock steps must not refill them)."""
        return time.monotonic()

    def config(self) -> dict[str, Any]:
        return {
            "operation_seconds": self.operation_seconds,
            "throttling": self.throttle.enabled,
            "throttle_time_scale": self.throttle.time_scale,
            "list_page_size": self.list_page_size,
        }

    def reset(self, seed: dict[str, Any] | None = None) -> None:
        """Back to the start-up seed (or the given one, for this reset only).

        Clears faults and the request log, refills every throttle bucket and restores the
        start-up settings (operation_seconds, throttling, its time scale and limits, list page
        size), so tests sharing one emulator process start from the same place. Issued tokens
        stay valid.
        """
        with self.lock:
            self.state = AksState(seed if seed is not None else self.seed)
            self.faults.clear()
            self.requests.clear()
            self.events.clear()
            self.eventgrid_status = None
            self.operation_seconds = self.initial_operation_seconds
            self.throttle = Throttler(*self.initial_throttling)
            self.list_page_size = self.initial_list_page_size

    def log_request(
        self,
        method: str,
        path: str,
        if_match: str | None,
        status: int | None,
        fault: str | None,
        body: Any = None,
        etag_after: str | None = None,
        kind: str | None = None,
        throttled: str | None = None,
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
                    # What the request was ("PutAgentPool", "ListManagedClusters", "Token", ...)
                    # and, for a 429 from a throttle bucket, which bucket ("aks_put_agent_pool").
                    "kind": kind,
                    "throttled": throttled,
                }
            )

    def record_events(self, batch: list[dict[str, Any]]) -> None:
        with self.lock:
            for event in batch:
                self._event_seq += 1
                self.events.append({"seq": self._event_seq, "time": self.now(), "event": event})


def check_page_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("'list_page_size' must be an integer >= 1")
    return value


def request_stats(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the request log by kind: total, by status, and 429s from throttle buckets."""
    by_kind: dict[str, dict[str, Any]] = {}
    for entry in requests:
        counts = by_kind.setdefault(
            entry.get("kind") or "Unknown", {"total": 0, "throttled": 0, "by_status": {}}
        )
        counts["total"] += 1
        status = "reset" if entry["status"] is None else str(entry["status"])
        counts["by_status"][status] = counts["by_status"].get(status, 0) + 1
        if entry.get("throttled"):
            counts["throttled"] += 1
    by_bucket: dict[str, int] = {}
    for entry in requests:
        if entry.get("throttled"):
            by_bucket[entry["throttled"]] = by_bucket.get(entry["throttled"], 0) + 1
    return {
        "total": len(requests),
        "throttled": sum(by_bucket.values()),
        "status_429": sum(1 for e in requests if e["status"] == 429),
        "by_kind": by_kind,
        "throttled_by_bucket": by_bucket,
    }
