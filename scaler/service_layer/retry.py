"""How long to wait before trying again after a transient failure."""

from __future__ import annotations

from dataclasses import dataclass

from scaler.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: int
    max_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)

    def delay(self, attempt: int, retry_after: int | None) -> int:
        """Exponential backoff per attempt, never sooner than Resource Manager's Retry-After."""
        backoff = min(self.base_seconds << min(max(attempt, 1) - 1, 20), self.max_seconds)
        return max(backoff, retry_after or 0)
