"""Shared by the schedule tests: schedule texts, instants, and shorthands for evaluating them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scaler.domain.schedule import Schedule, ScheduleTarget
from scaler.domain.schedule_file import load_schedule

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO_ROOT / "schedule.toml").read_text(encoding="utf-8")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DEMO = ScheduleTarget("rg-demo", "aks-demo", None)

HEAD = 'timezone = "Europe/Amsterdam"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'


def load(text: str, max_count: int = 100, now: datetime | None = None) -> Schedule:
    return load_schedule(text, "s.toml", max_count, now)


def pool(body: str, name: str = "batch") -> str:
    return f"{HEAD}[clusters.pools.{name}]\n{body}"


def windows(*items: str, outside: str = "") -> str:
    return pool((f"outside = {outside}\n" if outside else "") + f"windows = [{', '.join(items)}]\n")


def exception(body: str) -> str:
    return pool("outside = 1\n") + "[[clusters.exceptions]]\n" + body


def local(*args: int, zone: ZoneInfo = AMSTERDAM) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def desired(schedule: Schedule, instant: datetime) -> dict[str, dict[str, Any]]:
    return {
        target.key: {name: request.to_json() for name, request in pools.items()}
        for target, pools in schedule.desired_at(instant).items()
    }


def state_of(schedule: Schedule, instant: datetime, pool_name: str = "batch") -> object:
    cluster = schedule.clusters[0]
    return cluster.decide(instant, pool_name).state


EXCEPTIONS = (
    pool("outside = 1\n")
    + '[[clusters.exceptions]]\ndates = ["2026-12-24", 2026-12-31]\nfrom = "2027-01-05"\nto = "2027-01-06"\npools = ["batch"]\nstate = 7\n'
    + '[[clusters.exceptions]]\nuntil = "2027-02-01T06:30"\npools = ["batch"]\nstate = 3\n'
)


W = '{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 }'


def win(**fields: str) -> str:
    values = {"days": '"Mon-Fri"', "start": '"07:00"', "end": '"19:00"', "state": "6"} | fields
    return "{ " + ", ".join(f"{k} = {v}" for k, v in values.items() if v) + " }"


def zoned(text: str, zone: str) -> str:
    """`text` (built on HEAD) with its cluster in `zone`."""
    return text.replace('cluster = "aks"\n', f'cluster = "aks"\ntimezone = "{zone}"\n', 1)


def with_holidays(text: str, holidays: str) -> str:
    """`text` (built on HEAD) with `holidays = …` on its cluster."""
    return text.replace('cluster = "aks"\n', f'cluster = "aks"\nholidays = {holidays}\n', 1)


STATES = '[states]\noffice = { min = 3, max = 20 }\nnight = { power = "Stopped" }\n'


def with_states(text: str) -> str:
    """`text` (built on HEAD) with the `[states]` above: office (3-20) and night (stopped)."""
    return text.replace("[[clusters]]", STATES + "[[clusters]]", 1)
