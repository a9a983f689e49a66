"""Function time per intent when every AKS operation takes `D` seconds, against a baseline that
waits for each operation the way the seed project did: for every pool, read it, change it, and
`begin_create_or_update(...).result()` one after the other (polling every 0.1 s).

The app's time for one intent is both of its function calls: `scale_intents` (record the
source, queue a reconcile) plus `scale_reconcile` (given that message as the host would; one
list, the writes, the outcome). Coalescing is off (`SCALER_COALESCE_SECONDS=0`): its wait is
time between the calls, not in them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from bench.common import app_environment, deliver, fresh_state, median, settle
from local.stack import LocalStack
from scaler.settings import Settings

# name → (intent, what the seed-style baseline does for the same change: pool → setter)
SINGLE = {"pools": {"batch": 6}}
MULTI = {"pools": {"web": {"min": 1, "max": 5}, "gpu": {"power": "Running"}, "spot": 3}}


@dataclass
class Timing:
    scenario: str
    operation_seconds: float
    writes: int
    app_seconds: float  # median over the repeats, both functions
    app_samples: list[float]
    baseline_seconds: float
    intake_seconds: float = 0.0  # median of the scale_intents part
    reconciles: int = 1  # scale_reconcile calls per intent (the last repeat)

    @property
    def speedup(self) -> float:
        return self.baseline_seconds / self.app_seconds


def _seed_style(stack: LocalStack, document: dict[str, Any]) -> float:
    """The seed project's loop, with the same SDK and identity as the app."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.containerservice.models import PowerState

    settings = Settings.from_env(os.environ)
    credential = ManagedIdentityCredential(client_id=settings.client_id)
    client = ContainerServiceClient(
        credential,
        settings.subscription_id,
        base_url=settings.arm_endpoint,
        credential_scopes=[settings.arm_scope],
    )
    rg, cluster = settings.resource_group, settings.cluster
    try:
        client.agent_pools.get(rg, cluster, "system")  # warm: token and connection
        started = time.perf_counter()
        for name, request in document["pools"].items():
            pool = client.agent_pools.get(rg, cluster, name)
            if isinstance(request, int):
                pool.count = request
            elif "power" in request:
                pool.power_state = PowerState(code=request["power"])
            else:
                pool.enable_auto_scaling = True
                pool.min_count, pool.max_count = request["min"], request["max"]
            client.agent_pools.begin_create_or_update(
                rg, cluster, name, pool, polling_interval=0.1
            ).result()
        return time.perf_counter() - started
    finally:
        client.close()
        credential.close()


def measure(stack: LocalStack, durations: list[float], repeats: int) -> list[Timing]:
    rows = []
    with app_environment(stack, SCALER_COALESCE_SECONDS="0"):
        fresh_state(stack)
        deliver(json.dumps({"pools": {"batch": 2}}), "warm-up")  # token, clients, connections
        settle(stack, quiet=0.3)
        for duration in durations:
            for scenario, document in (("single change", SINGLE), ("multi-pool", MULTI)):
                samples, intake = [], []
                for i in range(repeats):
                    fresh_state(stack, duration)
                    body = json.dumps({"id": f"t-{duration}-{scenario[:5]}-{i}", **document})
                    intake.append(deliver(body, f"m-{i}"))
                    reconciles = settle(stack, quiet=0.3)
                    samples.append(intake[-1] + sum(reconciles))
                    writes = len(stack.emulator.control.writes())
                fresh_state(stack, duration)
                baseline = _seed_style(stack, document)
                rows.append(
                    Timing(
                        scenario,
                        duration,
                        writes,
                        median(samples),
                        samples,
                        baseline,
                        median(intake),
                        len(reconciles),
                    )
                )
    fresh_state(stack)
    return rows
