"""Agent pools: what a pool is now (`PoolState`) and what it is asked to be (`PoolRequest`).

The request forms are shared by queue intents and schedules, so both parse them here and both
accept exactly the same JSON:

    5                        manual, 5 nodes (short form)
    {"count": 5}             manual, 5 nodes
    {"min": 1, "max": 5}     autoscaler on with those bounds
    {"power": "Stopped"}     stop the pool (or "Running" to start it)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeGuard

from scaler.domain.errors import InvalidInput

# AKS allows up to 1,000 nodes per VMSS pool; SCALER_MAX_COUNT caps requests lower.
AKS_MAX_NODES_PER_POOL = 1000
# Linux pool names: lowercase letters and digits, starting with a letter, at most 12 characters.
POOL_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")

PowerCode: TypeAlias = Literal["Running", "Stopped"]


@dataclass(frozen=True)
class ManualCount:
    count: int

    def to_json(self) -> dict[str, object]:
        return {"count": self.count}


@dataclass(frozen=True)
class Autoscale:
    min_count: int
    max_count: int

    def to_json(self) -> dict[str, object]:
        return {"min": self.min_count, "max": self.max_count}


@dataclass(frozen=True)
class Power:
    code: PowerCode

    def to_json(self) -> dict[str, object]:
        return {"power": self.code}


PoolRequest: TypeAlias = ManualCount | Autoscale | Power


@dataclass(frozen=True)
class PoolState:
    """A pool as Resource Manager reports it. `handle` is the adapter's own copy of the resource,
    carried along so a write can send the current body back; the domain never looks inside."""

    name: str
    mode: str
    count: int
    autoscale: bool
    min_count: int | None
    max_count: int | None
    power: str
    provisioning_state: str
    etag: str | None
    spot: bool = False
    vm_size: str = ""  # e.g. "Standard_D8ds_v5" ("" when unknown): prices a node (savings)
    # The pool's Azure tags, read in the same ARM read (owners steer the scaler with them).
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)
    handle: object = field(default=None, compare=False, repr=False)

    @property
    def is_system(self) -> bool:
        return self.mode.lower() == "system"

    @property
    def is_stopped(self) -> bool:
        return self.power.lower() == "stopped"

    @property
    def is_busy(self) -> bool:
        return self.provisioning_state.lower() != "succeeded"

    def summary(self) -> dict[str, object]:
        return {
            "count": self.count,
            "autoscale": self.autoscale,
            "min": self.min_count,
            "max": self.max_count,
            "power": self.power,
            "mode": self.mode,
            "provisioning_state": self.provisioning_state,
        }


def parse_pool_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
        raise InvalidInput(
            where,
            f"{name!r} is not an AKS pool name (lowercase letters and digits, starting with a "
            "letter, at most 12 characters)",
        )
    return name


def parse_pool_request(value: object, where: str, max_count: int) -> PoolRequest:
    """One pool's desired state from JSON; `where` names the field in every error."""
    if is_whole_number(value):
        return ManualCount(_count(value, where, max_count))
    if not isinstance(value, Mapping):
        raise InvalidInput(
            where,
            "expected a node count or an object with count, min and max, or power; "
            f"got {json_type(value)}",
        )
    keys = set(value)
    if keys == {"count"}:
        return ManualCount(_count(value["count"], f"{where}.count", max_count))
    if keys == {"power"}:
        code = value["power"]
        if code not in ("Running", "Stopped"):
            raise InvalidInput(f"{where}.power", f'must be "Running" or "Stopped", not {code!r}')
        return Power(code)
    if keys and keys <= {"min", "max"}:
        for bound in ("min", "max"):
            if bound not in keys:
                raise InvalidInput(f"{where}.{bound}", "is required with the autoscaler form")
        low = _count(value["min"], f"{where}.min", max_count)
        high = _count(value["max"], f"{where}.max", max_count)
        if low > high:
            raise InvalidInput(where, f"min ({low}) is greater than max ({high})")
        return Autoscale(low, high)
    unknown = sorted(keys - {"count", "min", "max", "power"})
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", "is not a pool field (count, min, max, power)")
    raise InvalidInput(where, "use exactly one form: {count}, {min, max} or {power}")


def _count(value: object, where: str, max_count: int) -> int:
    if not is_whole_number(value):
        raise InvalidInput(where, f"must be a whole number, got {json_type(value)}")
    if value < 0:
        raise InvalidInput(where, f"must not be negative, got {value}")
    if value > max_count:
        raise InvalidInput(where, f"{value} is above the limit of {max_count} (SCALER_MAX_COUNT)")
    return value


def is_whole_number(value: object) -> TypeGuard[int]:
    # JSON true/false arrive as bool, which Python counts as int: never a node count.
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: object) -> str:
    """How a JSON value is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    return "an object"
