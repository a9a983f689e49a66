"""A worker process for the throughput and memory benchmarks (started by `bench.throughput`).

    python -m bench.worker app N   the function app under the local Functions host: drain the
                                   intents queue until N messages ran
    python -m bench.worker raw N   Azurite alone: receive and delete N messages with the host's
                                   pattern (host.json batchSize per receive, deletes in a pool
                                   of as many threads), no function at all

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

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_app(n: int) -> float:
    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings
    from scaler import bootstrap
    from scaler.settings import INTENTS_QUEUE, Settings

    settings = QueueSettings.from_host_json(REPO_ROOT / "host.json")
    bootstrap.credential().get_token(Settings.from_env().arm_scope)  # a warm worker
    bootstrap.scale_service()
    from azure.storage.queue import QueueServiceClient

    with QueueServiceClient.from_connection_string(_connection_string()) as queues:
        host = LocalFunctionsHost(function_app.app, queues, settings)
        started = time.perf_counter()
        done = 0
        while done < n:
            ran = host.drain(INTENTS_QUEUE)
            done += ran
            if not ran:
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
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


def main(argv: list[str]) -> int:
    mode, n = argv[0], int(argv[1])
    seconds = run_app(n) if mode == "app" else run_raw(n)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "n": n, "seconds": seconds, "maxrss_kib": maxrss}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
