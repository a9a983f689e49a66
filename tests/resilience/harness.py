"""A whole local deployment under load: Azurite (on disk, so it can restart) + the AKS emulator
+ one or more local Functions hosts running function_app.py, fed a seeded stream of intents.

Used by the fault-injection and concurrency suites; each run returns a `RunReport` with every
outcome and the emulator's request log, for the suites to check the guarantees against.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueClient

import function_app
from local.functions_host import LocalFunctionsHost, QueueSettings
from local.stack import LocalStack, local_stack
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE

FINAL_OUTCOMES = {"applied", "unchanged", "stale", "rejected", "poisoned"}
# (cluster, pool) → how to draw a desired state for it.
POOLS: dict[tuple[str, str], Callable[[random.Random], Any]] = {
    ("aks-demo", "batch"): lambda rng: rng.randint(1, 8),
    ("aks-demo", "spot"): lambda rng: {"count": rng.randint(0, 5)},
    ("aks-demo", "web"): lambda rng: (lambda low: {"min": low, "max": low + rng.randint(0, 6)})(
        rng.randint(1, 4)
    ),
    ("aks-second", "batch"): lambda rng: rng.randint(1, 6),
}
BASE_TIME = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Workload:
    """The intents of a run: bodies in enqueue order, and for each pool the newest request."""

    messages: list[str]
    intent_ids: set[str]
    newest: dict[tuple[str, str], Any]
    invalid: set[str]


def workload(
    count: int, seed: int, invalid_rate: float = 0.05, duplicate_rate: float = 0.03
) -> Workload:
    rng = random.Random(seed)
    intents: list[dict[str, Any]] = []
    newest: dict[tuple[str, str], tuple[datetime, Any]] = {}
    invalid: set[str] = set()
    for index in range(count):
        intent_id = f"load-{seed}-{index:05d}"
        issued_at = BASE_TIME + timedelta(seconds=index)
        if rng.random() < invalid_rate:
            invalid.add(intent_id)
            intents.append(
                {"id": intent_id, "pools": {"batch": -1}, "issued_at": issued_at.isoformat()}
            )
            continue
        cluster = rng.choice(["aks-demo", "aks-demo", "aks-second"])
        names = [pool for (c, pool) in POOLS if c == cluster]
        chosen = rng.sample(names, k=min(len(names), rng.randint(1, 2)))
        pools = {pool: POOLS[(cluster, pool)](rng) for pool in chosen}
        for pool, want in pools.items():
            newest[(cluster, pool)] = (issued_at, want)
        intents.append(
            {
                "id": intent_id,
                "cluster": cluster,
                "pools": pools,
                "issued_at": issued_at.isoformat(),
            }
        )
    # Producers enqueue roughly in issue order, some late, and sometimes send an intent twice.
    for start in range(0, len(intents), 12):
        window = intents[start : start + 12]
        rng.shuffle(window)
        intents[start : start + 12] = window
    messages = [json.dumps(intent) for intent in intents]
    messages += [json.dumps(intent) for intent in intents if rng.random() < duplicate_rate]
    return Workload(
        messages, {i["id"] for i in intents}, {k: v for k, (_, v) in newest.items()}, invalid
    )


@dataclass
class RunReport:
    workload: Workload
    outcomes: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    pools: dict[str, dict[str, dict[str, Any]]]
    left_in_intents: int
    left_in_poison: int
    seconds: float
    restarts: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def final_by_intent(self) -> dict[str, list[dict[str, Any]]]:
        """Distinct final outcomes per intent (a document delivered twice counts once)."""
        finals: dict[str, dict[str, dict[str, Any]]] = {}
        for outcome in self.outcomes:
            if outcome["final"]:
                finals.setdefault(outcome["intent_id"], {})[outcome["outcome_id"]] = outcome
        return {intent_id: list(docs.values()) for intent_id, docs in finals.items()}


@contextmanager
def load_stack(tmp: Path, operation_seconds: float) -> Iterator[LocalStack]:
    with local_stack(
        operation_seconds=operation_seconds,
        data_dir=tmp / "azurite-data",
        log_dir=tmp / "azurite-log",
    ) as stack:
        yield stack


def app_settings(stack: LocalStack) -> AbstractContextManager[None]:
    """Quick retries and a generous attempt budget: faults are many, and the run must end."""
    return stack.app_environment(
        SCALER_RETRY_BASE_SECONDS="1", SCALER_RETRY_MAX_SECONDS="3", SCALER_MAX_ATTEMPTS="40"
    )


def run(
    stack: LocalStack,
    load: Workload,
    workers: int = 1,
    restart_azurite_at: float | None = None,
    timeout: float = 600,
) -> RunReport:
    """Enqueue the workload, run `workers` hosts until every intent has a final outcome, and
    collect what happened. `restart_azurite_at`: fraction of intents finished when Azurite is
    restarted (data on disk survives, in-flight calls fail)."""
    started = time.monotonic()
    with stack.queue_service() as queues:
        intents = queues.get_queue_client(INTENTS_QUEUE)
        for message in load.messages:
            intents.send_message(message)
        hosts = [
            LocalFunctionsHost(
                function_app.app,
                queues,
                QueueSettings(
                    batch_size=16,
                    max_polling_seconds=0.5,
                    visibility_timeout_seconds=1,
                    max_dequeue_count=20,
                ),
                lease_seconds=10,
            )
            for _ in range(workers)
        ]
        for host in hosts:
            host.start()
        outcomes: list[dict[str, Any]] = []
        restarts = 0
        try:
            deadline = started + timeout
            while True:
                outcomes += _drain(stack)
                finished = {o["intent_id"] for o in outcomes if o["final"]}
                if (
                    restart_azurite_at is not None
                    and not restarts
                    and (len(finished) >= restart_azurite_at * len(load.intent_ids))
                ):
                    stack.azurite.restart()
                    restarts += 1
                # Done when every intent is final and nothing is queued any more: a retry of a
                # duplicate delivery may still come back, and must find the intent finished.
                if finished >= load.intent_ids and _queued(intents) == 0:
                    break
                if time.monotonic() > deadline:
                    missing = sorted(load.intent_ids - finished)[:10]
                    raise AssertionError(
                        f"{len(load.intent_ids - finished)} intents without a final outcome, "
                        f"e.g. {missing}; {_queued(intents)} messages still queued"
                    )
                time.sleep(0.3)
        finally:
            for host in hosts:
                host.stop()
        time.sleep(1)
        outcomes += _drain(stack)  # anything published while stopping (duplicates show here)
        left = intents.get_queue_properties().approximate_message_count
        poison = (
            queues.get_queue_client(POISON_QUEUE).get_queue_properties().approximate_message_count
        )
    control = stack.emulator.control
    report = RunReport(
        load,
        outcomes,
        control.requests_log(),
        control.wait_until_settled(timeout=30),
        left,
        poison,
        time.monotonic() - started,
        restarts,
    )
    report.counts = Counter(
        o["outcome"] for docs in report.final_by_intent().values() for o in docs
    )
    return report


def _queued(intents: Any) -> int:
    """Messages on the queue, invisible ones (delayed retries) included; -1 while unreachable."""
    try:
        return int(intents.get_queue_properties().approximate_message_count)
    except Exception:  # Azurite restarting
        return -1


def _drain(stack: LocalStack) -> list[dict[str, Any]]:
    try:
        with QueueClient.from_connection_string(
            stack.azurite.connection_string, RESULTS_QUEUE
        ) as results:
            taken = []
            while batch := list(results.receive_messages(max_messages=32)):
                for message in batch:
                    results.delete_message(message)
                    taken.append(json.loads(message.content))
            return taken
    except Exception:  # Azurite restarting: read again on the next round
        return []


def pool_matches(pool: dict[str, Any], want: Any) -> bool:
    if isinstance(want, int):
        want = {"count": want}
    if "count" in want:
        return bool(pool["count"] == want["count"] and not pool.get("enableAutoScaling"))
    return bool(pool.get("enableAutoScaling")) and (pool["minCount"], pool["maxCount"]) == (
        want["min"],
        want["max"],
    )


def assert_no_lost_update(report: RunReport) -> int:
    """Per pool, the accepted writes form one chain of eTags: each was based on the version the
    previous one produced, so none overwrote a write it had not seen. A write that raced
    another carried an eTag that was stale by then and was refused (412), re-read and
    re-planned. Returns how many such refusals there were."""
    accepted: dict[str, list[dict[str, Any]]] = {}
    for entry in report.requests:
        if entry["method"] == "PUT":
            assert entry["if_match"], "every write carries If-Match"
            if entry["status"] == 200:
                accepted.setdefault(entry["path"].lower(), []).append(entry)
    for path, writes in accepted.items():
        based_on = [w["if_match"] for w in writes]
        produced = {w["etag_after"] for w in writes}
        assert len(set(based_on)) == len(based_on), f"two writes based on one version of {path}"
        assert len(produced - set(based_on)) <= 1, f"{path}: the chain of versions forks"
    return sum(1 for r in report.requests if r["status"] == 412 and not r["fault"])
