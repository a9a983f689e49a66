"""A burst of intents on one pool through the real functions, with the app's default
coalescing: Resource Manager requests, storage requests per intent, and the AKS per-pool write
bucket (20 tokens, 1 a minute) over the burst.

All intents are on `scale-intents` in Azurite before the local Functions host
(`local/functions_host.py`, host.json's settings) starts polling both queues, `scale-intents`
and `scale-reconcile` (delayed messages included, as the host sees them). The run ends when
every intent has its final outcome and no function has run for a few seconds. The same code
with one intent gives the single-intent numbers.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    DEFAULT_COALESCE_SECONDS,
    HostRun,
    StorageRequests,
    app_environment,
    count_requests,
    fresh_state,
    queue,
    run_host,
)
from local.aks_emulator.control import EmulatorControl
from local.stack import LocalStack
from scaler.settings import INTENTS_QUEUE

POOL = "batch"
PUT_LIMIT = "aks_put_agent_pool"


@dataclass
class Burst:
    size: int
    coalesce_seconds: float
    operation_seconds: float
    reads: int
    writes: int
    write_statuses: dict[str, int]
    requests: StorageRequests
    run: HostRun
    bucket_burst: float
    bucket_lowest: float  # the pool's PutAgentPool bucket, lowest level seen during the run
    bucket_samples: int
    status_429: int  # every 429 the emulator answered (throttled or injected)
    throttled: int  # 429s from a throttle bucket
    final_count: int
    last_asked: int
    counts: list[int] = field(default_factory=list)

    @property
    def storage_per_intent(self) -> float:
        return self.requests.storage / self.size

    @property
    def finished(self) -> int:
        return len(self.run.finals)

    def final_kinds(self) -> dict[str, int]:
        return dict(sorted(Counter(r["outcome"] for r in self.run.finals.values()).items()))


class BucketWatch:
    """Polls the emulator's throttle state on its own connection and keeps the lowest token
    level of one pool's PutAgentPool bucket (absent until the pool's first PUT = full)."""

    def __init__(self, stack: LocalStack, pool: str, interval: float = 0.05) -> None:
        self._control = EmulatorControl(stack.emulator.arm_endpoint, stack.emulator.ca_bundle)
        self._pool = pool
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bucket-watch", daemon=True)
        self.burst = 0.0
        self.lowest: float | None = None
        self.samples = 0

    def _sample(self) -> None:
        state: dict[str, Any] = self._control.throttle()
        self.burst = float(state["limits"][PUT_LIMIT]["burst"])
        for bucket in state["buckets"]:
            if bucket["limit"] == PUT_LIMIT and bucket["scope"][-1] == self._pool:
                tokens = float(bucket["tokens"])
                self.lowest = tokens if self.lowest is None else min(self.lowest, tokens)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> BucketWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()  # once more, after the last request
        self._control.close()


def burst(stack: LocalStack, size: int, operation_seconds: float) -> Burst:
    """`size` intents for pool `batch` (counts 3, 4, 5, …), sent one after the other: the net
    effect is one change of one pool, so the minimum is one read and one write in all."""
    from bench.arm_requests import count

    counts = [3 + i % 40 for i in range(size)]
    calls: Counter[str] = Counter()
    with app_environment(stack):
        fresh_state(stack, operation_seconds)
        with queue(stack, INTENTS_QUEUE) as intents:
            # In order: ids and issued_at sort in sending order, so "newest" is unambiguous.
            for i, wanted in enumerate(counts):
                intents.send_message(json.dumps({"id": f"burst-{i:04d}", "pools": {POOL: wanted}}))
        with BucketWatch(stack, POOL) as watch, count_requests(stack) as requests:
            run = run_host(stack, size, calls)
        control = stack.emulator.control
        control.wait_until_settled(timeout=operation_seconds + 30)
        final_count = int(control.pool("rg-demo", "aks-demo", POOL)["count"])
        reads, writes = count(stack)
        statuses = Counter(str(w["status"]) for w in control.writes())
        stats = control.stats()
    return Burst(
        size=size,
        coalesce_seconds=DEFAULT_COALESCE_SECONDS,
        operation_seconds=operation_seconds,
        reads=reads,
        writes=writes,
        write_statuses=dict(sorted(statuses.items())),
        requests=requests,
        run=run,
        bucket_burst=watch.burst,
        bucket_lowest=watch.burst if watch.lowest is None else watch.lowest,
        bucket_samples=watch.samples,
        status_429=int(stats.get("status_429", 0)),
        throttled=int(stats.get("throttled", 0)),
        final_count=final_count,
        last_asked=counts[-1],
        counts=counts,
    )
