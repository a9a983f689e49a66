"""The domain's own errors: what is wrong, and which field of the input it concerns."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input that can never succeed, whatever the cluster's state: refused before any ARM call."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem
