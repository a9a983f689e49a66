"""`aks-scaler validate | send | plan`: check an intent, enqueue it, or see what it would do.

Settings (default cluster, SCALER_ALLOWED_CLUSTERS, SCALER_MAX_COUNT, ...) come from the same
environment variables as the app, so `validate` and `plan` judge an intent as the app will.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from scaler.cli import wait
from scaler.cli.io import (
    EXIT_INVALID,
    EXIT_TIMED_OUT,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    load_settings,
    read_input,
    rejected,
)
from scaler.clock import utc_now
from scaler.domain.intents import Intent, parse_intent
from scaler.domain.pools import Autoscale, ManualCount, PoolRequest
from scaler.domain.sources import source_of
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
        help='print {"intent_id", "queue", "message_id"} as JSON (with --wait also "status", '
        '"outcome" and, with --until-ready, "ready" and "pools")',
    )
    send.add_argument(
        "--wait",
        action="store_true",
        help="then wait for the intent's final outcome, read from the app's state table "
        "(scale-results is left to its consumer; --account-url needs Storage Table Data "
        "Reader too), and print it. Exit 0 applied, unchanged or superseded; 4 rejected; "
        "5 poisoned; 6 timed out. Not with a dry run (it records no outcome: use plan)",
    )
    send.add_argument(
        "--timeout",
        type=_duration,
        default=wait.DEFAULT_TIMEOUT,
        metavar="DURATION",
        help=f"with --wait: give up after this long, ISO-8601 (PT5M) or seconds "
        f"(default {wait.DEFAULT_TIMEOUT})",
    )
    send.add_argument(
        "--until-ready",
        action="store_true",
        help="with --wait: after an applied or unchanged outcome, read the cluster's pools "
        "until each pool of the intent is at the desired state the outcome reports, with "
        "provisioningState Succeeded (needs read access to the cluster's agent pools)",
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

    settings = load_settings()
    _, intent = _read_intent(args.file, settings)
    if args.until_ready and not args.wait:
        raise CliError("--until-ready goes with --wait", EXIT_USAGE)
    if args.wait:
        _check_waitable(intent, settings)
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
    document = {"intent_id": intent.id, "queue": args.queue, "message_id": sent.id}
    if not args.wait:
        if args.json:
            out.print_json(data=document)
        else:
            out.print(f"sent intent {intent.id} to {args.queue} (message {sent.id})", markup=False)
        return 0
    if not args.json:
        out.print(f"sent intent {intent.id} to {args.queue} (message {sent.id})", markup=False)
    store = _state_table(connection_string, args.account_url)
    return wait_and_report(args, out, settings, intent, str(sent.id), store, document)


def _duration(text: str) -> float:
    try:
        return wait.duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error} (ISO-8601 like PT5M, or seconds)") from None


def _check_waitable(intent: Intent, settings: Settings) -> None:
    """Refuse, before sending, what --wait could never see the outcome of."""
    if intent.dry_run:
        raise CliError(
            "--wait waits for the outcome the app records for an intent, and a dry run records "
            "none (its outcome goes to scale-results only); use `plan FILE` to see what it "
            "would change now, or send it without --wait",
            EXIT_USAGE,
        )
    problem = cluster_refusal(settings, intent.cluster)
    if problem is not None:  # the app would refuse it without recording anything
        raise CliError(f"{problem.code}: {problem.message} (not sent)", EXIT_INVALID)


def _state_table(connection_string: str | None, account_url: str | None) -> Any:
    """The app's state table, on the storage `send` used."""
    from azure.data.tables import TableServiceClient

    from scaler.adapters.state import TableState

    if connection_string:
        return TableState(TableServiceClient.from_connection_string(connection_string))
    assert account_url
    if ".queue." not in account_url:
        raise CliError(
            "--wait with --account-url needs https://<account>.queue.core.windows.net (the "
            "state table is read at the matching .table. address)",
            EXIT_INVALID,
        )
    from azure.identity import DefaultAzureCredential

    table_url = account_url.replace(".queue.", ".table.", 1)
    return TableState(TableServiceClient(table_url, credential=DefaultAzureCredential()))


def wait_and_report(
    args: argparse.Namespace,
    out: Console,
    settings: Settings,
    intent: Intent,
    message_id: str,
    store: Any,
    document: dict[str, Any],
    clusters: Any = None,
) -> int:
    """`send --wait`: the outcome (and readiness), printed; returns the exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    waiter = wait.Waiter(
        time.monotonic() + args.timeout, lambda line: err.print(f"waiting: {line}", markup=False)
    )
    sent = source_of(intent, utc_now())
    try:
        waited = wait.wait_for_outcome(store, intent.cluster, sent, message_id, waiter)
    finally:
        store.close()
    document = {**document, "status": waited.status, "outcome": waited.outcome}
    ready: bool | None = None
    pools: dict[str, Any] | None = None
    overall = (waited.outcome or {}).get("outcome")
    if args.until_ready and waited.status == wait.DONE and overall in ("applied", "unchanged"):
        assert waited.outcome is not None
        targets = wait.targets_of(waited.outcome)
        gateway, closers = clusters, list[Any]()
        if gateway is None:
            gateway, closers = _cluster_gateway(settings)
        try:
            ready, last = wait.wait_until_ready(gateway, intent.cluster, targets, waiter)
        finally:
            for closer in closers:
                closer.close()
        pools = {name: last[name].summary() for name in targets if name in last}
        document.update(ready=ready, pools=pools)
        if not ready:
            document["status"] = wait.TIMED_OUT
    if args.json:
        out.print_json(data=document)
    else:
        for line in outcome_lines(intent.id, waited):
            out.print(line, markup=False, soft_wrap=True)
        if ready:
            described = ", ".join(f"{n}: {_summary_text(p)}" for n, p in (pools or {}).items())
            out.print(f"ready: {described}", markup=False, soft_wrap=True)
    if waited.status == wait.TIMED_OUT:
        raise CliError(
            f"timed out after {args.timeout:g} s waiting for the outcome of intent {intent.id} "
            f"({waited.last_seen})",
            EXIT_TIMED_OUT,
        )
    if ready is False:
        raise CliError(
            f"timed out after {args.timeout:g} s waiting for the pools of intent {intent.id} "
            "to be ready",
            EXIT_TIMED_OUT,
        )
    return wait.EXIT_CODES[waited.status]


def outcome_lines(intent_id: str, waited: wait.Waited) -> list[str]:
    """`intent <id>: <outcome>[: <error>]`, a note when there is one, then a line per pool."""
    outcome = waited.outcome
    if outcome is None:
        return [f"intent {intent_id}: {waited.status}: {waited.note}"]
    line = f"intent {intent_id}: {outcome.get('outcome')}"
    error = outcome.get("error")
    if error:
        line += f": {error['code']}: {error['message']}"
    lines = [line]
    if waited.note:
        lines.append(f"  ({waited.note})")
    for pool in outcome.get("pools") or []:
        text = f"  {pool['pool']}: {pool['outcome']}"
        if pool.get("desired"):
            text += f", desired {json.dumps(pool['desired'])}"
        if pool.get("why"):
            text += f" ({describe_why(pool['why'])})"
        if pool.get("error"):
            text += f": {pool['error']['code']}: {pool['error']['message']}"
        lines.append(text)
    return lines


def _summary_text(summary: dict[str, Any]) -> str:
    return f"{describe_pool(summary)}, {summary.get('provisioning_state')}"


def _cluster_gateway(settings: Settings) -> tuple[Any, list[Any]]:
    from scaler.adapters.aks import AksGateway
    from scaler.adapters.credentials import build_credential

    identity = build_credential(dict(os.environ), settings.client_id)
    gateway = AksGateway(identity, settings.arm_endpoint, settings.arm_scope)
    return gateway, [gateway, identity]


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
