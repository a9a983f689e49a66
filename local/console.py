"""Prints each outcome, and each CloudEvent the local Event Grid topic receives, as it happens,
for the person watching the local run.

Everything in an outcome may come from a producer (pool names, ids, reasons, error texts quoting
the input), so nothing in it reaches the terminal as it is: control characters (a newline that
forges a line, ESC sequences that clear the screen or make a link) are shown as escapes, and the
line is a rich `Text`, never markup, so `[blink]` or `[/nope]` are just characters. The handler
runs inside the function's logging call: whatever goes wrong, it prints a plain line instead and
never raises into the function.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from scaler.cli import console as unwrapped_console
from scaler.cli.intents import describe_pool

_STYLE = {
    "applied": "green",
    "unchanged": "dim",
    "dry_run": "cyan",
    "deferred": "yellow",
    "rejected": "red",
    "poisoned": "bold red",
    "superseded": "dim",
}
# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate (Cs), line and paragraph
# separators (Zl, Zp): characters that move the cursor, hide text or break the line.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# An outcome shown when it cannot be described is cut to this many characters.
_FALLBACK_CHARS = 2000


def printable(text: str) -> str:
    """`text` with every character that could act on a terminal written as an escape (\\n,
    \\x1b, \\u202e), so it shows as one line of visible characters."""
    return "".join(
        _escaped(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")  # "\\n", "\\x1b", "\\u202e", "\\ud800"


def describe(outcome: dict[str, Any]) -> str:
    """One line: outcome, intent id, cluster, then what happened to each pool. Safe to print:
    every character that could act on a terminal is escaped."""
    cluster = str(outcome.get("cluster") or "").rsplit("/managedClusters/", 1)[-1] or "-"
    parts = [f"{outcome.get('outcome')!s:<9} intent={outcome.get('intent_id')} cluster={cluster}"]
    for pool in outcome.get("pools") or []:
        before = pool.get("before") or {}
        now = describe_pool(before) if before else "?"
        requested = json.dumps(pool.get("requested"))
        result = str(pool.get("outcome"))
        problem = pool.get("error")
        if isinstance(problem, dict) and problem.get("message"):
            result += f": {problem.get('message')}"  # why it was refused, deferred, superseded
        parts.append(f"{pool.get('pool')}: {pool.get('action')} {now} → {requested} ({result})")
    error = outcome.get("error")
    if isinstance(error, dict):
        parts.append(f"error {error.get('code')}: {error.get('message')}")
    if outcome.get("retry_in_seconds") is not None:
        parts.append(f"retry in {outcome['retry_in_seconds']}s")
    return printable("  ".join(parts))


class OutcomeConsole(logging.Handler):
    """Picks the outcome documents out of the `scaler` logger's records."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(logging.INFO)
        # Off a terminal (a pipe, a file) a line stays whole, however long.
        self._console = console or unwrapped_console()

    def emit(self, record: logging.LogRecord) -> None:
        document = getattr(record, "outcome", None)
        if document is None:
            return
        try:
            try:
                outcome = json.loads(document)
                line = Text(describe(outcome), style=_STYLE.get(str(outcome.get("outcome")), ""))
            except Exception as error:  # a document this console does not understand
                line = Text(
                    f"outcome ({type(error).__name__} describing it): "
                    + printable(str(document)[:_FALLBACK_CHARS])
                )
            self._console.print(line, markup=False, emoji=False, highlight=False)
        except Exception:  # the terminal itself failed: logging's own last resort, no raise
            self.handleError(record)


def describe_event(entry: dict[str, Any]) -> str:
    """One line for a CloudEvent: its type, the cluster (and pool), then what it says. Every
    field comes from the app, which copies producers' text: escaped like an outcome."""
    event = entry.get("event") if isinstance(entry.get("event"), dict) else entry
    assert isinstance(event, dict)
    kind = str(event.get("type") or "?").removeprefix("scaler.")
    subject = str(event.get("subject") or "")
    where = subject.rsplit("/managedClusters/", 1)[-1].replace("/agentPools/", "/") or "-"
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    parts = [f"event {kind:<21} {where}"]
    if kind == "pool.changed":
        before = data.get("before") or {}
        after = data.get("after") or {}
        was = describe_pool(before) if before else "?"
        now = describe_pool(after) if after else "?"
        by = data.get("by") if isinstance(data.get("by"), dict) else {}
        parts.append(f"{was} → {now} (by {by.get('source')} {by.get('intent_id')})")
    elif kind == "pool.change-upcoming":
        snooze = data.get("snooze") if isinstance(data.get("snooze"), dict) else {}
        parts.append(
            f"{data.get('change')} at {data.get('at')} (in {data.get('in_minutes')} min); "
            f"snooze: {json.dumps(snooze.get('intent'))}"
        )
    else:
        parts.append(f"intent={data.get('intent_id')}")
        error = data.get("error")
        if isinstance(error, dict):
            parts.append(f"error {error.get('code')}: {error.get('message')}")
    return printable("  ".join(parts))


class EventPrinter:
    """Polls the local topic for new events (`fetch(after_seq)`) and prints one line each, from a
    daemon thread; a failing poll is retried quietly, nothing is raised."""

    def __init__(
        self,
        fetch: Callable[[int], list[dict[str, Any]]],
        console: Console | None = None,
        interval: float = 0.5,
    ) -> None:
        self._fetch = fetch
        self._console = console or unwrapped_console()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-printer", daemon=True)
        self._seen = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def poll(self) -> None:
        """Print what arrived since the last poll."""
        for entry in self._fetch(self._seen):
            self._seen = max(self._seen, int(entry.get("seq") or 0))
            try:
                line = Text(describe_event(entry), style="magenta")
            except Exception as error:  # an event this console does not understand
                line = Text(
                    f"event ({type(error).__name__} describing it): "
                    + printable(json.dumps(entry)[:_FALLBACK_CHARS])
                )
            self._console.print(line, markup=False, emoji=False, highlight=False)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # the emulator is stopping, or a hiccup: try again next time
                continue
