"""Intents recorded and reconciled per second through Azurite with the local Functions host,
against Azurite's own rate for the intents queue's traffic alone, and the peak memory of the
worker process doing it.

Both sides run as a fresh child process (`bench.worker`) on a queue filled beforehand, in the
same run, one after the other. App side: until every intent has its final outcome, so the
clock includes `scale_intents` recording each one, the app's default coalescing, and
`scale_reconcile` converging the two clusters and publishing every outcome. The intents are
no-ops spread over the seven pools of the two emulator clusters (already true in the seed), so
Resource Manager writes nothing and the storage traffic is what is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _worker(stack: LocalStack, mode: str, n: int) -> tuple[dict[str, Any], int]:
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
