"""Intents per second through Azurite with the local Functions host, against Azurite's own rate
for the same queue traffic, and the peak memory of the worker process doing it.

Both sides run as a fresh child process (`bench.worker`) on a queue filled beforehand, in the
same run, one after the other. The intents are no-ops spread over the seven pools of the two
emulator clusters (one ARM read each, no write), so Resource Manager is not the bottleneck and
seven pools keep "latest intent wins" contention low.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import app_env, arm_requests, fresh_state, queue, send_all
from local.stack import LocalStack
from scaler.settings import INTENTS_QUEUE, RESULTS_QUEUE

REPO_ROOT = Path(__file__).resolve().parent.parent

# Already true in the emulator's seed: each intent reads its cluster and changes nothing.
NO_OPS = [
    ("aks-demo", {"batch": 2}),
    ("aks-demo", {"web": {"min": 2, "max": 10}}),
    ("aks-demo", {"gpu": {"power": "Stopped"}}),
    ("aks-demo", {"spot": 0}),
    ("aks-demo", {"system": 3}),
    ("aks-second", {"batch": 1}),
    ("aks-second", {"system": 3}),
]


@dataclass
class WorkerRun:
    mode: str
    n: int
    seconds: float
    maxrss_kib: int  # from wait4() on the child
    self_reported_maxrss_kib: int
    enqueue_seconds: float
    outcomes: dict[str, int]
    arm_requests: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def intents(n: int) -> list[str]:
    bodies = []
    for i in range(n):
        cluster, pools = NO_OPS[i % len(NO_OPS)]
        bodies.append(json.dumps({"id": f"tp-{i:06d}", "cluster": cluster, "pools": pools}))
    return bodies


def _worker(stack: LocalStack, mode: str, n: int) -> tuple[dict, int]:
    env = {**os.environ, **app_env(stack), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.worker", mode, str(n)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"bench.worker {mode} {n} exited with {process.returncode}: {output}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss


def run(stack: LocalStack, mode: str, n: int) -> WorkerRun:
    fresh_state(stack)
    bodies = intents(n) if mode == "app" else [f"raw message {i}" for i in range(n)]
    enqueue_seconds = send_all(stack, INTENTS_QUEUE, bodies)
    report, maxrss = _worker(stack, mode, n)
    outcomes: Counter[str] = Counter()
    if mode == "app":
        with queue(stack, RESULTS_QUEUE) as results:
            # Every outcome, counted by kind: received (not deleted) page by page, then cleared.
            while page := list(results.receive_messages(max_messages=32, visibility_timeout=600)):
                for message in page:
                    outcomes[json.loads(message.content)["outcome"]] += 1
            results.clear_messages()
    return WorkerRun(
        mode,
        n,
        report["seconds"],
        maxrss,
        report["maxrss_kib"],
        enqueue_seconds,
        dict(outcomes),
        len(arm_requests(stack)),
    )


@dataclass
class RoundTrips:
    """HTTP requests per intent, by service, for the function alone (the host adds one
    receive per batch and one delete per message)."""

    intents: int
    by_service: dict[str, float]


def round_trips(stack: LocalStack, k: int = 20) -> RoundTrips:
    import logging
    from urllib.parse import urlsplit

    from bench.common import app_environment, deliver

    ports = {
        stack.azurite.ports["queue"]: "queue",
        stack.azurite.ports["table"]: "table",
        urlsplit(stack.emulator.arm_endpoint).port: "arm",
    }
    seen: Counter[str] = Counter()

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            first = record.getMessage().split("\n", 1)[0]
            if first.startswith("Request URL: "):
                url = urlsplit(first.removeprefix("Request URL: ").strip("'\""))
                service = ports.get(url.port, "other")
                if service == "arm" and url.path.startswith("/msi"):
                    service = "token"
                seen[service] += 1

    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    handler, level = Count(), http_log.level
    with app_environment(stack):
        fresh_state(stack)
        deliver(json.dumps({"pools": {"batch": 2}}), "warm-up")
        http_log.addHandler(handler)
        http_log.setLevel(logging.INFO)
        http_log.propagate = False  # counted, not printed
        try:
            for i, body in enumerate(intents(k)):
                deliver(body, f"m-{i}")
        finally:
            http_log.removeHandler(handler)
            http_log.setLevel(level)
            http_log.propagate = True
    return RoundTrips(k, {service: n / k for service, n in sorted(seen.items())})
