"""The local host fetches queue messages as the Functions host does (host.json's
`extensions.queues`): a batch of `batchSize`, and the next batch as soon as no more than
`newBatchThreshold` messages are still being processed, not once the whole previous batch is
done; so up to batchSize + newBatchThreshold messages of one queue function run at once.

A probe function app (one slow queue trigger) runs against Azurite; the queue client the host
gets records how many calls were running at each fetch."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueServiceClient

from local.functions_host import LocalFunctionsHost, QueueSettings
from local.stack import LocalStack

pytestmark = pytest.mark.integration

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
QUEUE = "host-batch-probe"
MESSAGES = 48
SLOW_SECONDS = 1.5
FAST_SECONDS = 0.1


class Probe:
    """A queue-triggered function that sleeps (every other message long) and counts how many of
    its calls run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.done: list[int] = []
        self.app = func.FunctionApp()
        self.app.queue_trigger(arg_name="message", queue_name=QUEUE, connection="Storage")(
            self.function
        )

    def function(self, message: func.QueueMessage) -> None:
        body = json.loads(message.get_body())
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(body["seconds"])
        finally:
            with self.lock:
                self.running -= 1
                self.done.append(body["i"])

    def now_running(self) -> int:
        with self.lock:
            return self.running


@dataclasses.dataclass
class Fetch:
    running: int  # calls running when the host asked for messages
    received: int


class RecordingQueues:
    """The queue service the host is given: every `receive_messages` is recorded with how many
    probe calls were running then."""

    def __init__(self, service: QueueServiceClient, probe: Probe) -> None:
        self._service = service
        self._probe = probe
        self.fetches: list[Fetch] = []

    def get_queue_client(self, name: str) -> Any:
        return _RecordingQueue(self._service.get_queue_client(name), self)


class _RecordingQueue:
    def __init__(self, client: Any, owner: RecordingQueues) -> None:
        self._client = client
        self._owner = owner

    def receive_messages(self, **kwargs: Any) -> list[Any]:
        running = self._owner._probe.now_running()
        messages = list(self._client.receive_messages(**kwargs))
        self._owner.fetches.append(Fetch(running, len(messages)))
        return messages

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def queues(stack: LocalStack) -> Iterator[QueueServiceClient]:
    with stack.queue_service() as service:
        service.create_queue(QUEUE)
        try:
            yield service
        finally:
            service.delete_queue(QUEUE)


def fill(service: QueueServiceClient, n: int = MESSAGES) -> None:
    client = service.get_queue_client(QUEUE)
    for i in range(n):
        seconds = SLOW_SECONDS if i % 2 == 0 else FAST_SECONDS
        client.send_message(json.dumps({"i": i, "seconds": seconds}))


def settings() -> QueueSettings:
    """host.json's queue settings (batchSize 16, newBatchThreshold 8), polling quickly."""
    from_file = QueueSettings.from_host_json(HOST_JSON)
    assert (from_file.batch_size, from_file.new_batch_threshold) == (16, 8)
    return dataclasses.replace(from_file, max_polling_seconds=0.2)


def queued(service: QueueServiceClient) -> int:
    return int(service.get_queue_client(QUEUE).get_queue_properties().approximate_message_count)


def check_batches(probe: Probe, fetches: list[Fetch], config: QueueSettings) -> None:
    threshold, batch = config.fetch_threshold, config.batch_size
    overlapping = [f for f in fetches if f.received and f.running > 0]
    assert overlapping, (
        "every batch was fetched only once the previous one had finished: "
        f"{[dataclasses.astuple(f) for f in fetches]}"
    )
    assert all(f.running <= threshold for f in fetches), (
        f"a batch was fetched while more than newBatchThreshold={threshold} calls ran: "
        f"{[dataclasses.astuple(f) for f in fetches]}"
    )
    assert all(f.received <= batch for f in fetches)
    assert batch < probe.most_running <= batch + threshold, probe.most_running


@pytest.mark.parametrize("mode", ["polling", "drain"])
def test_next_batch_is_fetched_at_new_batch_threshold(
    queues: QueueServiceClient, mode: str
) -> None:
    probe, config = Probe(), settings()
    fill(queues)
    recording = RecordingQueues(queues, probe)
    host = LocalFunctionsHost(probe.app, recording, config)  # type: ignore[arg-type,unused-ignore]
    assert host.queue_triggers == {QUEUE: "function"}
    if mode == "drain":
        assert host.drain(QUEUE) == MESSAGES
    else:
        host.start()
        try:
            deadline = time.monotonic() + 60
            while len(probe.done) < MESSAGES and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            host.stop()

    assert sorted(probe.done) == list(range(MESSAGES)), "each message exactly once"
    assert queued(queues) == 0, "every processed message was deleted"
    check_batches(probe, recording.fetches, config)


def test_stop_fetches_nothing_more_and_lets_running_calls_finish(
    queues: QueueServiceClient,
) -> None:
    probe, config = Probe(), settings()
    fill(queues)
    host = LocalFunctionsHost(probe.app, queues, config)
    host.start()
    deadline = time.monotonic() + 10
    while probe.now_running() <= config.batch_size and time.monotonic() < deadline:
        time.sleep(0.02)
    host.stop()

    assert probe.now_running() == 0
    finished = len(probe.done)
    assert config.batch_size < finished < MESSAGES
    # What was fetched was processed and deleted; the rest is still queued, untouched.
    assert queued(queues) == MESSAGES - finished


def test_new_batch_threshold_comes_from_host_json(tmp_path: Path) -> None:
    def from_json(queues: dict[str, object]) -> QueueSettings:
        path = tmp_path / "host.json"
        path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
        return QueueSettings.from_host_json(path)

    assert from_json({"batchSize": 16, "newBatchThreshold": 8}).fetch_threshold == 8
    assert from_json({"batchSize": 4, "newBatchThreshold": 0}).max_concurrency == 4
    # Not set: the host's default, half the batch size (per core; one here).
    assert from_json({"batchSize": 20}).fetch_threshold == 10
    assert from_json({}).max_concurrency == 16 + 8
    with pytest.raises(ValueError, match="newBatchThreshold"):
        from_json({"newBatchThreshold": -1})
