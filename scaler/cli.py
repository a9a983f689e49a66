"""`python -m scaler`: the command line for systems and people that send scale intents.

    validate FILE   check an intent file; exit 1 with the error if it is not valid
    send FILE       validate, then put the intent on the scale-intents queue
    plan FILE       show what the intent would change on the cluster (reads only, no writes)
    schedule check FILE / schedule preview FILE   validate a schedule, or show what it does

FILE may be `-` for standard input. Settings (default cluster, SCALER_MAX_COUNT, ...) come from
the same environment variables as the app, so `validate` judges an intent as the app will.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scaler.cli_errors import EXIT_INVALID, EXIT_UNREACHABLE, CliError
from scaler.clock import utc_now
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import Intent, parse_intent
from scaler.schedule_cli import add_schedule_commands
from scaler.settings import INTENTS_QUEUE, STORAGE_CONNECTION, Settings, SettingsError

# A person or a pipeline is waiting: a few quick retries, then a clear error.
SEND_RETRIES: dict[str, Any] = {"retry_total": 2, "initial_backoff": 1, "increment_base": 1}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        return int(args.run(args, out))
    except CliError as error:
        # Errors quote user input, which may hold [brackets]: never read it as markup.
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
        return error.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scaler",
        description="Send and check AKS node-pool scale intents.",
        epilog="The intent format is described in README.md (section 'Scale intents').",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check an intent file",
        description="Check an intent file; exit 1 with "
        "the error (naming the field) when it is not valid.",
    )
    validate.add_argument("file", help="intent JSON file, or - for standard input")
    validate.set_defaults(run=_validate)

    send = commands.add_parser(
        "send",
        help="validate an intent and put it on the queue",
        description="Validate an intent, then enqueue it. Storage is given by --connection-string, "
        f"--account-url (Microsoft Entra sign-in), or the {STORAGE_CONNECTION} variable.",
    )
    send.add_argument("file", help="intent JSON file, or - for standard input")
    where = send.add_mutually_exclusive_group()
    where.add_argument(
        "--connection-string",
        help="storage connection string (Azurite: UseDevelopmentStorage=true)",
    )
    where.add_argument(
        "--account-url",
        help="https://<account>.queue.core.windows.net, signed in "
        "with DefaultAzureCredential (needs Storage Queue Data Message Sender)",
    )
    send.add_argument(
        "--queue", default=INTENTS_QUEUE, help=f"queue name (default {INTENTS_QUEUE})"
    )
    send.set_defaults(run=_send)

    plan = commands.add_parser(
        "plan",
        help="show what an intent would change (no writes)",
        description="Read the target cluster's pools and show the change per pool. Uses the "
        "app's settings (SCALER_ARM_ENDPOINT, AZURE_CLIENT_ID, ...) and your Azure sign-in.",
    )
    plan.add_argument("file", help="intent JSON file, or - for standard input")
    plan.add_argument("--json", action="store_true", help="print the outcome document as JSON")
    plan.set_defaults(run=_plan)

    add_schedule_commands(commands)
    return parser


def _validate(args: argparse.Namespace, out: Console) -> int:
    intent = _read_intent(args.file)
    out.print_json(data=intent.to_message())
    return 0


def _send(args: argparse.Namespace, out: Console) -> int:
    from azure.core.exceptions import AzureError
    from azure.storage.queue import QueueClient

    intent = _read_intent(args.file)
    if intent.issued_at is None:
        # Queue insertion times have whole seconds; the send time orders intents finer.
        intent = replace(intent, issued_at=utc_now())
    connection_string = args.connection_string or (
        None if args.account_url else os.environ.get(STORAGE_CONNECTION)
    )
    try:
        if connection_string:
            queue = QueueClient.from_connection_string(
                connection_string, args.queue, **SEND_RETRIES
            )
        elif args.account_url:
            from azure.identity import DefaultAzureCredential

            queue = QueueClient(
                args.account_url,
                args.queue,
                credential=DefaultAzureCredential(),
                **SEND_RETRIES,
            )
        else:
            raise CliError(
                "say where to send: --connection-string, --account-url, or set "
                f"{STORAGE_CONNECTION}",
                EXIT_INVALID,
            )
        with queue:
            sent = queue.send_message(json.dumps(intent.to_message()))
    except AzureError as error:
        raise CliError(
            f"could not enqueue the intent: {_first_line(error)}", EXIT_UNREACHABLE
        ) from None
    out.print(f"sent intent [bold]{intent.id}[/] to {args.queue} (message {sent.id})")
    return 0


def _plan(args: argparse.Namespace, out: Console) -> int:
    from scaler.adapters.aks import AksGateway
    from scaler.adapters.credentials import build_credential
    from scaler.service import ScaleService

    settings = _settings()
    intent = _read_intent(args.file, settings)
    credential = build_credential(os.environ, settings.client_id)
    clusters = AksGateway(credential, settings.arm_endpoint, settings.arm_scope)
    try:
        outcome = ScaleService(settings, clusters).apply_intent(
            replace(intent, dry_run=True), source="cli"
        )
    finally:
        clusters.close()
    document = outcome.to_json()
    if args.json:
        out.print_json(data=document)
    else:
        _plan_table(out, document)
    if document["outcome"] == "deferred" and not document["pools"]:
        return EXIT_UNREACHABLE
    return EXIT_INVALID if document["outcome"] == "rejected" else 0


def _plan_table(out: Console, document: dict[str, Any]) -> None:
    table = Table(title=f"{document['cluster']}: {document['outcome']}")
    for column in ("pool", "now", "requested", "action", "result"):
        table.add_column(column)
    for pool in document["pools"]:
        before = pool["before"] or {}
        now = describe_pool(before) if before else "-"
        note = pool["outcome"] + (f": {pool['error']['message']}" if pool["error"] else "")
        table.add_row(pool["pool"], now, json.dumps(pool["requested"]), pool["action"], note)
    out.print(table)
    if document["error"]:
        out.print(f"[red]{document['error']['code']}[/]: {document['error']['message']}")


def describe_pool(before: dict[str, Any]) -> str:
    """A pool's `before` summary from an outcome, in a few words."""
    if before.get("power") == "Stopped":
        return "stopped"
    if before.get("autoscale"):
        return f"autoscale {before.get('min')}-{before.get('max')}, {before.get('count')} nodes"
    return f"{before.get('count')} nodes"


def _read_intent(path: str, settings: Settings | None = None) -> Intent:
    try:
        body = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", EXIT_INVALID) from None
    try:
        return parse_intent(body, (settings or _settings()).intent_defaults(), utc_now())
    except InvalidInput as error:
        raise CliError(f"{path}: {error}", EXIT_INVALID) from None


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise CliError(str(error), EXIT_INVALID) from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
