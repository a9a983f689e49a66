"""The run command: `python -m local` (what `scripts/run-local` starts).

Starts Azurite and the AKS emulator, then the function app: with `func start` when Azure
Functions Core Tools is on the PATH, otherwise with the local host stand-in that drives the
same functions from `function_app.py`. Prints outcomes, and the CloudEvents the app publishes
to the emulator's Event Grid topic, as they happen; Ctrl+C stops all.

The console is for the person running it: where everything listens, what to type next, then
one line per outcome. Everything else goes to files in the state directory (`.local/`):
`stack.env` (the settings, for a shell), `stack.json` (the same for programs, written once the
run is ready: the handshake for scripts and tests), `run.log` (library warnings and the app's
own log).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console

from local.console import EventPrinter, OutcomeConsole
from local.stack import LocalStack, local_stack
from scaler.cli import console as unwrapped_console

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".local"
AZURITE_DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
ENV_FILE = "stack.env"
READY_FILE = "stack.json"
LOG_FILE = "run.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ports",
        choices=["default", "auto"],
        default="default",
        help="Azurite on its usual ports 10000-10002 (so UseDevelopmentStorage=true works), "
        "or on free ports chosen by the OS",
    )
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=5.0,
        help="how long the emulator takes to finish a pool operation (default 5)",
    )
    parser.add_argument(
        "--timer-seconds",
        type=float,
        default=30.0,
        help="fire the schedule timer this often with the local host (0: never; default 30)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        help="where the run writes stack.env, stack.json and its logs (default .local/)",
    )
    parser.add_argument(
        "--no-func", action="store_true", help="use the local host even if `func` is installed"
    )
    args = parser.parse_args(argv)
    console = unwrapped_console()  # a log file or a pipe gets whole lines
    ports = AZURITE_DEFAULT_PORTS if args.ports == "default" else None

    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state_dir / READY_FILE
    ready_file.unlink(missing_ok=True)  # a previous run's: its ports are gone
    _log_to_file(state_dir / LOG_FILE)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    try:
        with local_stack(
            args.operation_seconds, ports, state_dir / "azurite", events=True
        ) as stack:
            _write_env_file(stack, state_dir)
            events = EventPrinter(stack.emulator.control.events, console)
            events.start()
            try:
                if shutil.which("func") is not None and not args.no_func:
                    return _run_with_func(stack, stop, console, state_dir)
                return _run_with_local_host(stack, stop, console, state_dir, args.timer_seconds)
            finally:
                events.stop()
    finally:
        ready_file.unlink(missing_ok=True)


def _log_to_file(path: Path) -> None:
    """Library warnings (azure-functions' "Auth level is not applied ...", the SDKs' retries)
    and the app's own log go to `path`, not to the console: a person watching the run wants
    the outcomes, and the file is there when something needs explaining."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn(...) too, through the "py.warnings" logger


def _run_with_func(
    stack: LocalStack, stop: threading.Event, console: Console, state_dir: Path
) -> int:
    (REPO_ROOT / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": stack.settings}, indent=2)
    )
    timer = "as SCALER_TIMER_SCHEDULE says (every 30 s)"
    _banner(console, stack, "func start (Azure Functions Core Tools)", timer, state_dir)
    host = subprocess.Popen(["func", "start"], cwd=REPO_ROOT, env={**os.environ, **stack.settings})
    _write_ready_file(stack, state_dir, "func")
    while not stop.wait(0.5):
        if host.poll() is not None:
            return host.returncode
    host.terminate()
    return host.wait(timeout=30)


def _run_with_local_host(
    stack: LocalStack,
    stop: threading.Event,
    console: Console,
    state_dir: Path,
    timer_seconds: float,
) -> int:
    os.environ.update(stack.settings)
    scaler_log = logging.getLogger("scaler")
    scaler_log.setLevel(logging.INFO)
    scaler_log.addHandler(OutcomeConsole(console))  # the outcomes; the rest goes to run.log

    import function_app
    from local.functions_host import LocalFunctionsHost, QueueSettings
    from scaler import bootstrap

    with stack.queue_service() as queues:
        host = LocalFunctionsHost(
            function_app.app,
            queues,
            QueueSettings.from_host_json(REPO_ROOT / "host.json"),
            timer_interval_seconds=timer_seconds or None,
        )
        # Before the host starts: its first timer run's outcome comes after these lines.
        timer = f"every {timer_seconds:g} s" if timer_seconds else "off (--timer-seconds 0)"
        _banner(console, stack, "the local Functions host", timer, state_dir)
        host.start()
        _write_ready_file(stack, state_dir, "local")
        stop.wait()
        host.stop()
        bootstrap.reset()
    return 0


def _write_ready_file(stack: LocalStack, state_dir: Path, host: str) -> Path:
    """`stack.json`: what a program needs to use this run (the storage connection string, the
    emulator's endpoint and CA bundle, the settings). It appears, whole, once the run is ready
    (written aside, then renamed) and is removed when the run stops."""
    path = state_dir / READY_FILE
    document = {
        "host": host,
        "storage_connection_string": stack.azurite.connection_string,
        "azurite_ports": stack.azurite.ports,
        "arm_endpoint": stack.emulator.arm_endpoint,
        "ca_bundle": stack.emulator.ca_bundle,
        "env_file": str(state_dir / ENV_FILE),
        "log_file": str(state_dir / LOG_FILE),
        "settings": stack.settings,
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _write_env_file(stack: LocalStack, state_dir: Path) -> Path:
    """For a second terminal: `set -a; . .local/stack.env; set +a` points the CLI here."""
    path = state_dir / ENV_FILE
    path.write_text("".join(f"{name}='{value}'\n" for name, value in stack.settings.items()))
    return path


def _banner(console: Console, stack: LocalStack, host: str, timer: str, state_dir: Path) -> None:
    """What a person needs first: where things listen and what to type next."""
    ports = stack.azurite.ports
    lines = [
        f"[bold]AKS pool scaler, local run[/] — the function app runs under {host}",
        f"  Azurite         queue {ports['queue']}, blob {ports['blob']}, table {ports['table']}",
        f"  AKS emulator    {stack.emulator.arm_endpoint}  cluster rg-demo/aks-demo",
        f"  Event Grid      {stack.emulator.eventgrid_endpoint}  (events print here too)",
        f"  schedule timer  {timer}, with schedule.toml",
        "",
        "  Next, in another terminal:",
        f"    set -a; . {_relative(state_dir / ENV_FILE)}; set +a",
        "    .venv/bin/python -m scaler plan examples/intent.json",
        "    .venv/bin/python -m scaler send examples/intent.json",
        "",
        f"  Outcomes follow here, one line each. Logs: {_relative(state_dir / LOG_FILE)}. "
        "Ctrl+C stops everything.",
        "",
    ]
    console.print(lines[0], soft_wrap=True)
    for line in lines[1:]:  # paths and endpoints: never read as markup
        console.print(line, soft_wrap=True, markup=False)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
