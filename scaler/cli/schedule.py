"""`aks-scaler schedule …`: check a schedule file and look at what it would do.

    schedule check FILE [--json]             validate; exit 1 with the error naming the field
    schedule preview FILE --at T --json      the desired state at instant T, as JSON
    schedule preview FILE [--at T] [--days N] a timeline per pool, in each cluster's zone
    schedule preview FILE --profile NAME [--cluster RG/NAME]
                                             a profile's timeline, in that cluster's zone
                                             (else the file's), under its exceptions

FILE may be `-` for standard input. Counts are checked against SCALER_MAX_COUNT from the
environment, as the app does. Nothing here talks to Azure.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from scaler.cli.io import (
    EXIT_INVALID,
    EXIT_USAGE,
    CliError,
    load_settings,
    read_input,
    rejected,
    source_name,
)
from scaler.clock import utc_now
from scaler.domain.pools import Autoscale, ManualCount, Power
from scaler.domain.schedule import (
    ClusterSchedule,
    Decision,
    Schedule,
    ScheduledState,
    ScheduleTarget,
)
from scaler.domain.schedule_file import load_schedule

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
        "exceptions); default: the file's top-level timezone and holidays",
    )
    preview.set_defaults(run=_preview)


def _check(args: argparse.Namespace, out: Console) -> int:
    schedule = _read_schedule(args.file)
    err = Console(stderr=True, highlight=False)
    for warning in schedule.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if args.json:
        out.print_json(data=_check_document(source_name(args.file), schedule))
        return 0
    out.print(f"{source_name(args.file)}: valid", soft_wrap=True, markup=False)
    for cluster in schedule.clusters:
        holidays = (
            f"; holidays {', '.join(h.label for h in cluster.holidays)}" if cluster.holidays else ""
        )
        out.print(
            f"  {cluster.target.key} ({cluster.timezone}): pools {', '.join(cluster.pool_names)}; "
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
            {
                "cluster": cluster.target.key,
                "timezone": cluster.timezone,
                "pools": list(cluster.pool_names),
                "exceptions": len(cluster.exceptions),
                "holidays": [h.label for h in cluster.holidays],
            }
            for cluster in schedule.clusters
        ],
        "states": [name for name, _ in schedule.states],
        "profiles": [profile.name for profile in schedule.profiles],
        "warnings": list(schedule.warnings),
    }


def _preview(args: argparse.Namespace, out: Console) -> int:
    schedule = _read_schedule(args.file)
    at: datetime = args.at or utc_now()
    if args.cluster is not None and args.profile is None:
        raise CliError("--cluster goes with --profile", EXIT_USAGE)
    if args.profile is not None:
        cluster, pool = _profile_cluster(schedule, args.profile, args.cluster)
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
    if args.json:
        desired = schedule.desired_at(at)
        out.print_json(
            data={
                target.key: {name: request.to_json() for name, request in pools.items()}
                for target, pools in desired.items()
            }
        )
        return 0
    for cluster in schedule.clusters:
        out.print(timeline(cluster, at, args.days))
    if schedule.profiles:
        out.print(
            f"profiles (a pool tagged scaler-schedule=<name> follows one): "
            f"{', '.join(p.name for p in schedule.profiles)}; see one with --profile NAME",
            soft_wrap=True,
            markup=False,
        )
    return 0


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
