"""Resource Manager requests per intent, against the least any implementation could send:
one read per cluster plus one write per pool that has to change. Counted from the emulator's
request log (token requests excluded: the token is fetched once per process and cached).

Each intent goes through both functions, as in Azure: `scale_intents` records it and queues a
reconcile, `scale_reconcile` (given the messages of `scale-reconcile` as the host would)
converges the cluster. Coalescing is off here (`SCALER_COALESCE_SECONDS=0`): one intent has
nothing to wait for, and the burst (bench/burst.py) measures coalescing with the app's default.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import app_environment, arm_requests, deliver, fresh_state, settle, take_results
from local.stack import LocalStack

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
    reconciles: int = 0  # calls of scale_reconcile

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
    with app_environment(stack, SCALER_COALESCE_SECONDS="0"):
        for name, document, changed in SCENARIOS:
            fresh_state(stack)
            deliver(json.dumps({"id": f"arm-{name.replace(' ', '-')}", **document}), "m-1")
            reconciles = len(settle(stack))
            reads, writes = count(stack)
            outcomes = Counter(r["outcome"] for r in take_results(stack))
            rows.append(ArmCount(name, 1, reads, writes, 1 + changed, dict(outcomes), reconciles))
    return rows
