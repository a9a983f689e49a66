"""A whole local deployment under load: Azurite (on disk, so it can restart) + the AKS emulator
(throttling like AKS, on a faster clock) + one or more local Functions hosts running
function_app.py (both queue triggers: `scale-intents` and `scale-reconcile`), fed a seeded
stream of intents by a producer thread.

Used by the fault-injection and concurrency suites; each run returns a `RunReport` with every
outcome, every function invocation and the emulator's request log, for the suites to check the
guarantees against:

- nothing lost: every accepted intent id gets exactly one final outcome, every invalid message
  one rejection;
- the final state of every pool is what resolution says given the sources sent, computed here
  from the intents alone (`expected_states`), not by the scaler's code;
- every accepted ARM write is accounted for (`account_for_writes`).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

import function_app
from local.functions_host import Invocation, LocalFunctionsHost, QueueSettings
from local.stack import LocalStack, local_stack
from scaler.settings import INTENTS_QUEUE, POISON_QUEUE, RECONCILE_QUEUE, RESULTS_QUEUE

FINAL_OUTCOMES = {"applied", "unchanged", "superseded", "rejected", "poisoned"}
UNSCHEDULED = Path(__file__).parent / "unscheduled.toml"
MAX_COUNT = 100  # SCALER_MAX_COUNT's default: a lease floor is capped there

# (cluster, pool) → how to draw a plain intent's state for it.
POOLS: dict[tuple[str, str], Callable[[random.Random], Any]] = {
    ("aks-demo", "batch"): lambda rng: rng.randint(1, 8),
    ("aks-demo", "spot"): lambda rng: {"count": rng.randint(0, 5)},
    ("aks-demo", "web"): lambda rng: (lambda low: {"min": low, "max": low + rng.randint(0, 6)})(
        rng.randint(1, 4)
    ),
    ("aks-second", "batch"): lambda rng: rng.randint(1, 6),
}
# Holds and leases outlast any run by far, so none of them ends while the suite watches: the
# expected state does not depend on when the run happens to finish.
HOLD_POOLS = [("aks-demo", "spot")]
LEASE_POOLS = [("aks-demo", "batch"), ("aks-demo", "web")]
LONG = "PT12H"
# A write made by a retry that is deferred again is reported by no outcome (see
# test_write_accounting.py, xfail strict): set False once scaler/ closes that gap.
RETRY_WRITES_GAP = False
# A reconcile that loses the commit race to another leaves its write unreported, and possibly a
# superseded state in place (see test_reconcile_race.py, xfail strict): set False once fixed.
RACE_GAP = False


@dataclass
class Workload:
    """The intents of a run, in enqueue order, and what each one is."""

    messages: list[str]
    intents: list[dict[str, Any]]  # every distinct intent, valid or not
    kinds: dict[str, str]  # intent id → "plain" | "hold" | "lease" | "invalid"
    sends: Counter[str]  # intent id → how many messages carry it (duplicates)

    @property
    def intent_ids(self) -> set[str]:
        return set(self.kinds)

    @property
    def accepted_ids(self) -> set[str]:
        return {i for i, kind in self.kinds.items() if kind != "invalid"}

    @property
    def invalid(self) -> set[str]:
        return {i for i, kind in self.kinds.items() if kind == "invalid"}


def workload(
    count: int,
    seed: int,
    invalid_rate: float = 0.05,
    duplicate_rate: float = 0.03,
    hold_rate: float = 0.04,
    leases: int = 6,
) -> Workload:
    """`count` intents: plain ones on every pool of POOLS, holds on HOLD_POOLS (`hold_rate`),
    `leases` leases on LEASE_POOLS and invalid ones (`invalid_rate`). issued_at is distinct per
    intent and in the recent past (never past SCALER_MAX_CLOCK_SKEW); the first intents are one
    plain intent per pool, so every pool has a plain intent for the leases to add to."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    step = min(1.0, 3000 / max(count, 1))  # all within the last hour
    base = now - timedelta(hours=1)
    lease_at = set(rng.sample(range(len(POOLS), count), k=min(leases, count - len(POOLS))))
    intents: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for index in range(count):
        intent_id = f"load-{seed}-{index:05d}"
        issued_at = (base + timedelta(seconds=index * step)).isoformat()
        intent: dict[str, Any] = {"id": intent_id, "issued_at": issued_at}
        if index < len(POOLS):
            cluster, pool = list(POOLS)[index]
            intent |= {"cluster": cluster, "pools": {pool: POOLS[(cluster, pool)](rng)}}
            kind = "plain"
        elif index in lease_at:
            cluster, pool = rng.choice(LEASE_POOLS)
            intent |= {"cluster": cluster, "pools": {pool: rng.randint(1, 3)}, "lease": LONG}
            kind = "lease"
        elif rng.random() < invalid_rate:
            intent |= {"cluster": "aks-demo", "pools": {"batch": -1}}
            kind = "invalid"
        elif rng.random() < hold_rate:
            cluster, pool = rng.choice(HOLD_POOLS)
            intent |= {"cluster": cluster, "pools": {pool: POOLS[(cluster, pool)](rng)}}
            intent["hold"] = LONG
            kind = "hold"
        else:
            cluster = rng.choice(["aks-demo", "aks-demo", "aks-second"])
            names = [pool for (c, pool) in POOLS if c == cluster]
            chosen = rng.sample(names, k=min(len(names), rng.randint(1, 2)))
            intent |= {
                "cluster": cluster,
                "pools": {pool: POOLS[(cluster, pool)](rng) for pool in chosen},
            }
            kind = "plain"
        intents.append(intent)
        kinds[intent_id] = kind
    ordered = list(intents)
    # Producers enqueue roughly in issue order, some late, and sometimes send an intent twice
    # (never a lease: the same lease id sent again is a renewal, with an outcome of its own).
    for start in range(0, len(ordered), 12):
        window = ordered[start : start + 12]
        rng.shuffle(window)
        ordered[start : start + 12] = window
    messages = [json.dumps(intent) for intent in ordered]
    sends = Counter(intent["id"] for intent in ordered)
    for intent in ordered:
        if kinds[intent["id"]] != "lease" and rng.random() < duplicate_rate:
            messages.insert(rng.randint(0, len(messages)), json.dumps(intent))
            sends[intent["id"]] += 1
    return Workload(messages, intents, kinds, sends)


# -- the expectation, from the intents alone -----------------------------------------------------


def _as_state(request: Any) -> dict[str, int]:
    if isinstance(request, int):
        return {"count": request}
    return dict(request)


def expected_states(load: Workload) -> dict[tuple[str, str], dict[str, int]]:
    """What resolution must give each pool once every source is recorded, derived from the
    sources sent (none ends during a run, there is no schedule):

    - an active hold wins: the newest hold's state (newest = latest issued_at);
    - else the newest plain intent's state, raised by the active leases: a count pool gets at
      least the sum of their counts, an autoscaled pool `min` at least that sum (and `max` at
      least `min`); the sum is capped at SCALER_MAX_COUNT.
    """
    newest: dict[str, dict[tuple[str, str], tuple[str, Any]]] = {"plain": {}, "hold": {}}
    leased: Counter[tuple[str, str]] = Counter()
    for intent in load.intents:
        kind = load.kinds[intent["id"]]
        for pool, request in intent.get("pools", {}).items():
            key = (intent["cluster"], pool)
            if kind == "lease":
                leased[key] += int(request)
            elif kind in newest:
                seen = newest[kind].get(key)
                if seen is None or seen[0] < intent["issued_at"]:
                    newest[kind][key] = (intent["issued_at"], request)
    expected: dict[tuple[str, str], dict[str, int]] = {}
    for key in POOLS:
        if key in newest["hold"]:
            expected[key] = _as_state(newest["hold"][key][1])
            continue
        state = _as_state(newest["plain"][key][1])
        floor = min(leased[key], MAX_COUNT)
        if "count" in state:
            state["count"] = max(state["count"], floor)
        else:
            state["min"] = max(state["min"], floor)
            state["max"] = max(state["max"], state["min"])
        expected[key] = state
    return expected


def deciding_intents(load: Workload) -> dict[tuple[str, str], str]:
    """Per pool, the intent whose state the pool ends in (the newest hold, else the newest
    plain intent): its own outcome must report that pool written or already so, never
    superseded."""
    deciders: dict[tuple[str, str], tuple[str, str]] = {}
    holds = {
        key
        for intent in load.intents
        if load.kinds[intent["id"]] == "hold"
        for key in [(intent["cluster"], p) for p in intent["pools"]]
    }
    for intent in load.intents:
        kind = load.kinds[intent["id"]]
        if kind not in ("plain", "hold"):
            continue
        for pool in intent["pools"]:
            key = (intent["cluster"], pool)
            if (kind == "hold") != (key in holds):
                continue
            seen = deciders.get(key)
            if seen is None or seen[0] < intent["issued_at"]:
                deciders[key] = (intent["issued_at"], intent["id"])
    return {key: intent_id for key, (_, intent_id) in deciders.items()}


def pool_matches(pool: dict[str, Any], want: dict[str, int]) -> bool:
    if "count" in want:
        return bool(pool["count"] == want["count"] and not pool.get("enableAutoScaling"))
    return bool(pool.get("enableAutoScaling")) and (pool["minCount"], pool["maxCount"]) == (
        want["min"],
        want["max"],
    )


# -- running it ----------------------------------------------------------------------------------


@dataclass
class RunReport:
    workload: Workload
    outcomes: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    pools: dict[str, dict[str, dict[str, Any]]]
    invocations: list[Invocation]
    emulator_stats: dict[str, Any]
    left_in_intents: int
    left_in_poison: dict[str, int]
    seconds: float
    sent: Counter[str]  # intent id → messages the producer got onto the queue
    attempted: Counter[str]  # ... and tried to (a send that failed may still have arrived)
    restarts: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def documents(self) -> list[dict[str, Any]]:
        """Distinct outcome documents (one published twice after a crash counts once)."""
        distinct: dict[tuple[str, str, str], dict[str, Any]] = {}
        for outcome in self.outcomes:
            distinct[(outcome["outcome_id"], outcome["outcome"], outcome["at"])] = outcome
        return list(distinct.values())

    def final_by_intent(self) -> dict[str, list[dict[str, Any]]]:
        """Distinct final outcomes per intent id (the intents' own: not the outcomes a
        reconcile publishes for writes no intent reports, `source` "reconcile" or "schedule")."""
        finals: dict[str, dict[str, dict[str, Any]]] = {}
        for outcome in self.outcomes:
            if outcome["final"] and outcome["source"] == "queue":
                finals.setdefault(outcome["intent_id"], {})[outcome["outcome_id"]] = outcome
        return {intent_id: list(docs.values()) for intent_id, docs in finals.items()}

    def arm_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if not r["path"].startswith("/msi")]

    def summary(self) -> str:
        arm = self.arm_requests()
        kinds = Counter(r.get("kind") for r in arm)
        puts = [r for r in arm if r["method"] == "PUT"]
        return (
            f"{len(self.workload.intent_ids)} intents ({len(self.workload.messages)} messages: "
            f"{dict(Counter(self.workload.kinds.values()))}), {self.seconds:.0f} s, Azurite "
            f"restarts {self.restarts}; final outcomes {dict(self.counts)}; deferred outcomes "
            f"{sum(1 for o in self.documents() if o['outcome'] == 'deferred')}; "
            f"injected faults {sum(1 for r in self.requests if r['fault'])} of "
            f"{len(self.requests)} emulator requests ({len(arm)} ARM: {dict(kinds)}); PUTs "
            f"{len(puts)}: accepted {sum(1 for r in puts if _accepted(r))}, throttled "
            f"{sum(1 for r in puts if r.get('throttled'))}, by status "
            f"{dict(Counter(str(r['status']) for r in puts))}; throttled by bucket "
            f"{self.emulator_stats.get('throttled_by_bucket')}; function invocations "
            f"{dict(Counter(i.queue for i in self.invocations))}, failed "
            f"{dict(Counter(i.queue for i in self.invocations if i.error))}"
        )


@contextmanager
def load_stack(tmp: Path, operation_seconds: float) -> Iterator[LocalStack]:
    with local_stack(
        operation_seconds=operation_seconds,
        data_dir=tmp / "azurite-data",
        log_dir=tmp / "azurite-log",
    ) as stack:
        yield stack


def app_settings(stack: LocalStack) -> AbstractContextManager[None]:
    """Quick retries and a generous attempt budget (faults are many, and the run must end); no
    schedule on the emulator's pools; a short coalescing window, so reconciles interleave with
    the intake instead of waiting for the whole burst."""
    return stack.app_environment(
        SCALER_RETRY_BASE_SECONDS="1",
        SCALER_RETRY_MAX_SECONDS="3",
        SCALER_MAX_ATTEMPTS="40",
        SCALER_SCHEDULE_FILE=str(UNSCHEDULED),
        SCALER_COALESCE_SECONDS="0.5",
        SCALER_COALESCE_MAX_SECONDS="3",
    )


def throttle_like_aks(stack: LocalStack, time_scale: float, write_burst: int = 20) -> None:
    """AKS's buckets (20 writes per pool, 1 a minute; `write_burst` instead of 20) on a clock
    `time_scale` times faster."""
    control = stack.emulator.control
    control.set_throttling(True)
    control.set_throttle_time_scale(time_scale)
    if write_burst != 20:
        control.set_limits({"aks_put_agent_pool": {"burst": write_burst}})
    control.refill_buckets()


class _Producer(threading.Thread):
    """Sends the workload's messages at `rate` a second, retrying through Azurite's restart."""

    def __init__(self, stack: LocalStack, messages: list[str], rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self._stack = stack
        self._messages = messages
        self._rate = rate
        self.sent: Counter[str] = Counter()
        self.attempted: Counter[str] = Counter()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with QueueClient.from_connection_string(
                self._stack.azurite.connection_string, INTENTS_QUEUE
            ) as queue:
                started = time.monotonic()
                for index, message in enumerate(self._messages):
                    delay = started + index / self._rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    intent_id = json.loads(message)["id"]
                    for _ in range(200):
                        self.attempted[intent_id] += 1
                        try:
                            queue.send_message(message)
                        except Exception:  # Azurite restarting
                            time.sleep(0.2)
                            continue
                        self.sent[intent_id] += 1
                        break
                    else:
                        raise RuntimeError(f"could not send {intent_id}")
        except BaseException as error:
            self.error = error
        finally:
            self.done.set()


def run(
    stack: LocalStack,
    load: Workload,
    workers: int = 1,
    restart_azurite_at: float | None = None,
    rate: float = 60.0,
    timeout: float = 900,
) -> RunReport:
    """Produce the workload (`rate` messages a second), run `workers` hosts until every intent
    has its final outcome and nothing is queued for the intent function, and collect what
    happened. `restart_azurite_at`: fraction of intents with a final outcome when Azurite is
    restarted (data on disk survives, in-flight calls fail)."""
    started = time.monotonic()
    producer = _Producer(stack, load.messages, rate)
    with stack.queue_service() as queues:
        intents = queues.get_queue_client(INTENTS_QUEUE)
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
                record_invocations=True,
            )
            for _ in range(workers)
        ]
        for host in hosts:
            assert set(host.queue_functions) == {INTENTS_QUEUE, RECONCILE_QUEUE}, (
                host.queue_triggers
            )
            host.start()
        producer.start()
        outcomes: list[dict[str, Any]] = []
        restarts = 0
        try:
            deadline = started + timeout
            quiet_since: float | None = None
            while True:
                outcomes += _drain(stack)
                finished = _finished(load, outcomes)
                if (
                    restart_azurite_at is not None
                    and not restarts
                    and len(finished) >= restart_azurite_at * len(load.intent_ids)
                ):
                    stack.azurite.restart()
                    restarts += 1
                # Done when every intent is final and nothing is queued for the intent function
                # for a while: a redelivery (of a message whose delete failed in the restart)
                # may still come back, and must find its intent finished.
                if producer.done.is_set() and finished >= load.intent_ids and _queued(intents) == 0:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 3:
                        break
                else:
                    quiet_since = None
                if producer.error is not None:
                    raise producer.error
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
        poison = {
            name: _count(queues, name) for name in (POISON_QUEUE, f"{RECONCILE_QUEUE}-poison")
        }
    control = stack.emulator.control
    report = RunReport(
        load,
        outcomes,
        control.requests_log(),
        control.wait_until_settled(timeout=30),
        [i for host in hosts for i in host.invocations or []],
        control.stats(),
        left,
        poison,
        time.monotonic() - started,
        producer.sent,
        producer.attempted,
        restarts,
    )
    report.counts = Counter(
        o["outcome"] for docs in report.final_by_intent().values() for o in docs
    )
    return report


def _finished(load: Workload, outcomes: list[dict[str, Any]]) -> set[str]:
    """Accepted intents with a final outcome; invalid ones once every message sent so far that
    carries them has its rejection."""
    finals: dict[str, set[str]] = defaultdict(set)
    for outcome in outcomes:
        if outcome["final"]:
            finals[outcome["intent_id"]].add(outcome["outcome_id"])
    return {
        i
        for i, ids in finals.items()
        if i in load.kinds and (load.kinds[i] != "invalid" or len(ids) >= load.sends[i])
    }


def _count(queues: Any, name: str) -> int:
    try:
        return int(queues.get_queue_client(name).get_queue_properties().approximate_message_count)
    except Exception:  # never created: nothing was parked
        return 0


def _queued(intents: Any) -> int:
    """Messages on the queue, invisible ones included; -1 while unreachable."""
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


# -- the checks shared by both suites ------------------------------------------------------------

_POOL_PATH = re.compile(r"/managedclusters/([^/]+)/agentpools/([^/?]+)", re.IGNORECASE)


def _accepted(request: dict[str, Any]) -> bool:
    return request["method"] == "PUT" and request["status"] == 200 and not request["fault"]


def _pool_key(path: str) -> tuple[str, str]:
    match = _POOL_PATH.search(path)
    assert match, path
    return match.group(1).lower(), match.group(2).lower()


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def assert_no_lost_update(report: RunReport) -> int:
    """Per pool, the accepted writes form one chain of eTags: each was based on the version the
    previous one produced, so none overwrote a write it had not seen. A write that raced
    another carried an eTag that was stale by then and was refused (412), re-read and
    re-planned. Returns how many such refusals there were."""
    accepted: dict[str, list[dict[str, Any]]] = {}
    for entry in report.arm_requests():
        if entry["method"] == "PUT":
            assert entry["if_match"] and entry["if_match"] != "*", "every write carries If-Match"
            if _accepted(entry):
                accepted.setdefault(entry["path"].lower(), []).append(entry)
    for path, writes in accepted.items():
        based_on = [w["if_match"] for w in writes]
        produced = {w["etag_after"] for w in writes}
        assert len(set(based_on)) == len(based_on), f"two writes based on one version of {path}"
        assert len(produced - set(based_on)) <= 1, f"{path}: the chain of versions forks"
    return sum(1 for r in report.requests if r["status"] == 412 and not r["fault"])


@dataclass
class Accounting:
    writes: int  # accepted PUTs
    reported: int  # distinct pool changes reported `started`
    matched: int
    in_failed_reconciles: list[dict[str, Any]]  # unreported: storage failed after the write
    retry_writes: list[dict[str, Any]]  # unreported: the known gap (see account_for_writes)
    racing_writes: list[dict[str, Any]]  # unreported: made while reconciles of it raced
    unexplained: list[dict[str, Any]]  # accepted PUTs no outcome reports, unexplained
    phantom: list[tuple[str, str, str]]  # `started` reports with no accepted PUT


def account_for_writes(report: RunReport) -> Accounting:
    """Every accepted ARM write (a PUT answered 200, not an injected fault) is one pool change
    that a reconcile reported as `started` in some published outcome: an intent's (final or
    its first `deferred`) or the schedule's/timer's. One write can appear in several outcomes
    of the same pass (the deciding intent and the leases it carries), so a reported change is
    (cluster, pool, the pass's `at`). A reported change and a PUT match when they are on the
    same pool, the PUT came after the pass began, and the PUT's body agrees with the reported
    `after` state; the matching is a maximum bipartite one, so neither side is guessed.

    Unreported writes fall in one of three classes:

    - `in_failed_reconciles`, by design: a reconcile that wrote ARM and then could not record or
      publish the outcome because storage failed (the Azurite restart). The host redelivers its
      message, the next reconcile finds the pool already as desired and reports `unchanged`.
      Only a PUT made while a `scale-reconcile` invocation for the same cluster was running,
      an invocation that raised, is put here.
    - `retry_writes`, the known gap pinned down by test_write_accounting.py (xfail): a retry of
      an intent already deferred once writes a pool, another pool fails, the second deferral is
      not published, and the intent's next outcome reports the pool `unchanged`. Only a PUT
      made by a reconcile that did not fail, followed by a final outcome of an intent that was
      published `deferred` before the PUT and now reports the pool `unchanged` with the PUT's
      state as `before` (or `superseded`: a newer intent replaced it before its final
      outcome), is put here. When that gap is closed, the xfail turns into a failure
      and this class must go (`RETRY_WRITES_GAP`).
    - `racing_writes`, the known gap pinned down by test_reconcile_race.py (xfail): a
      reconcile whose commit lost to another reconcile of the same cluster drops its pass, and
      with it the report of the write it made. Only a PUT made while two or more
      `scale-reconcile` invocations for its cluster were running, none of which failed, is put
      here (`RACE_GAP`); the suites xfail when there is one.
    - `unexplained`: anything else; the suites require none."""
    writes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for request in report.arm_requests():
        if _accepted(request) and "/agentpools/" in request["path"].lower():
            writes[_pool_key(request["path"])].append(request)
    reported: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for document in report.documents():
        cluster = (document.get("cluster") or "").rsplit("/", 1)[-1].lower()
        for pool in document.get("pools") or []:
            if pool["outcome"] == "started":
                reported[(cluster, pool["pool"].lower())][document["at"]] = pool
    failed = [i for i in report.invocations if i.error and i.queue == RECONCILE_QUEUE and i.ended]
    deferred_at: dict[str, float] = {}
    finals: list[dict[str, Any]] = []
    for document in report.documents():
        if document["outcome"] == "deferred":
            at = _stamp(document["at"])
            deferred_at[document["intent_id"]] = min(at, deferred_at.get(document["intent_id"], at))
        elif document["final"]:
            finals.append(document)
    result = Accounting(
        writes=sum(len(w) for w in writes.values()),
        reported=sum(len(r) for r in reported.values()),
        matched=0,
        in_failed_reconciles=[],
        retry_writes=[],
        racing_writes=[],
        unexplained=[],
        phantom=[],
    )
    for key in set(writes) | set(reported):
        puts = writes.get(key, [])
        changes = sorted(reported.get(key, {}).items())
        edges = [
            [
                j
                for j, put in enumerate(puts)
                if put["time"] >= _stamp(at) - 0.05 and _agrees(put, pool)
            ]
            for at, pool in changes
        ]
        owner = _max_matching(edges, len(puts))
        result.matched += sum(1 for o in owner if o is not None)
        matched_changes = {o for o in owner if o is not None}
        for index, (at, _) in enumerate(changes):
            if index not in matched_changes:
                result.phantom.append((key[0], key[1], at))
        for j, put in enumerate(puts):
            if owner[j] is not None:
                continue
            if any(
                i.started - 0.05 <= put["time"] <= i.ended + 0.05
                and json.loads(i.body).get("cluster", "").lower() == key[0]
                for i in failed
            ):
                result.in_failed_reconciles.append(put)
            elif RETRY_WRITES_GAP and _reported_unchanged_after_a_retry(
                put, key, finals, deferred_at
            ):
                result.retry_writes.append(put)
            elif RACE_GAP and _during_racing_reconciles(put, key[0], report.invocations):
                result.racing_writes.append(put)
            else:
                result.unexplained.append(put)
    return result


def _during_racing_reconciles(
    put: dict[str, Any], cluster: str, invocations: list[Invocation]
) -> bool:
    running = [
        i
        for i in invocations
        if i.queue == RECONCILE_QUEUE
        and i.started <= put["time"] <= (i.ended or put["time"])
        and json.loads(i.body).get("cluster", "").lower() == cluster
    ]
    return len(running) >= 2 and not any(i.error for i in running)


def last_write_races(report: RunReport, cluster: str, pool: str) -> bool:
    """Was the last accepted write on the pool one of `racing_writes` (test_reconcile_race)?"""
    puts = [
        r
        for r in report.arm_requests()
        if _accepted(r)
        and "/agentpools/" in r["path"].lower()
        and _pool_key(r["path"]) == (cluster.lower(), pool.lower())
    ]
    if not puts:
        return False
    last = puts[-1]
    return any(
        w is last or w["seq"] == last["seq"] for w in account_for_writes(report).racing_writes
    )


def _reported_unchanged_after_a_retry(
    put: dict[str, Any],
    key: tuple[str, str],
    finals: list[dict[str, Any]],
    deferred_at: dict[str, float],
) -> bool:
    for document in finals:
        cluster = (document.get("cluster") or "").rsplit("/", 1)[-1].lower()
        if cluster != key[0] or _stamp(document["at"]) < put["time"]:
            continue
        first_deferred = deferred_at.get(document["intent_id"])
        if first_deferred is None or first_deferred > put["time"]:
            continue
        for pool in document.get("pools") or []:
            if pool["pool"].lower() == key[1] and (
                pool["outcome"] == "superseded"
                or (pool["outcome"] == "unchanged" and _agrees(put, {"after": pool.get("before")}))
            ):
                return True
    return False


def _agrees(put: dict[str, Any], pool: dict[str, Any]) -> bool:
    """Does the PUT's body ask for what the outcome says the pool became?"""
    after = pool.get("after") or {}
    try:
        body = json.loads(put["body"]) if isinstance(put["body"], str) else put["body"]
    except (TypeError, ValueError):
        return True
    properties = (body or {}).get("properties", {})
    if properties.get("enableAutoScaling"):
        return bool(after.get("autoscale")) and (
            properties.get("minCount"),
            properties.get("maxCount"),
        ) == (after.get("min"), after.get("max"))
    if "count" in properties and not after.get("autoscale"):
        return bool(properties["count"] == after.get("count"))
    return not after.get("autoscale")


def _max_matching(edges: list[list[int]], right: int) -> list[int | None]:
    """Kuhn's algorithm: `edges[i]` lists the right-hand nodes left node i may take. Returns,
    per right-hand node, the left node matched to it (or None)."""
    owner: list[int | None] = [None] * right

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            current = owner[j]
            if current is None or augment(current, seen):
                owner[j] = i
                return True
        return False

    for i in range(len(edges)):
        augment(i, set())
    return owner


def assert_final_states(report: RunReport, expected: dict[tuple[str, str], dict[str, int]]) -> None:
    """Every pool is as `expected`; a pool that is not, whose last write was made while
    reconciles raced (test_reconcile_race.py's bug), makes the test xfail instead."""
    wrong = {}
    for (cluster, pool), want in expected.items():
        state = report.pools[f"rg-demo/{cluster}"][pool]
        if not pool_matches(state, want):
            wrong[(cluster, pool)] = (
                want,
                {k: state.get(k) for k in ("count", "minCount", "maxCount")},
            )
    if wrong and RACE_GAP and all(last_write_races(report, c, p) for c, p in wrong):
        pytest.xfail(f"known race (test_reconcile_race.py) left {wrong}")
    assert not wrong


def assert_writes_accounted_for(accounting: Accounting) -> None:
    assert not accounting.phantom, "outcomes report writes that Resource Manager never accepted"
    assert not accounting.unexplained, (
        f"{len(accounting.unexplained)} accepted writes no outcome reports: "
        f"{accounting.unexplained[:3]}"
    )
    explained = accounting.in_failed_reconciles + accounting.retry_writes + accounting.racing_writes
    assert accounting.matched + len(explained) == accounting.writes
    if accounting.racing_writes:
        pytest.xfail(
            f"known race (test_reconcile_race.py): {len(accounting.racing_writes)} writes of "
            "reconciles that lost the commit race are reported by no outcome"
        )
