"""The README's run command, end to end: start it, send an intent with the CLI from a second
"terminal", watch the emulator's pool change and the outcome arrive, stop it cleanly."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from local.aks_emulator.control import EmulatorControl
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


@pytest.mark.e2e
def test_run_command_processes_an_intent_sent_from_the_cli(tmp_path: Path) -> None:
    command = [
        str(REPO_ROOT / "scripts" / "run-local"),
        "--ports",
        "auto",
        "--no-func",
        "--operation-seconds",
        "0.5",
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
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert run.stdout is not None
        for line in run.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        ready = None
        deadline = time.monotonic() + 180  # includes scripts/setup on a machine that needs it
        while ready is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert run.poll() is None, "".join(output)
                continue
            if line.startswith("LOCAL_STACK_READY "):
                ready = json.loads(line.split(" ", 1)[1])
        assert ready is not None, "".join(output)

        intent = tmp_path / "intent.json"
        intent.write_text('{"id": "e2e-1", "pools": {"batch": 6}, "reason": "end to end"}')
        cli_env = {**os.environ, **_read_env_file(Path(ready["env_file"]))}
        sent = subprocess.run(
            [sys.executable, "-m", "scaler", "send", str(intent)],
            cwd=REPO_ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert "sent intent e2e-1 to scale-intents" in sent.stdout

        emulator = EmulatorControl(ready["arm_endpoint"], ready["ca_bundle"])
        results = QueueClient.from_connection_string(
            ready["storage_connection_string"], RESULTS_QUEUE
        )
        outcome = None
        deadline = time.monotonic() + 30
        while outcome is None and time.monotonic() < deadline:
            for message in results.receive_messages():
                outcome = json.loads(message.content)
            time.sleep(0.2)
        assert outcome is not None, "".join(output)
        assert (outcome["intent_id"], outcome["outcome"]) == ("e2e-1", "applied")
        assert emulator.pool("rg-demo", "aks-demo", "batch")["count"] == 6
        assert len(emulator.writes()) == 1
        assert any("applied" in line and "intent=e2e-1" in line for line in output)
        results.close()
        emulator.close()
    finally:
        os.killpg(run.pid, signal.SIGINT)
        exit_code = run.wait(timeout=60)
    assert exit_code == 0, "".join(output)
    assert not _port_open(ready["arm_endpoint"]), "the emulator outlived the run command"
