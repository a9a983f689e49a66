"""Prints each outcome as it happens, for the person watching the local run."""

from __future__ import annotations

import json
import logging

from rich.console import Console

from scaler.cli import describe_pool

_STYLE = {
    "applied": "green",
    "unchanged": "dim",
    "dry_run": "cyan",
    "deferred": "yellow",
    "rejected": "red",
    "poisoned": "bold red",
}


def describe(outcome: dict[str, object]) -> str:
    """One line: outcome, intent id, cluster, then what happened to each pool."""
    cluster = str(outcome.get("cluster") or "").rsplit("/managedClusters/", 1)[-1] or "-"
    parts = [f"{outcome['outcome']:<9} intent={outcome['intent_id']} cluster={cluster}"]
    for pool in outcome.get("pools") or []:  # type: ignore[attr-defined]
        before = pool.get("before") or {}
        now = describe_pool(before) if before else "?"
        requested = json.dumps(pool["requested"])
        parts.append(f"{pool['pool']}: {pool['action']} {now} → {requested} ({pool['outcome']})")
    error = outcome.get("error")
    if isinstance(error, dict):
        parts.append(f"error {error['code']}: {error['message']}")
    if outcome.get("retry_in_seconds") is not None:
        parts.append(f"retry in {outcome['retry_in_seconds']}s")
    return "  ".join(parts)


class OutcomeConsole(logging.Handler):
    """Picks the outcome documents out of the `scaler` logger's records."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(logging.INFO)
        self._console = console or Console(highlight=False)

    def emit(self, record: logging.LogRecord) -> None:
        document = getattr(record, "outcome", None)
        if document is None:
            return
        outcome = json.loads(document)
        self._console.print(describe(outcome), style=_STYLE.get(str(outcome["outcome"]), ""))
