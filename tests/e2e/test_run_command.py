"""The README's run command, end to end: start it, watch the timer move the emulator's pools
to the shipped schedule, send the README's intent with the CLI from a second "terminal", see
it applied and held against the schedule, stop it cleanly."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from local.aks_emulator.control import EmulatorControl
from scaler.domain.pools import Autoscale, PoolRequest, Power
from scaler.domain.schedule_file import load_schedule
from scaler.settings import RESULTS_QUEUE

REPO_ROOT = Path(__file__).resolve().parents[2]


def _read_env_file(path: Path) -> dict[str, str]:
    """What `set -a; . .local/stack.env; set +a` puts in a shell's environment."""
    env = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        env[name] = shlex.split(value)[0]
    return env


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("https://").split(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


def _matches(pool: dict[str, Any], want: PoolRequest) -> bool:
    """Is the emulator's pool in the state a schedule asks for?"""
    if isinstance(want, Power):
        return bool(pool["powerState"]["code"] == want.code)
    if isinstance(want, Autoscale):
        return bool(pool.get("enableAutoScaling")) and (
            pool.get("minCount"),
            pool.get("maxCount"),
        ) == (
            want.min_count,
            want.max_count,
        )
    if want.count == 0 and pool["powerState"]["code"] == "Stopped":
        return True  # a stopped pool runs no nodes, as the planner sees it
    return bool(pool["count"] == want.count and pool["powerState"]["code"] == "Running")


def _wait_for(
    condition: Callable[[], bool], what: str, output: list[str], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "".join(output)
        time.sleep(0.3)


@pytest.mark.e2e
def test_run_command_follows_the_schedule_and_applies_a_held_intent(tmp_path: Path) -> None:
    command = [
        str(REPO_ROOT / "scripts" / "run-local"),
        "--ports",
        "auto",
        "--no-func",
        "--operation-seconds",
        "0.5",
        "--timer-seconds",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
    ]
    run = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []

    def pump() -> None:
        assert run.stdout is not None
        for line in run.stdout:
            output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    ready_file = tmp_path / "state" / "stack.json"
    try:
        # The handshake is a file: it appears, whole, once the run is ready.
        deadline = time.monotonic() + 180  # includes scripts/setup on a machine that needs it
        while not ready_file.exists():
            assert run.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "no stack.json:\n" + "".join(output)
            time.sleep(0.3)
        ready = json.loads(ready_file.read_text())
        emulator = EmulatorControl(ready["arm_endpoint"], ready["ca_bundle"])

        # The timer fires at start-up: the pools follow the schedule shipped in the repo.
        shipped = (REPO_ROOT / "schedule.toml").read_text()
        desired = load_schedule(shipped, "schedule.toml", 100).desired_at(datetime.now(UTC))
        wanted = next(
            pools for target, pools in desired.items() if target.key == "rg-demo/aks-demo"
        )

        def follows_schedule() -> bool:
            pools = emulator.pools()["rg-demo/aks-demo"]
            return all(_matches(pools[name], want) for name, want in wanted.items())

        _wait_for(follows_schedule, "the pools to follow schedule.toml", output)

        # A second terminal sends the README's example intent, which holds its pools.
        cli_env = {**os.environ, **_read_env_file(Path(ready["env_file"]))}
        sent = subprocess.run(
            [sys.executable, "-m", "scaler", "send", "examples/intent.json"],
            cwd=REPO_ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert "sent intent example-1 to scale-intents" in sent.stdout

        results = QueueClient.from_connection_string(
            ready["storage_connection_string"], RESULTS_QUEUE
        )
        outcomes: list[dict[str, Any]] = []

        def intent_applied() -> bool:
            outcomes.extend(
                json.loads(m.content) for m in results.receive_messages(max_messages=32)
            )
            return any(
                o["intent_id"] == "example-1" and o["outcome"] == "applied" for o in outcomes
            )

        _wait_for(intent_applied, "the intent's outcome on scale-results", output)
        assert any(o["source"] == "timer" and o["outcome"] == "applied" for o in outcomes)
        assert any("applied" in line and "intent=example-1" in line for line in output)

        time.sleep(5)  # two more timer runs: the hold keeps the schedule off these pools
        web = emulator.pool("rg-demo", "aks-demo", "web")
        assert (web["minCount"], web["maxCount"]) == (2, 8)
        assert emulator.pool("rg-demo", "aks-demo", "spot")["count"] == 3
        results.close()
        emulator.close()
    finally:
        os.killpg(run.pid, signal.SIGINT)
        exit_code = run.wait(timeout=60)
    assert exit_code == 0, "".join(output)
    assert not _port_open(ready["arm_endpoint"]), "the emulator outlived the run command"
    assert not ready_file.exists(), "stack.json outlived the run: it would point at dead ports"
    _assert_console_is_for_people(output, ready)


def _assert_console_is_for_people(output: list[str], ready: dict[str, Any]) -> None:
    """The run's console starts with where things listen and what to type next; the
    machine-readable handshake, the storage key and library warnings are in files, not on the
    screen. (What scripts/setup prints before, when it installs something, is pip's.)"""
    start = next(
        (i for i, line in enumerate(output) if line.startswith("AKS pool scaler, local run")),
        None,
    )
    assert start is not None, "".join(output)
    run = output[start:]
    console = "".join(run)
    banner = "".join(run[:12])
    assert f"queue {ready['azurite_ports']['queue']}" in banner, console
    assert ready["arm_endpoint"] in banner, console
    assert "scaler send examples/intent.json" in banner, console
    assert "LOCAL_STACK_READY" not in console
    assert "AccountKey" not in console and ready["storage_connection_string"] not in console
    assert "Auth level is not applied" not in console, "a library warning on the console"
    logged = [line for line in run if line.startswith(("WARNING", "INFO", "ERROR", "DEBUG"))]
    assert not logged, f"log records on the console: {logged}"
    assert "Auth level is not applied" in Path(ready["log_file"]).read_text()
    assert all(len(line) < 10_000 for line in run)
