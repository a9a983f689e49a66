"""`aks-scaler validate | send | plan`: check an intent, enqueue it, or see what it would do.

Settings (default cluster, SCALER_ALLOWED_CLUSTERS, SCALER_MAX_COUNT, ...) come from the same
environment variables as the app, so `validate` and `plan` judge an intent as the app will.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from scaler.cli.io import (
    EXIT_INVALID,
    EXIT_UNREACHABLE,
    CliError,
    load_settings,
    read_input,
    rejected,
)
from scaler.clock import utc_now
from scaler.domain.intents import Intent, parse_intent
from scaler.domain.pools import Autoscale, ManualCount, PoolRequest
from scaler.service_layer.intake import cluster_refusal
from scaler.settings import INTENTS_QUEUE, STORAGE_CONNECTION, Settings

# A person or a pipeline is waiting: a few quick retries, then a clear error.
SEND_RETRIES: dict[str, Any] = {"retry_total": 2, "initial_backoff": 1, "increment_base": 1}

FILE_HELP = "intent JSON file, or - for standard input"


def add_intent_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `validate`, `send` and `plan` on the main parser."""
    validate = commands.add_parser(
        "validate",
        help="check an intent file",
        description="Check an intent as the app would, offline: its fields, SCALER_MAX_COUNT "
        "and SCALER_ALLOWED_CLUSTERS (from the environment). Prints 'valid' and a summary, or "
        "exits 1 with the error naming the field.",
    )
    validate.add_argument("file", help=FILE_HELP)
    validate.add_argument(
        "--json",
        action="store_true",
        help="print the normalised intent (defaults filled in) as JSON instead of the summary",
    )
    validate.set_defaults(run=_validate)

    send = commands.add_parser(
        "send",
        help="validate an intent and put it on the queue",
        description="Validate an intent, then enqueue it. Storage is given by --connection-string, "
        f"--account-url (Microsoft Entra sign-in), or the {STORAGE_CONNECTION} variable.",
    )
    send.add_argument("file", help=FILE_HELP)
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
    send.add_argument(
        "--json",
        action="store_true",
        help='print {"intent_id", "queue", "message_id"} as JSON',
    )
    send.set_defaults(run=_send)

    plan = commands.add_parser(
        "plan",
        help="show what an intent would change (no writes)",
        description="Read the target cluster's pools and show the change per pool. Uses the "
        "app's settings (SCALER_ARM_ENDPOINT, AZURE_CLIENT_ID, ...) and your Azure sign-in.",
    )
    plan.add_argument("file", help=FILE_HELP)
    plan.add_argument("--json", action="store_true", help="print the outcome document as JSON")
    plan.set_defaults(run=_plan)


# --- validate --------------------------------------------------------------------------------


def _validate(args: argparse.Namespace, out: Console) -> int:
    settings = load_settings()
    name, intent = _read_intent(args.file, settings)
    problem = cluster_refusal(settings, intent.cluster)
    if problem is not None:
        raise CliError(f"{name}: {problem.code}: {problem.message}", EXIT_INVALID)
    if args.json:
        message = intent.to_message()
        if not message.get("id"):  # no id of its own: the app will use the queue message's
            message.pop("id", None)
        out.print_json(data=message)
        return 0
    for line in summary(name, intent):
        out.print(line, markup=False)
    return 0


def summary(name: str, intent: Intent) -> list[str]:
    """`<file>: valid`, then the cluster and what each pool is asked for, then the options the
    intent sets (as the app normalised them). Never the id: the producer knows the one it gave,
    and a generated one would differ on every run."""
    message = intent.to_message()
    asks = [f"{pool} → {describe_request(r)}" for pool, r in intent.pools.items()]
    if message.get("release"):
        asks.append(f"release lease {message['release']}")
    lines = [f"{name}: valid", f"  {intent.cluster.short_name}: {', '.join(asks)}"]
    options = [
        text.format(message[field])
        for field, text in (
            ("dry_run", "dry run"),
            ("expires_at", "expires {}"),
            ("hold_until", "holds the pools until {}"),
            ("lease", "lease {}"),
        )
        if message.get(field)
    ]
    if options:
        lines.append("  " + "; ".join(options))
    return lines


def describe_request(request: PoolRequest) -> str:
    if isinstance(request, ManualCount):
        return f"{request.count} node" + ("" if request.count == 1 else "s")
    if isinstance(request, Autoscale):
        return f"autoscale {request.min_count}-{request.max_count}"
    return "stopped" if request.code == "Stopped" else "running"


# --- send ------------------------------------------------------------------------------------


def _send(args: argparse.Namespace, out: Console) -> int:
    from azure.core.exceptions import AzureError
    from azure.storage.queue import QueueClient

    _, intent = _read_intent(args.file, load_settings())
    if intent.issued_at is None:
        # Queue insertion times have whole seconds; the send time orders intents finer.
        intent = replace(intent, issued_at=utc_now())
    if not intent.id:  # one to print, so the sender can find the outcome
        intent = replace(intent, id=str(uuid.uuid4()))
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
    if args.json:
        out.print_json(data={"intent_id": intent.id, "queue": args.queue, "message_id": sent.id})
    else:
        out.print(f"sent intent {intent.id} to {args.queue} (message {sent.id})", markup=False)
    return 0


# --- plan ------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace, out: Console) -> int:
    settings = load_settings()
    _, intent = _read_intent(args.file, settings)
    document = dry_run(intent, settings)
    if args.json:
        out.print_json(data=document)
    else:
        _plan_table(out, document)
    if document["outcome"] == "deferred" and not document["pools"]:
        return EXIT_UNREACHABLE
    return EXIT_INVALID if document["outcome"] == "rejected" else 0


def dry_run(intent: Intent, settings: Settings) -> dict[str, Any]:
    """The outcome document of `intent` as a dry run, resolved with every source the app has
    recorded for the cluster and its schedule: the one place the CLI calls the service layer.
    Reads the cluster and the desired-state store, writes nothing."""
    from scaler import bootstrap
    from scaler.domain.outcomes import Outcome, Overall

    problem = cluster_refusal(settings, intent.cluster)
    if problem is not None:  # refused before anything is built or read
        refused = Outcome(
            intent.id,
            Overall.REJECTED,
            utc_now(),
            "cli",
            intent.cluster.resource_id,
            problem=problem,
        )
        return refused.to_json()
    try:
        outcome = bootstrap.intake().preview(replace(intent, dry_run=True))
    finally:
        bootstrap.reset()
    document: dict[str, Any] = outcome.to_json()
    return document


def _plan_table(out: Console, document: dict[str, Any]) -> None:
    # The heading is a line of its own: as a table title it would wrap at the table's width.
    out.print(f"{document['cluster']}: {document['outcome']}", markup=False, soft_wrap=True)
    if not document["pools"]:  # refused before any pool was read
        _print_error(out, document)
        return
    table = Table()
    for column in ("pool", "now", "requested", "desired", "why", "action", "result"):
        table.add_column(column)
    for pool in document["pools"]:
        before = pool["before"] or {}
        now = describe_pool(before) if before else "-"
        note = pool["outcome"] + (f": {pool['error']['message']}" if pool["error"] else "")
        desired = json.dumps(pool["desired"]) if pool.get("desired") else "-"
        table.add_row(
            pool["pool"],
            now,
            json.dumps(pool["requested"]),
            desired,
            describe_why(pool.get("why")),
            pool["action"],
            note,
        )
    out.print(table, markup=False)
    _print_error(out, document)


def _print_error(out: Console, document: dict[str, Any]) -> None:
    if document["error"]:
        error = document["error"]
        text = f"{error['code']}: {error['message']}"
        out.print(text, markup=False, style="red", soft_wrap=True)


def describe_why(why: dict[str, Any] | None) -> str:
    """Who decides a pool, until when, and the leases that raise it: `plan`'s why column."""
    if not why:
        return "-"
    text = str(why.get("detail", why.get("source", "")))
    if why.get("until"):
        text += f" until {why['until']}"
    for lease in why.get("leases") or []:
        text += f"; lease {lease['id']}: {lease['count']} until {lease['until']}"
    return text


def describe_pool(before: dict[str, Any]) -> str:
    """A pool's `before` summary from an outcome, in a few words."""
    if before.get("power") == "Stopped":
        return "stopped"
    if before.get("autoscale"):
        return f"autoscale {before.get('min')}-{before.get('max')}, {before.get('count')} nodes"
    return f"{before.get('count')} nodes"


# --- input -----------------------------------------------------------------------------------


def _read_intent(path: str, settings: Settings) -> tuple[str, Intent]:
    """The intent in `path` (or standard input), with the settings' defaults filled in."""
    source = read_input(path)
    with rejected(f"{source.name}: "):
        return source.name, parse_intent(source.body, settings.intent_defaults(), utc_now())


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
