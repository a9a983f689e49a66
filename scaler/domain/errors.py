"""The domain's own errors: what is wrong, and which field of the input it concerns."""

from __future__ import annotations

# Errors quote the input they refuse. Bounded, so that an outcome (which carries the error)
# always fits in a 64 KiB queue message, whatever the input was.
MAX_FIELD_CHARS = 120
MAX_PROBLEM_CHARS = 1000


class InvalidInput(ValueError):
    """Input that can never succeed, whatever the cluster's state: refused before any ARM call."""

    def __init__(self, field: str, problem: str) -> None:
        field = _clip(field, MAX_FIELD_CHARS)
        problem = _clip(problem, MAX_PROBLEM_CHARS)
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


def field_name(key: str) -> str:
    """A JSON key as it is named in an error: an empty key must still be visible."""
    return key if key else '""'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
