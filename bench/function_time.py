"""Function time per intent when every AKS operation takes `D` seconds, against a baseline that
waits for each operation the way the seed project did: for every pool, read it, change it, and
`begin_create_or_update(...).result()` one after the other (polling every 0.1 s)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from bench.common import app_environment, deliver, fresh_state, median
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
    app_seconds: float  # median over the repeats
    app_samples: list[float]
    baseline_seconds: float

    @property
    def speedup(self) -> float:
        return self.baseline_seconds / self.app_seconds


def _seed_style(stack: LocalStack, document: dict) -> float:
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
    with app_environment(stack):
        fresh_state(stack)
        deliver(json.dumps({"pools": {"batch": 2}}), "warm-up")  # token, clients, connections
        for duration in durations:
            for scenario, document in (("single change", SINGLE), ("multi-pool", MULTI)):
                samples = []
                for i in range(repeats):
                    fresh_state(stack, duration)
                    body = json.dumps({"id": f"t-{duration}-{scenario[:5]}-{i}", **document})
                    samples.append(deliver(body, f"m-{i}"))
                    writes = len(stack.emulator.control.writes())
                fresh_state(stack, duration)
                baseline = _seed_style(stack, document)
                rows.append(Timing(scenario, duration, writes, median(samples), samples, baseline))
    fresh_state(stack)
    return rows
