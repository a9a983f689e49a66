"""A worker process for the throughput and memory benchmarks (started by `bench.throughput`).

    python -m bench.worker app N   the function app under the local Functions host (both queue
                                   triggers): run until N intents have their final outcome
    python -m bench.worker raw N   Azurite alone: receive and delete N messages with the host's
                                   pattern (host.json batchSize per receive, deletes in a pool
                                   of as many threads), no function at all
    python -m bench.worker fleet   the function app under the local Functions host (both queue
                                   triggers) until stdin closes: one instance of the fleet
                                   benchmark (bench/fleet.py); prints `{"ready": true}` once
                                   serving, and at the end what it did (calls, failures, its
                                   rate limiter's counters)

Settings come from the environment (the parent passes the stack's). Prints one JSON line:
`{"mode", "n", "seconds", "maxrss_kib"}`; the parent also reads the peak RSS from wait4().
"""

from __future__ import annotations

import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_app(n: int) -> float:
    """Seconds from the host's first poll until the n-th intent has its final outcome: each
    intent recorded by `scale_intents` and converged by `scale_reconcile` (the reconcile queue
    polled as the host polls it, delayed messages included)."""
    import threading

    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings
    from scaler import bootstrap
    from scaler.adapters.queues import QueueMessages
    from scaler.settings import Settings

    # Final outcomes counted where the app publishes them, in this process only (reading the
    # results queue back would add its own load to Azurite).
    finals: set[str] = set()
    done = threading.Event()
    lock = threading.Lock()
    publish = QueueMessages.publish_outcome

    def counting(self: QueueMessages, outcome: dict[str, Any]) -> None:
        publish(self, outcome)
        if outcome.get("final"):
            with lock:
                finals.add(str(outcome.get("intent_id")))
                if len(finals) >= n:
                    done.set()

    QueueMessages.publish_outcome = counting  # type: ignore[method-assign]
    settings = QueueSettings.from_host_json(REPO_ROOT / "host.json")
    bootstrap.credential().get_token(Settings.from_env().arm_scope)  # a warm worker
    bootstrap.intake(), bootstrap.reconciler()
    from azure.storage.queue import QueueServiceClient

    with QueueServiceClient.from_connection_string(_connection_string()) as queues:
        host = LocalFunctionsHost(function_app.app, queues, settings)
        started = time.perf_counter()
        host.start()
        try:
            if not done.wait(timeout=1800):  # a guard against a hang, not a measurement
                raise RuntimeError(f"only {len(finals)} of {n} intents finished")
            elapsed = time.perf_counter() - started
        finally:
            host.stop()
    bootstrap.reset()
    return elapsed


def run_raw(n: int) -> float:
    from azure.storage.queue import QueueClient

    from local.functions_host import QueueSettings
    from scaler.settings import INTENTS_QUEUE

    batch = QueueSettings.from_host_json(REPO_ROOT / "host.json").batch_size
    with (
        QueueClient.from_connection_string(_connection_string(), INTENTS_QUEUE) as client,
        ThreadPoolExecutor(batch) as pool,
    ):
        started = time.perf_counter()
        done = 0
        while done < n:
            messages = list(
                client.receive_messages(
                    messages_per_page=batch, max_messages=batch, visibility_timeout=300
                )
            )
            if not messages:
                time.sleep(0.05)
                continue
            list(pool.map(lambda m: client.delete_message(m.id, m.pop_receipt), messages))
            done += len(messages)
        return time.perf_counter() - started


def _connection_string() -> str:
    import os

    from scaler.settings import STORAGE_CONNECTION

    return os.environ[STORAGE_CONNECTION]


def run_fleet() -> dict[str, Any]:
    """Serve `scale-intents` and `scale-reconcile` with host.json's settings until stdin
    closes. The app's bootstrap is the real one (settings from the environment, one rate
    limiter for the process); the limiter is only watched, through a subclass that records the
    instance bootstrap builds."""
    import threading
    from collections import Counter

    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings
    from scaler import bootstrap
    from scaler.adapters import rate_limits
    from scaler.settings import Settings

    limiters: list[rate_limits.RateLimiter] = []

    class WatchedLimiter(rate_limits.RateLimiter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            limiters.append(self)

    rate_limits.RateLimiter = WatchedLimiter  # type: ignore[misc]  # bootstrap imports it late
    calls: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()

    def watched(name: str, call: Any) -> Any:
        def wrapper(message: Any) -> None:
            with lock:
                calls[name] += 1
            try:
                call(message)
            except Exception:
                with lock:
                    failures[name] += 1
                raise

        return wrapper

    bootstrap.credential().get_token(Settings.from_env().arm_scope)  # a warm instance
    bootstrap.intake(), bootstrap.reconciler()
    from azure.storage.queue import QueueServiceClient

    settings = QueueSettings.from_host_json(REPO_ROOT / "host.json")
    with QueueServiceClient.from_connection_string(_connection_string()) as queues:
        host = LocalFunctionsHost(function_app.app, queues, settings)
        for queue_name, call in list(host.queue_functions.items()):
            host.queue_functions[queue_name] = watched(host.queue_triggers[queue_name], call)
        host.start()
        print(json.dumps({"ready": True}), flush=True)
        sys.stdin.read()  # until the parent closes it
        host.stop()
    limiter = {
        "admitted": sum(x.admitted_count for x in limiters),
        "paced": sum(x.paced_count for x in limiters),
        "throttled": sum(x.throttled_count for x in limiters),
        "waited_seconds": sum(x.waited_seconds for x in limiters),
    }
    bootstrap.reset()
    return {"calls": dict(calls), "failures": dict(failures), "limiter": limiter}


def main(argv: list[str]) -> int:
    if argv[:1] == ["fleet"]:
        report = run_fleet()
        report["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(report), flush=True)
        return 0
    mode, n = argv[0], int(argv[1])
    seconds = run_app(n) if mode == "app" else run_raw(n)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "n": n, "seconds": seconds, "maxrss_kib": maxrss}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
