"""`python -m local.aks_emulator`: serve until SIGTERM/SIGINT, announce readiness on stdout.

Stdout carries exactly one JSON line (the ready line) so a parent process can read it;
everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .emulator import DEFAULT_LIST_PAGE_SIZE
from .server import create_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.aks_emulator",
        description="Local AKS Resource Manager emulator (HTTPS) with a managed-identity endpoint.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--seed", type=Path, default=None, help="seed JSON (default: seed.json)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where ca.pem goes (default: a temp dir)"
    )
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=1.0,
        help="how long a pool operation runs before it reports Succeeded (default 1.0)",
    )
    parser.add_argument(
        "--identity-header", default=None, help="X-IDENTITY-HEADER secret (default: random)"
    )
    parser.add_argument(
        "--no-throttling",
        dest="throttling",
        action="store_false",
        help="never answer 429 from the Resource Manager and AKS throttle buckets",
    )
    parser.add_argument(
        "--throttle-time-scale",
        type=float,
        default=1.0,
        help="throttle buckets refill this many times faster than real time "
        "(60: AKS's 1 write per minute per pool becomes 1 per second; default 1)",
    )
    parser.add_argument(
        "--list-page-size",
        type=int,
        default=DEFAULT_LIST_PAGE_SIZE,
        help=f"clusters per page of LIST managedClusters (default {DEFAULT_LIST_PAGE_SIZE})",
    )
    parser.add_argument("--verbose", action="store_true", help="access log on stderr")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when stdin closes (a parent that dies, even by SIGKILL, leaves no orphan)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.throttle_time_scale <= 0:
        sys.exit("--throttle-time-scale must be > 0")
    if args.list_page_size < 1:
        sys.exit("--list-page-size must be >= 1")
    running = create_server(
        seed_path=args.seed,
        operation_seconds=args.operation_seconds,
        state_dir=args.state_dir,
        port=args.port,
        identity_header=args.identity_header,
        verbose=args.verbose,
        throttling=args.throttling,
        throttle_time_scale=args.throttle_time_scale,
        list_page_size=args.list_page_size,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run on this (main) thread.
        threading.Thread(target=running.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            sys.stdin.read()  # returns at EOF: the parent closed the pipe or is gone
            running.server.shutdown()

        threading.Thread(target=watch_stdin, daemon=True).start()

    # The socket is listening already; connections made from now on wait in the backlog.
    sys.stdout.write(json.dumps(running.ready_info()) + "\n")
    sys.stdout.flush()
    try:
        running.serve_forever()
    finally:
        running.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
