"""`aks-scaler` (or `python -m scaler`): the command line for systems and people that send
scale intents.

    validate FILE [--json]      check an intent file; exit 1 with the error if it is not valid
    send FILE [--json] [--wait [--timeout DURATION] [--until-ready]]
                                validate, then put the intent on the scale-intents queue; with
                                --wait, wait for its final outcome (and its pools to be ready)
    plan FILE [--json]          what the intent would change on the cluster (reads only)
    status [TARGET] [--json]    each pool now, what the scaler wants for it and why (reads only)
    schedule check FILE [--json] / schedule preview FILE   check a schedule, or show what it does

FILE may be `-` for standard input. Exit codes: 0 done, 1 input refused, 2 usage, 3 storage or
Azure unreachable; `send --wait` adds 4 rejected, 5 poisoned, 6 timed out. On a terminal,
output fits its width; anywhere else (a pipe, a file, a CI log) lines are never wrapped, unless
COLUMNS sets a width.
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.markup import escape

from scaler.cli.intents import add_intent_commands
from scaler.cli.io import CliError
from scaler.cli.schedule import add_schedule_commands
from scaler.cli.status import add_status_command

PROG = "aks-scaler"
# Wider than any line the CLI prints (a queue message is at most 64 KiB), so nothing wraps.
UNWRAPPED_WIDTH = 1 << 16


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    args = parser(prog).parse_args(argv)
    out, err = console(), console(stderr=True)
    try:
        return int(args.run(args, out))
    except CliError as error:
        # Errors quote user input, which may hold [brackets]: never read it as markup.
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return error.code


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Send and check AKS node-pool scale intents and schedules.",
        epilog="Exit codes: 0 done, 1 input refused, 2 usage error, 3 storage or Azure "
        "unreachable; send --wait adds 4 rejected, 5 poisoned, 6 timed out (superseded is 0, "
        "and says so). The intent format is described in README.md (section 'Scale intents').",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    add_intent_commands(commands)
    add_status_command(commands)
    add_schedule_commands(commands)
    return parser


def console(stderr: bool = False) -> Console:
    """Rich wraps at the terminal's width, and at 80 columns when there is no terminal; a
    script or a CI log wants whole lines (a message id or a resource id in one piece)."""
    terminal = Console(stderr=stderr, highlight=False)
    if terminal.is_terminal or "COLUMNS" in os.environ:
        return terminal
    return Console(stderr=stderr, highlight=False, width=UNWRAPPED_WIDTH)
