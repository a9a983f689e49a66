"""Resource Manager requests per intent, against the least any implementation could send:
one read per cluster plus one write per pool that has to change. Counted from the emulator's
request log (token requests excluded: the token is fetched once per process and cached)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import app_environment, arm_requests, deliver, fresh_state, queue, take_results
from local.stack import LocalStack
from scaler.settings import INTENTS_QUEUE

REPO_ROOT = Path(__file__).resolve().parent.parent

# (name, intent, pools that change) against the emulator's seed: batch 2 (manual), web 4
# (autoscaled 2-10), spot 0 (spot), gpu stopped, system 3.
SCENARIOS: list[tuple[str, dict[str, Any], int]] = [
    ("no-op", {"pools": {"batch": 2, "web": {"min": 2, "max": 10}}}, 0),
    ("single change", {"pools": {"batch": 6}}, 1),
    (
        "multi-pool",
        {
            "pools": {
                "batch": 2,
                "web": {"min": 1, "max": 5},
                "gpu": {"power": "Running"},
                "spot": {"power": "Stopped"},
            }
        },
        3,
    ),
]


@dataclass
class ArmCount:
    name: str
    intents: int
    reads: int
    writes: int
    minimum: int
    outcomes: dict[str, int] = field(default_factory=dict)
    note: str = ""
    deliveries: int = 1  # calls of the function: the intents plus every retry
    write_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    @property
    def ratio(self) -> float:
        return self.requests / self.minimum


def count(stack: LocalStack) -> tuple[int, int]:
    log = arm_requests(stack)
    reads = sum(1 for r in log if r["method"] == "GET")
    return reads, len(log) - reads


def single_intents(stack: LocalStack) -> list[ArmCount]:
    rows = []
    with app_environment(stack):
        for name, document, changed in SCENARIOS:
            fresh_state(stack)
            deliver(json.dumps({"id": f"arm-{name.replace(' ', '-')}", **document}), "m-1")
            reads, writes = count(stack)
            outcomes = Counter(r["outcome"] for r in take_results(stack))
            rows.append(ArmCount(name, 1, reads, writes, 1 + changed, dict(outcomes)))
    return rows


def burst(stack: LocalStack, size: int, operation_seconds: float) -> ArmCount:
    """`size` intents for the same pool, all on the queue before the host starts: the net
    effect is one change of one pool, so the minimum is one read and one write in all."""
    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings

    counts = [3 + i % 40 for i in range(size)]
    with app_environment(stack):
        fresh_state(stack, operation_seconds)
        with queue(stack, INTENTS_QUEUE) as intents:
            # One after the other, in order: ids sort in sending order too, so "latest" is
            # unambiguous even where Azurite's insertion times (whole seconds) tie.
            for i, count_ in enumerate(counts):
                body = {"id": f"burst-{i:04d}", "pools": {"batch": count_}}
                intents.send_message(json.dumps(body))
        finals: dict[str, dict[str, Any]] = {}
        outcomes: Counter[str] = Counter()
        with stack.queue_service() as queues:
            host = LocalFunctionsHost(
                function_app.app, queues, QueueSettings.from_host_json(REPO_ROOT / "host.json")
            )
            host.start()
            deadline = time.monotonic() + 600  # a guard against a hang, not a measurement
            try:
                while len(finals) < size and time.monotonic() < deadline:
                    for result in take_results(stack):
                        outcomes[result["outcome"]] += 1
                        if result["final"]:
                            finals[result["intent_id"]] = result
                    time.sleep(0.2)
            finally:
                host.stop()
        stack.emulator.control.wait_until_settled(timeout=operation_seconds + 30)
        final_count = stack.emulator.control.pool("rg-demo", "aks-demo", "batch")["count"]
        reads, writes = count(stack)
        statuses = Counter(str(w["status"]) for w in stack.emulator.control.writes())
    final_kinds = Counter(r["outcome"] for r in finals.values())
    deliveries = size + outcomes.get("deferred", 0)  # every deferral comes back once
    note = (
        f"{len(finals)}/{size} intents finished: "
        + ", ".join(f"{n} {k}" for k, n in sorted(final_kinds.items()))
        + f"; {outcomes.get('deferred', 0)} deferred outcomes on the way, so {deliveries} "
        f"deliveries in all for {reads} reads. Writes by status: "
        + ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
        + f". The pool ends at {final_count}; the last intent asked for {counts[-1]} "
        + ("(latest intent won)." if final_count == counts[-1] else "(NOT the latest intent).")
    )
    return ArmCount(
        f"burst of {size} on one pool",
        size,
        reads,
        writes,
        2,
        dict(outcomes),
        note,
        deliveries,
        dict(statuses),
    )
