"""Pools their owners steer by Azure tag, read in the same ARM read as the pool itself:

    scaler=off                 the scaler never writes the pool (schedule, intents, leases)
    scaler-schedule=<profile>  the pool follows that profile of the schedule file, unless the
                               file names the pool explicitly (the file wins)

Tag names compare case-insensitively, as Azure's do; so does the value `off`.
"""

from __future__ import annotations

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
