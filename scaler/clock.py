"""The one place the app asks what time it is (tests pass their own clock instead)."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
