"""`pip install <the repository>` in a fresh virtual environment gives producers a working
`aks-scaler`, run from a directory that is not the checkout, with only the CLI's dependencies.

Builds a venv and installs from PyPI, so it takes a while (the pip cache makes reruns quick).
Set SCALER_SKIP_INSTALL_TEST=1 to skip it, e.g. offline; CI runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scaler.settings import SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-000000000000"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("SCALER_SKIP_INSTALL_TEST", "") not in ("", "0"),
        reason="SCALER_SKIP_INSTALL_TEST is set",
    ),
]

# What a checkout holds that a build never needs (and `pip install git+…` never sees).
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "node_modules",
    ".local",
    ".azure",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "build",
    "*.egg-info",
)

# Is the build backend (pyproject's [build-system]) already in the venv? setuptools >= 64, with
# bdist_wheel built in (>= 70.1) or the wheel package beside it.
BACKEND_READY = """
import importlib.metadata as m, importlib.util, sys
try:
    v = tuple(int(p) for p in m.version("setuptools").split(".")[:2])
except m.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if v >= (64, 0) and (v >= (70, 1) or importlib.util.find_spec("wheel")) else 1)
"""


@dataclass
class Installed:
    venv: Path
    elsewhere: Path  # the working directory for every command: not the checkout
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(
        self, *args: str, stdin: str | None = None, **settings: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "aks-scaler"), *args],
            cwd=self.elsewhere,
            env={**self.env, **settings},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("cli-install")
    # A copy, so the build's own files (build/, *.egg-info) never land in the checkout.
    source = root / "source"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_SOURCE, symlinks=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    isolation = (
        ["--no-build-isolation"]
        if subprocess.run([python, "-c", BACKEND_READY], check=False).returncode == 0
        else []
    )
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, *isolation, str(source)],
        check=True,
        timeout=800,
    )
    shutil.rmtree(source)  # the installed CLI must not need the sources
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    unrelated = {spec.name for spec in SETTINGS} | {
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "COLUMNS",
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
        "AzureWebJobsStorage",
    }
    env = {name: value for name, value in os.environ.items() if name not in unrelated}
    yield Installed(venv, elsewhere, env)


def test_help(installed: Installed) -> None:
    result = installed.run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: aks-scaler [-h] COMMAND ...\n")
    for command in ("validate", "send", "plan", "schedule"):
        assert f"    {command} " in result.stdout


def test_validate_a_file(installed: Installed) -> None:
    (installed.elsewhere / "intent.json").write_text('{"batch": 3}')
    defaults = {
        "AZURE_SUBSCRIPTION_ID": SUB,
        "SCALER_RESOURCE_GROUP": "rg-demo",
        "SCALER_CLUSTER": "aks-demo",
    }
    result = installed.run("validate", "intent.json", **defaults)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "intent.json: valid\n  rg-demo/aks-demo: batch → 3 nodes\n",
        "",
    )
    refused = installed.run(
        "validate",
        "-",
        stdin='{"resource_group":"rg-other","cluster":"aks-x","pools":{"batch":3}}',
        **defaults,
    )
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        1,
        "",
        "error: <stdin>: ClusterNotAllowed: cluster rg-other/aks-x is not in "
        "SCALER_ALLOWED_CLUSTERS\n",
    )


def test_schedule_check(installed: Installed) -> None:
    shutil.copy(REPO_ROOT / "schedule.toml", installed.elsewhere / "schedule.toml")
    result = installed.run("schedule", "check", "schedule.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("schedule.toml: valid\n  rg-demo/aks-demo (Europe/Amsterdam)")


def test_send_reaches_for_the_queue(installed: Installed) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    intent = f'{{"subscription_id": "{SUB}", "resource_group": "rg", "cluster": "c", "pools": {{"b": 1}}}}'
    result = installed.run("send", "--connection-string", dead, "-", stdin=intent)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: could not enqueue the intent: ")


def test_plan_has_its_dependencies(installed: Installed) -> None:
    """Refused before any read of the cluster, so no Azure is needed; every import plan makes
    has happened by then."""
    intent = '{"resource_group":"rg-other","cluster":"aks-x","pools":{"batch":3}}'
    result = installed.run(
        "plan",
        "--json",
        "-",
        stdin=intent,
        AZURE_SUBSCRIPTION_ID=SUB,
        SCALER_RESOURCE_GROUP="rg-demo",
        SCALER_CLUSTER="aks-demo",
    )
    assert result.returncode == 1, result.stderr
    assert '"code": "ClusterNotAllowed"' in result.stdout


def test_only_the_scaler_package_is_installed(installed: Installed) -> None:
    probe = (
        "import importlib.util, scaler, sys; print(scaler.__file__); "
        "print([n for n in ('tests', 'local', 'bench', 'function_app') "
        "if importlib.util.find_spec(n)])"
    )
    result = subprocess.run(
        [str(installed.python), "-c", probe],
        cwd=installed.elsewhere,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    )
    location, strays = result.stdout.splitlines()
    assert Path(location).is_relative_to(installed.venv)
    assert strays == "[]"
    # The Functions worker library is the app's alone (plan reads tables and the schedule blob).
    listed = subprocess.run(
        [str(installed.python), "-m", "pip", "list", "--format=freeze"],
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "azure-functions==" not in listed
    for name in ("azure-data-tables", "azure-storage-blob", "azure-storage-queue"):
        assert f"{name}==" in listed
