"""Azurite (npm `azurite`, pinned in package.json) as a real process on 127.0.0.1.

Ports are chosen by the OS (port 0) and read back from Azurite's start-up lines, so several
stacks (tests, a developer's run) never collide.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's fixed development account: public, documented, and accepted by nothing but Azurite.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)"
)


class AzuriteProcess:
    def __init__(self, log_dir: Path | None = None, data_dir: Path | None = None) -> None:
        """`data_dir`: keep the data on disk there, to survive `restart()`; default: memory."""
        self._log_dir = log_dir or Path(tempfile.mkdtemp(prefix="azurite-"))
        self._data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    def __enter__(self) -> AzuriteProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm ci` (scripts/setup does)")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / "azurite.log"
        ports = self.ports or {"blob": 0, "queue": 0, "table": 0}  # a restart keeps its ports
        command = [str(AZURITE_BIN), "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
        if self._data_dir is None:
            command.append("--inMemoryPersistence")
        else:
            command += ["--location", str(self._data_dir)]
        for service, port in ports.items():
            command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        with log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self._log_dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = dict(_LISTENING.findall(log_path.read_text(errors="replace")))
            if len(found) == 3:
                self.ports = {name.lower(): int(port) for name, port in found.items()}
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        output = log_path.read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"Azurite did not start:\n{output}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start on the same ports (data survives only with a `data_dir`)."""
        self.stop()
        self.start()

    @property
    def connection_string(self) -> str:
        base = f"http://127.0.0.1:{{}}/{DEV_ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base.format(self.ports['blob'])};"
            f"QueueEndpoint={base.format(self.ports['queue'])};"
            f"TableEndpoint={base.format(self.ports['table'])};"
        )
