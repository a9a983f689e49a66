"""Cold start: how long a fresh interpreter takes to import `function_app` (what the Functions
worker does before the first message), against importing the Azure SDKs the app uses eagerly.
Each sample is a new process; the two kinds alternate so noise hits both alike."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import median

REPO_ROOT = Path(__file__).resolve().parent.parent

APP = "import function_app"
EAGER = (
    "import function_app, azure.functions, azure.identity, azure.mgmt.containerservice, "
    "azure.storage.queue, azure.data.tables; "
    "from azure.mgmt.containerservice.models import AgentPool"
)
_TIMED = (
    "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t); "
    "import sys; print(sorted(m for m in sys.modules if m.startswith('azure.') "
    "and m.count('.') == 1))"
)


@dataclass
class ColdStart:
    app_seconds: float
    eager_seconds: float
    app_samples: list[float]
    eager_samples: list[float]
    app_azure_packages: list[str]

    @property
    def ratio(self) -> float:
        return self.app_seconds / self.eager_seconds


def _sample(statement: str) -> tuple[float, list[str]]:
    output = subprocess.run(
        [sys.executable, "-c", _TIMED.format(statement=statement)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    ).stdout.splitlines()
    return float(output[0]), ast.literal_eval(output[1])


def measure(repeats: int) -> ColdStart:
    _sample(APP), _sample(EAGER)  # bytecode caches and page cache warm for both
    app, eager = [], []
    for _ in range(repeats):
        seconds, packages = _sample(APP)
        app.append(seconds)
        eager.append(_sample(EAGER)[0])
    return ColdStart(median(app), median(eager), app, eager, packages)
