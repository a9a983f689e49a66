"""Pools their owners steer by Azure tag, read in the same ARM read as the pool itself:

    scaler=off                 the scaler never writes the pool (schedule, intents, leases)
    scaler-schedule=<profile>  the pool follows that profile of the schedule file, unless the
                               file names the pool explicitly (the file wins)

Tag names compare case-insensitively, as Azure's do; so does the value `off`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scaler.domain.pools import PoolState


@dataclass(frozen=True)
class TagRules:
    exclude_name: str = "scaler"
    exclude_value: str = "off"
    profile_name: str = "scaler-schedule"

    @classmethod
    def parse(cls, exclude: str, profile: str) -> TagRules:
        """`exclude` is `name=value` (SCALER_EXCLUDE_TAG), `profile` a tag name."""
        name, _, value = exclude.partition("=")
        return cls(name.strip(), value.strip(), profile.strip())

    @property
    def exclude_tag(self) -> str:
        return f"{self.exclude_name}={self.exclude_value}"

    def excluded(self, pool: PoolState | None) -> str | None:
        """The tag that keeps the scaler off this pool (as `name=value`), or None."""
        tag = _tag(pool, self.exclude_name)
        if tag is not None and tag[1].lower() == self.exclude_value.lower():
            return f"{tag[0]}={tag[1]}"
        return None

    def profile(self, pool: PoolState | None) -> str | None:
        tag = _tag(pool, self.profile_name)
        return tag[1].strip() or None if tag else None


def _tag(pool: PoolState | None, name: str) -> tuple[str, str] | None:
    """The pool's tag `name` (any case) as (name as written, value)."""
    if pool is None or not name:
        return None
    wanted = name.lower()
    return next(((k, v) for k, v in pool.tags.items() if k.lower() == wanted), None)


# Azure tag names may not contain these (and are at most 512 characters, values 256).
_TAG_FORBIDDEN = set("<>%&\\?/")


@dataclass(frozen=True)
class ClusterSelector:
    """Clusters picked by an Azure tag (`select = { tag = "name=value" }` in a schedule): the
    cluster's tag `name` equals `value`, both compared case-insensitively (Azure tag names are
    case-insensitive; Resource Graph's `=~` compares the value the same way). Optionally only in
    one subscription."""

    name: str
    value: str
    subscription_id: str | None = None

    @classmethod
    def parse(cls, text: str, subscription_id: str | None = None) -> ClusterSelector:
        """`name=value`; ValueError saying what is wrong otherwise."""
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise ValueError(f'{text!r} is not name=value (e.g. "scaler-schedule=office-hours")')
        name, value = name.strip(), value.strip()
        if len(name) > 512 or len(value) > 256:
            raise ValueError("an Azure tag name has at most 512 characters, a value 256")
        bad = sorted((_TAG_FORBIDDEN & set(name)) | {c for c in text if not c.isprintable()})
        if bad:
            raise ValueError(f"{text!r} has characters an Azure tag name cannot: {bad}")
        return cls(name, value, subscription_id)

    @property
    def text(self) -> str:
        return f"{self.name}={self.value}"

    def covers(self, subscription_id: str) -> bool:
        """Is the subscription one this selector looks in?"""
        return not self.subscription_id or self.subscription_id.lower() == subscription_id.lower()

    def matches(self, subscription_id: str, tags: Mapping[str, str]) -> bool:
        if not self.covers(subscription_id):
            return False
        wanted = self.name.lower()
        return any(k.lower() == wanted and v.lower() == self.value.lower() for k, v in tags.items())
