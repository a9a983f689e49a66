"""`aks-scaler schedule …`: check a schedule file and look at what it would do.

    schedule check FILE [--json]             validate; exit 1 with the error naming the field
    schedule preview FILE --at T --json      the desired state at instant T, as JSON
    schedule preview FILE [--at T] [--days N] a timeline per pool, in each cluster's zone
    schedule preview FILE --profile NAME [--cluster RG/NAME]
                                             a profile's timeline, in that cluster's zone
                                             (else the file's), under its exceptions
    schedule preview FILE --cluster RG/NAME  that cluster only, its pools read from Azure with
                                             the app's settings: each with the profile its
                                             `scaler-schedule` tag gives it
    schedule preview FILE --savings [--at WEEK-START] [--baseline [POOL=]N|STATE]
                     [--autoscale min|max|mid] [--prices FILE] [--vm-size POOL=SIZE]
                     [--price POOL=AMOUNT] [--json]
                                             node-hours (and money) a week the schedule saves

FILE may be `-` for standard input. Counts are checked against SCALER_MAX_COUNT from the
environment, as the app does. Nothing here talks to Azure, except `--cluster` without
`--profile` (one read of the cluster's agent pools).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from scaler.cli.io import (
    EXIT_INVALID,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    load_settings,
    read_input,
    rejected,
    source_name,
)
from scaler.clock import utc_now
from scaler.domain.clusters import ClusterRef
from scaler.domain.pools import Autoscale, ManualCount, PoolState, Power
from scaler.domain.savings import (
    ALL_POOLS,
    AUTOSCALE_COUNTS,
    Baseline,
    ClusterSavings,
    SavingsOptions,
    Totals,
    cluster_savings,
    parse_baseline,
    parse_price_table,
    week_of,
)
from scaler.domain.schedule import (
    ClusterSchedule,
    Decision,
    Schedule,
    ScheduledState,
    ScheduleTarget,
)
from scaler.domain.schedule_file import load_schedule
from scaler.domain.tags import TagRules
from scaler.service_layer.intake import cluster_refusal
from scaler.service_layer.ports import GatewayError
from scaler.settings import Settings

SLOT_MINUTES = 30  # one character of the timeline
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
DAY_LABEL_WIDTH = 7  # "Mon 23 "
TIMELINE_WIDTH = DAY_LABEL_WIDTH + SLOTS_PER_DAY
MAX_PREVIEW_DAYS = 31

# Glyphs for pool forms, handed out in order of first appearance within a pool's row.
PALETTE = ("█", "▓", "▒", "░", "▚", "■", "▬", "▪")


def add_schedule_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `schedule check` and `schedule preview` on the main parser."""
    schedule = commands.add_parser(
        "schedule",
        help="check or preview a schedule file",
        description="Work with a schedule file (TOML; README.md, section 'Schedules').",
    )
    actions = schedule.add_subparsers(title="actions", required=True, metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="validate a schedule file",
        description="Validate a schedule; exit 1 with the error (naming the field) if it is not "
        "valid. Counts are checked against SCALER_MAX_COUNT.",
    )
    check.add_argument("file", help="schedule TOML file, or - for standard input")
    check.add_argument(
        "--json",
        action="store_true",
        help='print {"file", "valid", "clusters": [{"cluster", "timezone", "pools", '
        '"exceptions"}], "warnings"} as JSON',
    )
    check.set_defaults(run=_check)

    preview = actions.add_parser(
        "preview",
        help="show what a schedule asks for, when",
        description="Without --json: a timeline per pool from the day of --at, in each "
        "cluster's time zone. With --json: the desired state at --at as "
        '{"<resourceGroup>/<cluster>": {"<pool>": <pool form>}} (pools the schedule leaves '
        "alone are omitted).",
    )
    preview.add_argument("file", help="schedule TOML file, or - for standard input")
    preview.add_argument(
        "--at",
        type=_instant,
        help="ISO-8601 instant with a time zone, e.g. 2026-11-23T08:30:00+01:00 (default: now)",
    )
    shape = preview.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the desired state at --at")
    shape.add_argument(
        "--days",
        type=_days,
        default=7,
        help=f"days the timeline covers (1-{MAX_PREVIEW_DAYS}, default 7)",
    )
    preview.add_argument(
        "--profile",
        metavar="NAME",
        help="preview the profile NAME ([profiles.NAME]: what a pool tagged "
        "scaler-schedule=NAME gets) instead of the clusters",
    )
    preview.add_argument(
        "--cluster",
        metavar="RG/NAME",
        help="with --profile: evaluate it in this cluster of the file (its zone, holidays and "
        "exceptions); default: the file's top-level timezone and holidays. Without --profile: "
        "only this cluster, its pools read from Azure with the app's settings (AZURE_"
        "SUBSCRIPTION_ID, SCALER_ARM_ENDPOINT, your sign-in), each shown with the profile its "
        "scaler-schedule tag gives it; exit 3 (after the preview) if it could not be read",
    )
    preview.add_argument(
        "--savings",
        action="store_true",
        help="show the node-hours (and, with prices, money) the schedule saves in the week from "
        "--at's day (default: this week from Monday), per pool and in total",
    )
    add_savings_arguments(preview, vm_sizes=True)
    preview.set_defaults(run=_preview)


def add_savings_arguments(parser: argparse.ArgumentParser, vm_sizes: bool) -> None:
    """The options of `--savings` (shared with `status --savings`)."""
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="[POOL=]N|STATE",
        help="with --savings: the nodes a pool would run all week without the schedule, as a "
        "count or a named state of the file ([states]); POOL= (or RG/CLUSTER/POOL=) for one "
        "pool; repeatable. Default: the pool's state in its largest window",
    )
    parser.add_argument(
        "--autoscale",
        choices=AUTOSCALE_COUNTS,
        default="min",
        help="with --savings: the nodes an autoscaled state counts as (default min: what it "
        "keeps when idle; mid: halfway between min and max)",
    )
    parser.add_argument(
        "--prices",
        metavar="FILE",
        help='with --savings: VM size → price of one node per hour, JSON ({"Standard_D8ds_v5": '
        '0.452}) or TOML, optionally with currency = "EUR"',
    )
    if vm_sizes:
        parser.add_argument(
            "--vm-size",
            action="append",
            default=[],
            metavar="POOL=SIZE",
            help="with --savings and --prices: the pool's VM size (with --cluster, read from "
            "Azure); repeatable",
        )
        parser.add_argument(
            "--price",
            action="append",
            default=[],
            metavar="POOL=AMOUNT",
            help="with --savings: the price of one of the pool's nodes per hour; repeatable",
        )


def _check(args: argparse.Namespace, out: Console) -> int:
    schedule = _read_schedule(args.file)
    err = Console(stderr=True, highlight=False)
    for warning in schedule.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if args.json:
        out.print_json(data=_check_document(source_name(args.file), schedule))
        return 0
    out.print(f"{source_name(args.file)}: valid", soft_wrap=True, markup=False)
    for cluster in (*schedule.clusters, *schedule.selections):
        holidays = (
            f"; holidays {', '.join(h.label for h in cluster.holidays)}" if cluster.holidays else ""
        )
        out.print(
            f"  {entry_label(cluster)} ({cluster.timezone}): "
            f"pools {', '.join(cluster.pool_names)}; "
            f"{_plural(len(cluster.exceptions), 'exception')}{holidays}",
            soft_wrap=True,
            markup=False,
        )
    if schedule.states:
        out.print(
            f"  states: {', '.join(name for name, _ in schedule.states)}",
            soft_wrap=True,
            markup=False,
        )
    if schedule.profiles:
        out.print(
            f"  profiles (tag scaler-schedule=<name>): "
            f"{', '.join(p.name for p in schedule.profiles)}",
            soft_wrap=True,
            markup=False,
        )
    return 0


def _check_document(source: str, schedule: Schedule) -> dict[str, object]:
    return {
        "file": source,
        "valid": True,
        "clusters": [
            {"cluster": cluster.target.key, **_entry_document(cluster)}
            for cluster in schedule.clusters
        ],
        "selections": [
            {
                "tag": cluster.selector.text,
                "subscription_id": cluster.selector.subscription_id,
                **_entry_document(cluster),
            }
            for cluster in schedule.selections
            if cluster.selector is not None
        ],
        "states": [name for name, _ in schedule.states],
        "profiles": [profile.name for profile in schedule.profiles],
        "warnings": list(schedule.warnings),
    }


def _entry_document(cluster: ClusterSchedule) -> dict[str, object]:
    return {
        "timezone": cluster.timezone,
        "pools": list(cluster.pool_names),
        "exceptions": len(cluster.exceptions),
        "holidays": [h.label for h in cluster.holidays],
    }


def _preview(args: argparse.Namespace, out: Console) -> int:
    schedule = _read_schedule(args.file)
    at: datetime = args.at or utc_now()
    options = savings_options(args, dict(schedule.states)) if args.savings else None
    if options is None:
        given = [name for name in SAVINGS_ONLY if getattr(args, name.strip("-").replace("-", "_"))]
        if given:
            raise CliError(f"{given[0]} goes with --savings", EXIT_USAGE)
    if args.profile is not None:
        cluster, pool = _profile_cluster(schedule, args.profile, args.cluster)
        if options is not None:
            print_savings(out, [(cluster, (pool,))], _week_anchor(args), options, args.json)
            return 0
        if args.json:
            decision = cluster.decide(at, pool)
            state = decision.state
            out.print_json(
                data={
                    "profile": args.profile,
                    "cluster": cluster.target.key if args.cluster else None,
                    "timezone": cluster.timezone,
                    "state": state if state is None or isinstance(state, str) else state.to_json(),
                    "named": decision.state_name,
                    "reason": decision.reason,
                }
            )
            return 0
        out.print(timeline(cluster, at, args.days, pools=(pool,), title=f"profile {args.profile}"))
        return 0
    clusters = list(schedule.clusters)
    read: ReadCluster | None = None
    if args.cluster is not None:
        read = read_tagged_cluster(schedule, args.cluster)
        clusters = [read.schedule] if read.schedule is not None else []
        err = Console(stderr=True, highlight=False)
        if read.problem is not None:
            err.print(f"[yellow]warning:[/] {escape(read.problem)}", soft_wrap=True)
        if options is not None:
            sizes = {pool.name: pool.vm_size for pool in read.pools or () if pool.vm_size}
            options = replace(options, vm_sizes={**sizes, **options.vm_sizes})
    if options is not None:
        print_savings(out, [(c, None) for c in clusters], _week_anchor(args), options, args.json)
    elif args.json:
        desired = Schedule(tuple(clusters)).desired_at(at)
        data = {
            target.key: {name: request.to_json() for name, request in pools.items()}
            for target, pools in desired.items()
        }
        for entry in schedule.selections if read is None else ():
            pools = Schedule((entry,)).desired_at(at).get(entry.target, {})
            if pools:
                data[entry_label(entry)] = {n: r.to_json() for n, r in pools.items()}
        out.print_json(data=data)
    else:
        if read is not None:
            for line in read.lines():
                out.print(line, soft_wrap=True, markup=False)
        for cluster in clusters:
            out.print(timeline(cluster, at, args.days))
        for entry in schedule.selections if read is None else ():
            out.print(timeline(entry, at, args.days, title=escape(entry_label(entry))))
        if schedule.profiles and read is None:
            out.print(
                f"profiles (a pool tagged scaler-schedule=<name> follows one): "
                f"{', '.join(p.name for p in schedule.profiles)}; see one with --profile NAME",
                soft_wrap=True,
                markup=False,
            )
    return EXIT_UNREACHABLE if read is not None and read.problem is not None else 0


def _profile_cluster(
    schedule: Schedule, name: str, cluster_key: str | None
) -> tuple[ClusterSchedule, str]:
    """A cluster schedule with a pool that follows the profile `name`, and that pool's name."""
    profile = schedule.profile(name)
    if profile is None:
        known = ", ".join(p.name for p in schedule.profiles) or "none"
        raise CliError(f"the schedule has no profile {name!r} (profiles: {known})", EXIT_INVALID)
    if cluster_key is None:
        base = schedule.unlisted_cluster(ScheduleTarget("", ""))
    else:
        base = schedule.cluster(cluster_key)
        if base is None:
            known = ", ".join(c.target.key for c in schedule.clusters)
            raise CliError(
                f"the schedule has no cluster {cluster_key!r} (clusters: {known})", EXIT_INVALID
            )
    assert base is not None  # a file with profiles has a top-level timezone
    pool = "tagged pool"  # not an AKS pool name: never one the file gives its own block
    return base.with_profile(pool, profile), pool


# --- --cluster: the pools as read, with the profiles their tags give them -------------------


@dataclass(frozen=True)
class ReadCluster:
    """A cluster of `--cluster`: its schedule once tagged pools follow their profiles (the
    file's own entry when it could not be read), its pools as read, and why not."""

    key: str
    schedule: ClusterSchedule | None
    found: ClusterSchedule | None  # the file's own entry for the cluster
    pools: list[PoolState] | None  # None: not read
    rules: TagRules
    profiles: frozenset[str]
    problem: str | None = None

    def lines(self) -> list[str]:
        if self.pools is None:
            return [f"{self.key}: not read, pools shown as the file has them (tags not applied)"]
        lines = [f"{self.key}: {_plural(len(self.pools), 'pool')} read from Azure"]
        lines += [f"  {pool.name}: {self._pool_line(pool)}" for pool in self.pools]
        if self.schedule is None:
            lines.append(
                f"  nothing scheduled: the file does not list {self.key} and no pool carries a "
                f"{self.rules.profile_name} tag naming one of its profiles"
            )
        return lines

    def _pool_line(self, pool: PoolState) -> str:
        excluded = self.rules.excluded(pool)
        if excluded is not None:
            return f"excluded by its tag {excluded}: the scaler never writes it"
        tag = self.rules.profile(pool)
        named = self.found is not None and self.found.pool(pool.name) is not None
        if tag is not None:
            shown = f"{self.rules.profile_name}={tag}"
            if named:
                return f"tagged {shown}, but the file names the pool: the file wins"
            if tag not in self.profiles:
                return f"tagged {shown}, a profile the file does not define: not scheduled"
            return f"follows profile {tag} (tag {shown})"
        if self.found is not None and pool.name in self.found.pool_names:
            return "as the file says"
        return "not in the schedule (left alone)"


def read_tagged_cluster(schedule: Schedule, key: str) -> ReadCluster:
    """`--cluster RG/NAME` without `--profile`: read the cluster's pools (one ARM read, the
    app's settings) and give each tagged pool its profile, as the app does."""
    group, _, name = key.strip().strip("/").partition("/")
    if not group or not name or "/" in name:
        raise CliError(f"--cluster {key!r} must look like resourceGroup/cluster", EXIT_USAGE)
    settings = load_settings()
    found = schedule.cluster(f"{group}/{name}")
    target = found.target if found is not None else ScheduleTarget(group, name)
    rules = settings.tag_rules
    profiles = frozenset(p.name for p in schedule.profiles)

    def unread(problem: str) -> ReadCluster:
        return ReadCluster(target.key, found, found, None, rules, profiles, problem)

    subscription = target.subscription_id or settings.subscription_id
    if not subscription:
        return unread(
            f"cannot read {target.key}: set AZURE_SUBSCRIPTION_ID (or subscription_id in the "
            "file); tags not applied"
        )
    cluster = ClusterRef(subscription, target.resource_group, target.cluster)
    refusal = cluster_refusal(settings, cluster)
    if refusal is not None:
        return unread(f"{refusal.code}: {refusal.message}; not read, tags not applied")
    try:
        pools = read_cluster_pools(settings, cluster)
    except GatewayError as error:
        return unread(f"could not read {target.key} ({error}); tags not applied")
    tagged = {pool.name: profile for pool in pools if (profile := rules.profile(pool))}
    tagged_schedule = schedule.for_tagged_pools(found, target, tagged)
    return ReadCluster(target.key, tagged_schedule, found, pools, rules, profiles)


def read_cluster_pools(settings: Settings, cluster: ClusterRef) -> list[PoolState]:
    """One ARM read of the cluster's agent pools (tags and VM sizes come with them), with the
    app's endpoint and your Azure sign-in; GatewayError when it fails."""
    import os

    from azure.core.exceptions import AzureError

    from scaler.adapters.aks import AksGateway
    from scaler.adapters.credentials import build_credential

    identity = build_credential(dict(os.environ), settings.client_id)
    gateway = AksGateway(identity, settings.arm_endpoint, settings.arm_scope)
    try:
        return gateway.list_pools(cluster)
    except AzureError as error:
        text = str(error).strip().splitlines()
        raise GatewayError(type(error).__name__, text[0] if text else "", transient=True) from None
    finally:
        gateway.close()
        close = getattr(identity, "close", None)
        if callable(close):
            close()


# --- savings ---------------------------------------------------------------------------------

SAVINGS_ONLY = ("--baseline", "--prices", "--vm-size", "--price")


def savings_options(args: argparse.Namespace, states: dict[str, ScheduledState]) -> SavingsOptions:
    """`--baseline`, `--autoscale`, `--prices` (and for preview `--vm-size`, `--price`)."""
    autoscale = args.autoscale
    baselines: dict[str, Baseline] = {}
    with rejected():
        for text in args.baseline:
            pool, value = _pool_value(text, "--baseline", optional=True)
            baselines[pool] = parse_baseline(value, states, autoscale)
        prices = None
        if args.prices is not None:
            source = read_input(args.prices)
            prices = parse_price_table(source.text(), source.name)
    vm_sizes = dict(_pool_value(t, "--vm-size") for t in getattr(args, "vm_size", []))
    pool_prices: dict[str, float] = {}
    for text in getattr(args, "price", []):
        pool, value = _pool_value(text, "--price")
        try:
            price = float(value)
        except ValueError:
            price = -1.0
        if not 0 <= price < float("inf"):
            raise CliError(f"--price {text!r}: the price must be a number of 0 or more", EXIT_USAGE)
        pool_prices[pool] = price
    if vm_sizes and prices is None:
        raise CliError("--vm-size goes with --prices (the table that prices each size)", EXIT_USAGE)
    return SavingsOptions(baselines, autoscale, prices, pool_prices, vm_sizes)


def _pool_value(text: str, option: str, optional: bool = False) -> tuple[str, str]:
    pool, sign, value = text.partition("=")
    if not sign:
        if optional:
            return ALL_POOLS, text
        raise CliError(f"{option} {text!r} must look like POOL=VALUE", EXIT_USAGE)
    if not pool.strip() or not value.strip():
        raise CliError(f"{option} {text!r} must look like POOL=VALUE", EXIT_USAGE)
    return pool.strip(), value.strip()


def _week_anchor(args: argparse.Namespace) -> tuple[datetime, bool]:
    """Where the savings week starts: --at's local day, else this week's Monday."""
    return (args.at, False) if args.at is not None else (utc_now(), True)


def savings_reports(
    clusters: list[tuple[ClusterSchedule, tuple[str, ...] | None]],
    anchor: tuple[datetime, bool],
    options: SavingsOptions,
    fallbacks: dict[str, dict[str, Baseline]] | None = None,
) -> list[ClusterSavings]:
    at, monday = anchor
    reports = []
    for cluster, pools in clusters:
        start, end = week_of(cluster, at, monday=monday)
        extra = (fallbacks or {}).get(cluster.target.key)
        reports.append(cluster_savings(cluster, start, end, options, pools, extra))
    return reports


def print_savings(
    out: Console,
    clusters: list[tuple[ClusterSchedule, tuple[str, ...] | None]],
    anchor: tuple[datetime, bool],
    options: SavingsOptions,
    as_json: bool,
) -> None:
    reports = savings_reports(clusters, anchor, options)
    if as_json:
        out.print_json(data=savings_document(reports, options))
        return
    for report in reports:
        out.print(savings_table(report, options))
        for line in baseline_lines(report):
            out.print(line, markup=False)
    if len(reports) > 1:
        out.print(f"all clusters: {describe_totals(grand_total(reports), options)}", markup=False)
    print_method(out, options)


def savings_document(reports: list[ClusterSavings], options: SavingsOptions) -> dict[str, object]:
    return {
        "method": options.method(),
        "autoscale": options.autoscale,
        "currency": options.currency,
        "clusters": [report.to_json() for report in reports],
        "total": grand_total(reports).to_json(),
    }


def grand_total(reports: list[ClusterSavings]) -> Totals:
    total = Totals()
    for report in reports:
        total += report.total
    return total


def print_method(out: Console, options: SavingsOptions) -> None:
    out.print(f"how: {options.method()}", markup=False, style="dim")


def savings_table(report: ClusterSavings, options: SavingsOptions) -> Table:
    start, end = report.local(report.start), report.local(report.end)
    table = Table(
        title=f"{report.cluster} · savings per week · {start:%a %Y-%m-%d %H:%M} – "
        f"{end:%a %Y-%m-%d %H:%M} {report.timezone} ({node_hours(report.hours)} h)",
    )
    money = any(pool.price is not None for pool in report.pools)
    for column in ("pool", "baseline", "baseline node-h", "scheduled node-h", "saved node-h"):
        table.add_column(column, justify="left" if column in ("pool", "baseline") else "right")
    table.add_column("saved", justify="right")
    currency = options.currency
    if money:
        table.add_column("VM size")
        table.add_column("price/h", justify="right")
        table.add_column(f"saved {currency}" if currency else "saved money", justify="right")
    for pool in report.pools:
        name = pool.pool if pool.profile is None else f"{pool.pool}\n(profile {pool.profile})"
        if pool.baseline is None:
            row = [name, "none: give --baseline", "-", "-", "-", "-"]
        else:
            base = pool.baseline
            saved = pool.saved_node_hours or Fraction(0)
            whole = pool.baseline_node_hours or Fraction(0)
            row = [
                name,
                f"{node_hours(base.nodes)} node{'' if base.nodes == 1 else 's'}",
                node_hours(whole),
                node_hours(pool.scheduled_node_hours or Fraction(0)),
                node_hours(saved),
                f"{float(saved / whole):.0%}" if whole else "-",
            ]
        if money:
            row += [
                pool.vm_size or "-",
                "-" if pool.price is None else f"{pool.price:g}",
                amount(pool.saved_money, None),
            ]
        table.add_row(*row)
    if len(report.pools) > 1:
        total = report.total
        row = [
            "total",
            "",
            node_hours(total.baseline_node_hours),
            node_hours(total.scheduled_node_hours),
            node_hours(total.saved_node_hours),
            _percent(total),
        ]
        if money:
            priced = f"{total.priced_pools} of {total.counted_pools} priced"
            row += ["", priced, amount(total.saved_money if total.priced_pools else None, None)]
        table.add_row(*row, style="bold")
    return table


def baseline_lines(report: ClusterSavings) -> list[str]:
    """Where each pool's baseline comes from (the table shows only its nodes)."""
    return [
        f"  baseline of {pool.pool}: {node_hours(pool.baseline.nodes)} = {pool.baseline.source}"
        for pool in report.pools
        if pool.baseline is not None
    ]


def describe_totals(total: Totals, options: SavingsOptions) -> str:
    text = (
        f"saved {node_hours(total.saved_node_hours)} of "
        f"{node_hours(total.baseline_node_hours)} node-hours a week ({_percent(total)})"
    )
    if total.priced_pools:
        text += f", {amount(total.saved_money, options.currency)}"
        if total.priced_pools < total.counted_pools:
            text += f" ({total.priced_pools} of {total.counted_pools} pools priced)"
    return text


def _percent(total: Totals) -> str:
    whole = total.baseline_node_hours
    return f"{float(total.saved_node_hours / whole):.0%}" if whole else "-"


def node_hours(value: Fraction) -> str:
    """Whole numbers as they are, others to two decimals."""
    return f"{int(value):,}" if value.denominator == 1 else f"{float(value):,.2f}"


def amount(value: float | None, currency: str | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" + (f" {currency}" if currency else "")


# --- the timeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Glyph:
    char: str
    style: str
    label: str


GAP = _Glyph("×", "red", "clock skipped (DST)")
NO_OPINION = _Glyph(" ", "", "no opinion")
KEPT = _Glyph("╌", "yellow", "left alone (keep)")
STOPPED = _Glyph("·", "dim", "stopped")


def entry_label(cluster: ClusterSchedule) -> str:
    """How a schedule entry is named to people: `rg/cluster`, or the tag it selects by."""
    if cluster.selector is None:
        return cluster.target.key
    where = f" in {cluster.selector.subscription_id}" if cluster.selector.subscription_id else ""
    return f"clusters tagged {cluster.selector.text}{where}"


def timeline(
    cluster: ClusterSchedule,
    at: datetime,
    days: int,
    pools: tuple[str, ...] | None = None,
    title: str | None = None,
) -> Table:
    """A table with one row per pool (`pools`, default every pool the cluster's schedule
    names): a line per local day, one character per half hour (the state at the start of that
    half hour), a legend, and the state at `at`. A public holiday's day is marked `*` and
    named in the caption."""
    zone = cluster.zone
    first = at.astimezone(zone).date()
    last = first + timedelta(days=days - 1)
    caption = f"one character = {SLOT_MINUTES} minutes, local time ({cluster.timezone})"
    holidays = _holidays_between(cluster, first, last)
    if holidays:
        calendars = ", ".join(h.label for h in cluster.holidays)
        named = ", ".join(f"{day:%a %d} {name}" for day, name in holidays.items())
        caption += f"\n* public holiday ({calendars}): {named}"
    table = Table(
        title=f"{title or cluster.target.key} · {cluster.timezone} · "
        f"{first:%a %Y-%m-%d} – {last:%a %Y-%m-%d}",
        caption=caption,
        caption_justify="left" if holidays else "center",
        show_lines=True,
    )
    table.add_column("pool", no_wrap=True)
    table.add_column(Text(" " * DAY_LABEL_WIDTH + _axis()), no_wrap=True)
    for pool in cluster.pool_names if pools is None else pools:
        profile = cluster.profile_of(pool)
        shown = pool if profile is None else f"{pool}\n(profile\n{profile})"
        table.add_row(shown, _pool_cell(cluster, pool, at, first, days, holidays))
    return table


def _holidays_between(cluster: ClusterSchedule, first: date, last: date) -> dict[date, str]:
    found: dict[date, str] = {}
    for calendar in cluster.holidays:
        for day, name in calendar.between(first, last):
            found.setdefault(day, name)
    return dict(sorted(found.items()))


def _pool_cell(
    cluster: ClusterSchedule,
    pool: str,
    at: datetime,
    first: date,
    days: int,
    holidays: dict[date, str],
) -> Group:
    glyphs: dict[str, _Glyph] = {}
    reasons: dict[str, None] = {}
    lines: list[Text] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        line = Text(f"{day:%a %d}") + (Text("*", style="magenta") if day in holidays else Text(" "))
        for slot in range(SLOTS_PER_DAY):
            moment = _local_instant(day, slot * SLOT_MINUTES, cluster)
            if moment is None:
                glyph = GAP
            else:
                decision = cluster.decide(moment, pool)
                glyph = _glyph_for(decision, glyphs)
                reasons.setdefault(decision.reason)
            glyphs.setdefault(glyph.label, glyph)
            line.append(glyph.char, style=glyph.style)
        lines.append(line)

    legend = [Text.assemble((g.char, g.style), f" {g.label}") for g in glyphs.values()]
    lines.extend(_wrapped(legend, TIMELINE_WIDTH, separator="   "))
    lines.extend(_wrapped([Text(r) for r in reasons], TIMELINE_WIDTH, "; ", prefix="rules: "))
    now = cluster.decide(at, pool)
    local = at.astimezone(cluster.zone)
    lines.append(Text(f"at {local:%a %d %H:%M}: {_label(now)} ({now.reason})"))
    return Group(*lines)


def _local_instant(day: date, minute: int, cluster: ClusterSchedule) -> datetime | None:
    """The instant the local wall clock shows `minute` on `day` (its first occurrence), or None
    when the clock skips that time (spring forward)."""
    zone = cluster.zone
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    moment = wall.replace(tzinfo=zone)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return moment


def _glyph_for(decision: Decision, glyphs: dict[str, _Glyph]) -> _Glyph:
    glyph = _state_glyph(decision.state, glyphs)
    if decision.state_name is None:
        return glyph
    # A named state ([states]) is shown by its name, with what it stands for.
    label = f"{decision.state_name} ({glyph.label})"
    return glyphs.get(label) or _Glyph(glyph.char, glyph.style, label)


def _state_glyph(state: ScheduledState | None, glyphs: dict[str, _Glyph]) -> _Glyph:
    if state is None:
        return NO_OPINION
    if isinstance(state, str):
        return KEPT
    if isinstance(state, Power):
        return STOPPED if state.code == "Stopped" else _Glyph("▔", "green", "running")
    label = _describe(state)
    if label in glyphs:
        return glyphs[label]
    used = len({g.char for g in glyphs.values() if g.char in PALETTE})
    style = "cyan" if isinstance(state, Autoscale) else "green"
    return _Glyph(PALETTE[used % len(PALETTE)], style, label)


def _describe(state: ManualCount | Autoscale) -> str:
    if isinstance(state, Autoscale):
        return f"autoscale {state.min_count}–{state.max_count}"
    return f"{state.count} node" + ("" if state.count == 1 else "s")


def _label(decision: Decision) -> str:
    state = decision.state
    if state is None:
        label = NO_OPINION.label
    elif isinstance(state, str):
        label = KEPT.label
    elif isinstance(state, Power):
        label = "stopped" if state.code == "Stopped" else "running"
    else:
        label = _describe(state)
    return label if decision.state_name is None else f"{decision.state_name} ({label})"


def _axis() -> str:
    marks = [" "] * SLOTS_PER_DAY
    for hour in (0, 6, 12, 18):
        position = hour * 60 // SLOT_MINUTES
        marks[position : position + 2] = f"{hour:02d}"
    marks[-2:] = "24"
    return "".join(marks)


def _wrapped(items: list[Text], width: int, separator: str, prefix: str = "") -> list[Text]:
    """`items` joined by `separator` into lines of at most `width` (unless one item is longer)."""
    lines: list[Text] = []
    line = Text(prefix)
    for item in items:
        if len(line) > len(prefix) and len(line) + len(separator) + len(item) > width:
            lines.append(line)
            line = Text(" " * len(prefix))
        if len(line) > len(prefix):
            line.append(separator)
        line.append_text(item)
    if len(line) > len(prefix):
        lines.append(line)
    return lines


# --- input -----------------------------------------------------------------------------------


def _read_schedule(path: str) -> Schedule:
    source = read_input(path)
    text = source.text()
    max_count = load_settings().max_count
    with rejected():  # the schedule's messages start with the file's name
        return load_schedule(text, source.name, max_count, now=utc_now())


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add Z or an offset like +01:00"
        )
    return moment


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PREVIEW_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_PREVIEW_DAYS}")
    return int(text)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
