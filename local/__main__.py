"""The run command: `python -m local` (what `scripts/run-local` starts).

Starts Azurite and the AKS emulator, then the function app: with `func start` when Azure
Functions Core Tools is on the PATH, otherwise with the local host stand-in that drives the
same functions from `function_app.py`. Prints outcomes as they happen; Ctrl+C stops all.
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

from local.console import OutcomeConsole
from local.stack import LocalStack, local_stack

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".local"
AZURITE_DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}


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
        help="where the run writes stack.env and Azurite's log (default .local/)",
    )
    parser.add_argument(
        "--no-func", action="store_true", help="use the local host even if `func` is installed"
    )
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    ports = AZURITE_DEFAULT_PORTS if args.ports == "default" else None

    state_dir: Path = args.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    with local_stack(args.operation_seconds, ports, state_dir / "azurite") as stack:
        env_file = _write_env_file(stack, state_dir)
        use_func = shutil.which("func") is not None and not args.no_func
        _banner(console, stack, use_func, env_file)
        if use_func:
            return _run_with_func(stack, stop)
        return _run_with_local_host(stack, stop, env_file, args.timer_seconds)


def _run_with_func(stack: LocalStack, stop: threading.Event) -> int:
    (REPO_ROOT / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": stack.settings}, indent=2)
    )
    host = subprocess.Popen(["func", "start"], cwd=REPO_ROOT, env={**os.environ, **stack.settings})
    while not stop.wait(0.5):
        if host.poll() is not None:
            return host.returncode
    host.terminate()
    return host.wait(timeout=30)


def _run_with_local_host(
    stack: LocalStack, stop: threading.Event, env_file: Path, timer_seconds: float
) -> int:
    os.environ.update(stack.settings)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scaler_log = logging.getLogger("scaler")
    scaler_log.setLevel(logging.INFO)
    scaler_log.addHandler(OutcomeConsole())
    scaler_log.propagate = False

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
        host.start()
        print("LOCAL_STACK_READY", json.dumps(_ready_info(stack, env_file)), flush=True)
        stop.wait()
        host.stop()
        bootstrap.reset()
    return 0


def _ready_info(stack: LocalStack, env_file: Path) -> dict[str, str]:
    return {
        "storage_connection_string": stack.azurite.connection_string,
        "arm_endpoint": stack.emulator.arm_endpoint,
        "ca_bundle": stack.emulator.ca_bundle,
        "env_file": str(env_file),
    }


def _write_env_file(stack: LocalStack, state_dir: Path) -> Path:
    """For a second terminal: `set -a; . .local/stack.env; set +a` points the CLI here."""
    path = state_dir / "stack.env"
    path.write_text("".join(f"{name}='{value}'\n" for name, value in stack.settings.items()))
    return path


def _banner(console: Console, stack: LocalStack, use_func: bool, env_file: Path) -> None:
    host = "func start" if use_func else "the local Functions host (Core Tools not found)"
    console.print(f"[bold]AKS pool scaler, local run[/] — function app under {host}")
    console.print(f"  Azurite queues   {stack.azurite.ports['queue']} (blob/table too)")
    console.print(f"  AKS emulator     {stack.emulator.arm_endpoint} (cluster rg-demo/aks-demo)")
    console.print("  In another terminal:")
    console.print(f"    set -a; . {_relative(env_file)}; set +a")
    console.print("    .venv/bin/python -m scaler send examples/intent.json")
    console.print("  Ctrl+C stops everything.\n")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
