"""`aks-scaler status [TARGET] [--json]`: per pool, what it is now (read from ARM), what the
scaler wants for it, which source decided and until when, and the schedule's next transition.

Reads only: one ARM read per cluster, one read of the app's state table per cluster, and the
schedule. Uses the app's settings from the environment (SCALER_ARM_ENDPOINT, AzureWebJobsStorage,
SCALER_SCHEDULE_FILE or SCALER_SCHEDULE_BLOB, ...) and your Azure sign-in, as `plan` does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from rich.console import Console
from rich.table import Table

from scaler.cli.io import EXIT_INVALID, EXIT_UNREACHABLE, EXIT_USAGE, CliError, load_settings
from scaler.cli.schedule import (
    add_savings_arguments,
    amount,
    describe_totals,
    node_hours,
    print_method,
    savings_options,
)
from scaler.clock import utc_now
from scaler.domain.clusters import (
    CLUSTER_NAME,
    RESOURCE_GROUP_NAME,
    SUBSCRIPTION_ID,
    ClusterRef,
)
from scaler.domain.savings import (
    Baseline,
    ClusterSavings,
    PoolSavings,
    SavingsOptions,
    cluster_savings,
    week_of,
)
from scaler.service_layer.intake import cluster_refusal
from scaler.service_layer.status import ClusterStatus, PoolStatus, StatusReader
from scaler.settings import Settings

TARGET_HELP = (
    "resourceGroup/cluster (in AZURE_SUBSCRIPTION_ID) or subscriptionId/resourceGroup/cluster; "
    "default: every cluster the app knows (the default cluster, the schedule's clusters, and "
    "SCALER_ALLOWED_CLUSTERS entries without *)"
)


def add_status_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="show each pool now, what the scaler wants for it and why (reads only)",
        description="Per pool: the state read from Azure Resource Manager now (count, min/max, "
        "power, an operation in progress), the desired state, the source that decided it and "
        "until when (schedule window or exception, intent, hold, leases with their holders and "
        "expiry), and the schedule's next transition. One ARM read per cluster; nothing is "
        "written. Uses the app's settings from the environment and your Azure sign-in (needs "
        "read access to the clusters' agent pools and Storage Table Data Reader on the app's "
        "storage). Exit 0, 1 if TARGET is refused (not in SCALER_ALLOWED_CLUSTERS), 3 if a "
        "cluster or the storage could not be read.",
    )
    status.add_argument("target", nargs="?", help=TARGET_HELP)
    status.add_argument(
        "--json",
        action="store_true",
        help='print {"at", "clusters": [{"cluster", "id", "schedule", "error", "pools": [...]}]}',
    )
    status.add_argument(
        "--savings",
        action="store_true",
        help="add the node-hours (and with --prices, money, priced by the pools' VM sizes as "
        "read) the schedule saves this week (from Monday, local time), per pool and in total; "
        'in JSON each pool gets "savings" and each cluster a "savings" summary',
    )
    add_savings_arguments(status, vm_sizes=False)
    status.set_defaults(run=_status)


def _status(args: argparse.Namespace, out: Console) -> int:
    from azure.core.exceptions import AzureError

    settings = load_settings()
    target = parse_target(args.target, settings) if args.target else None
    if target is not None:
        refusal = cluster_refusal(settings, target)
        if refusal is not None:  # refused before anything is built or read
            raise CliError(f"{refusal.code}: {refusal.message}", EXIT_INVALID)
    if not args.savings:
        given = [name for name in ("--baseline", "--prices") if getattr(args, name[2:])]
        if given:
            raise CliError(f"{given[0]} goes with --savings", EXIT_USAGE)
    options: SavingsOptions | None = None
    try:
        with status_reader(settings) as reader:
            if args.savings:
                options = savings_options(args, reader.named_states())
            targets = [target] if target is not None else reader.known_clusters()
            if not targets:
                raise CliError(
                    "no cluster to show: set SCALER_RESOURCE_GROUP and SCALER_CLUSTER, or name "
                    "one (rg/cluster)",
                    EXIT_INVALID,
                )
            statuses = [reader.cluster(cluster) for cluster in targets]
    except AzureError as error:
        raise CliError(
            f"could not read the app's state: {_first_line(error)}", EXIT_UNREACHABLE
        ) from None
    savings = {id(s): status_savings(s, options) for s in statuses} if options else {}
    if args.json:
        document: dict[str, Any] = {"at": utc_now().isoformat(), "clusters": []}
        for status in statuses:
            document["clusters"].append(_with_savings(status, savings.get(id(status)), options))
        if options is not None:
            document["savings_method"] = options.method()
        out.print_json(data=document)
    else:
        for number, status in enumerate(statuses):
            if number:
                out.print()
            print_cluster(out, status, utc_now(), savings.get(id(status)), options)
        if options is not None:
            print_method(out, options)
    unreadable = [
        s for s in statuses if s.problem is not None and s.problem.code != "ClusterNotAllowed"
    ]
    return EXIT_UNREACHABLE if unreadable else 0


def status_savings(status: ClusterStatus, options: SavingsOptions) -> ClusterSavings | None:
    """This week's savings of the cluster's scheduled pools, priced by the VM sizes of the
    same ARM read; a pool without a window that asks for nodes counts its current size."""
    schedule = status.schedule
    if schedule is None or status.problem is not None:
        return None
    current = [pool.current for pool in status.pools if pool.current is not None]
    sizes = {pool.name: pool.vm_size for pool in current if pool.vm_size}
    fallbacks = {
        pool.name: Baseline(Fraction(pool.count), "its size now (ARM)")
        for pool in current
        if pool.count and not pool.is_stopped
    }
    options = replace(options, vm_sizes={**sizes, **options.vm_sizes})
    start, end = week_of(schedule, utc_now(), monday=True)
    return cluster_savings(schedule, start, end, options, None, fallbacks)


def _with_savings(
    status: ClusterStatus, savings: ClusterSavings | None, options: SavingsOptions | None
) -> dict[str, Any]:
    document = status.to_json()
    if options is None:
        return document
    document["savings"] = savings.to_json(with_pools=False) if savings is not None else None
    for pool in document["pools"]:
        found = savings.pool(pool["pool"]) if savings is not None else None
        pool["savings"] = found.to_json() if found is not None else None
    return document


def parse_target(text: str, settings: Settings) -> ClusterRef:
    parts = text.strip().strip("/").split("/")
    if len(parts) == 2:
        if not settings.subscription_id:
            raise CliError(
                f"target {text!r}: set AZURE_SUBSCRIPTION_ID or give "
                "subscriptionId/resourceGroup/cluster",
                EXIT_INVALID,
            )
        parts = [settings.subscription_id, *parts]
    if len(parts) != 3 or not (
        SUBSCRIPTION_ID.fullmatch(parts[0])
        and RESOURCE_GROUP_NAME.fullmatch(parts[1])
        and CLUSTER_NAME.fullmatch(parts[2])
    ):
        raise CliError(
            f"target {text!r} must look like resourceGroup/cluster or "
            "subscriptionId/resourceGroup/cluster",
            EXIT_INVALID,
        )
    return ClusterRef(*parts)


@contextmanager
def status_reader(settings: Settings) -> Iterator[StatusReader]:
    """The app's adapters for one command, closed afterwards. (Not `scaler.bootstrap`: that is
    the app's one process-wide set, and this command needs no queue clients.)"""
    from azure.data.tables import TableServiceClient

    from scaler.adapters.aks import AksGateway
    from scaler.adapters.credentials import build_credential
    from scaler.adapters.schedule_source import schedule_source
    from scaler.adapters.state import TableState
    from scaler.adapters.storage import storage_client
    from scaler.service_layer.schedules import Schedules

    env = dict(os.environ)
    with ExitStack() as closing:
        identity = build_credential(env, settings.client_id)
        closing.callback(_close, identity)
        clusters = AksGateway(identity, settings.arm_endpoint, settings.arm_scope)
        closing.callback(_close, clusters)
        state = TableState(storage_client(TableServiceClient, "table", env, identity))
        closing.callback(_close, state)
        source = schedule_source(settings, env, identity)
        closing.callback(_close, source)
        schedules = Schedules(_ReadOnce(source), settings.max_count, settings.subscription_id)
        yield StatusReader(settings, clusters, state, schedules, utc_now)


class _ReadOnce:
    """The schedule, read once per command (a blob would otherwise be read per cluster)."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._read: tuple[str, str] | None = None

    def read(self) -> tuple[str, str]:
        if self._read is None:
            self._read = self._source.read()
        return self._read


def _close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if callable(close):
        close()


# --- for people ------------------------------------------------------------------------------


def print_cluster(
    out: Console,
    status: ClusterStatus,
    now: datetime,
    savings: ClusterSavings | None = None,
    options: SavingsOptions | None = None,
) -> None:
    heading = status.cluster.short_name
    if status.schedule_name:
        heading += f" (schedule {status.schedule_name})"
    out.print(heading, markup=False, soft_wrap=True)
    if status.problem is not None:
        note = " (transient: try again)" if status.retrying else ""
        text = f"{status.problem.code}: {status.problem.message}{note}"
        out.print(text, markup=False, style="red", soft_wrap=True)
        return
    table = Table()
    for column in ("pool", "now", "desired", "decided by", "until", "next scheduled change"):
        table.add_column(column)
    if options is not None:
        table.add_column("saved this week")
    for pool in status.pools:
        row = [
            pool.pool,
            describe_now(pool),
            describe_desired(pool),
            describe_decider(pool, now),
            when(pool.why.until, now),
            describe_next(pool, now),
        ]
        if options is not None:
            found = savings.pool(pool.pool) if savings is not None else None
            row.append(describe_saved(found, options))
        table.add_row(*row)
    out.print(table, markup=False)
    if savings is not None and savings.total.counted_pools:
        start = savings.local(savings.start)
        out.print(
            f"savings, week from {start:%a %Y-%m-%d} ({node_hours(savings.hours)} h, "
            f"{savings.timezone}): {describe_totals(savings.total, options or SavingsOptions())}",
            markup=False,
            soft_wrap=True,
        )


def describe_saved(pool: PoolSavings | None, options: SavingsOptions) -> str:
    if pool is None:
        return "-"
    saved = pool.saved_node_hours
    if saved is None or pool.baseline is None:
        return "no baseline (--baseline)"
    base = f"{node_hours(pool.baseline.nodes)} × {node_hours(pool.hours)} h"
    text = f"{node_hours(saved)} node-h\nof {base}"
    if pool.saved_money is not None:
        text += f"\n{amount(pool.saved_money, options.currency)}"
    return text


def describe_now(pool: PoolStatus) -> str:
    current = pool.current
    if current is None:
        return "no such pool"
    if current.is_stopped:
        text = "stopped"
    elif current.autoscale:
        text = f"autoscale {current.min_count}-{current.max_count}, {current.count} nodes"
    else:
        text = f"{current.count} node" + ("" if current.count == 1 else "s")
    if pool.operation_in_progress:
        text += f"\n{current.provisioning_state}: operation in progress"
    return text


def describe_desired(pool: PoolStatus) -> str:
    if pool.desired is None:
        return "- (left alone)"
    text = describe_form(pool.desired)
    outcome = pool.outcome
    if outcome is not None and outcome.problem is not None:
        text += f"\n{outcome.result.value}: {outcome.problem.code}"
    elif outcome is not None and outcome.action.value != "none":
        text += f"\n(to do: {outcome.action.value})"
    return text


def describe_form(form: object) -> str:
    """A pool form (`{"count": 3}`, `{"min": 1, "max": 5}`, `{"power": "Stopped"}`, "keep")."""
    if not isinstance(form, dict):
        return str(form) if form is not None else "-"
    if "count" in form:
        count = form["count"]
        return f"{count} node" + ("" if count == 1 else "s")
    if "min" in form:
        return f"autoscale {form['min']}-{form['max']}"
    return "stopped" if form.get("power") == "Stopped" else "running"


def describe_decider(pool: PoolStatus, now: datetime) -> str:
    why = pool.why
    text = why.detail
    if pool.reason:
        text += f" ({pool.reason})"
    for lease in pool.leases:
        holder = f" ({lease.reason})" if lease.reason else ""
        text += f"\nlease {lease.id}{holder}: {lease.count} until {when(lease.until, now)}"
    return text


def describe_next(pool: PoolStatus, now: datetime) -> str:
    schedule = pool.schedule
    if schedule is None:
        return "-"
    if schedule.next_transition is None:
        return "none within 14 days"
    return f"{when(schedule.next_transition, now)} → {describe_form(schedule.next_state)}"


def when(moment: datetime | None, now: datetime) -> str:
    """`2026-11-25 14:05:00Z (in 1h 5m)`."""
    if moment is None:
        return "-"
    text = moment.astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M:%SZ")
    left = moment - now
    return f"{text} ({'in ' + span(left) if left >= timedelta(0) else span(-left) + ' ago'})"


def span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s" if minutes < 10 else f"{minutes}m"
    return f"{seconds}s"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
