"""The local console shows untrusted outcome text as inert characters, and never raises."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from local.console import OutcomeConsole, describe, printable

# What a producer controls ends up in outcomes: pool keys, ids, reasons quoted in errors.
HOSTILE = [
    "batch\napplied   intent=forged cluster=aks-prod",  # forges a second line
    "\x1b[2J\x1b[H",  # clears the screen
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # an OSC-8 hyperlink
    "[/nope]",  # raised MarkupError from the handler
    "[blink]x[/blink]",
    "[link=https://evil.example]x[/link]",
    "\u202eevil\u202c",  # right-to-left override
    "a\rb\x00c\x7fd\x9be\u2028f",
    ":smile:",
]
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes rich itself writes


def outcome(text: str, kind: str = "rejected") -> dict[str, Any]:
    return {
        "outcome": kind,
        "intent_id": text,
        "cluster": f"/subscriptions/s/resourceGroups/rg/providers/x/managedClusters/{text}",
        "pools": [
            {
                "pool": text,
                "action": "scale",
                "before": {"count": 1},
                "requested": {"count": text},
                "outcome": text,
            }
        ],
        "error": {"code": "InvalidIntent", "message": f"pools.{text}: unknown pool"},
    }


@pytest.fixture
def terminal() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with the console handler, writing to a colour terminal we can read."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="truecolor", width=10_000)
    logger = logging.getLogger(f"test-console-{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = OutcomeConsole(console)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)


@pytest.mark.parametrize("text", HOSTILE)
def test_untrusted_text_is_one_line_of_inert_characters(
    terminal: tuple[logging.Logger, io.StringIO], text: str
) -> None:
    logger, out = terminal
    logger.info("outcome", extra={"outcome": json.dumps(outcome(text))})
    written = out.getvalue()
    shown = SGR.sub("", written)
    assert shown.count("\n") == 1 and shown.endswith("\n")
    assert "\x1b" not in shown and "\r" not in shown and "\x00" not in shown
    assert "\u202e" not in shown and "\u2028" not in shown and "\x9b" not in shown
    # Markup is shown as typed, not interpreted (no blink, no link, no error).
    if text.startswith("["):
        assert text in shown
    assert "\x1b[5m" not in written and "\x1b]8;" not in written
    assert printable(text) in shown


def test_escapes_are_visible() -> None:
    assert printable("a\nb\x1b[2Jc\u202ed") == "a\\nb\\x1b[2Jc\\u202ed"
    assert printable("pools.gpu: 5 nodes → 3") == "pools.gpu: 5 nodes → 3"  # untouched
    line = describe(outcome("x\ny"))
    assert "\n" not in line and "x\\ny" in line


def test_the_style_still_comes_from_the_outcome(
    terminal: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = terminal
    logger.info("outcome", extra={"outcome": json.dumps(outcome("batch", "applied"))})
    assert out.getvalue().startswith("\x1b[32m")  # green
    assert "applied   intent=batch cluster=batch  batch: scale 1 nodes" in out.getvalue()


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        "{}",
        '{"outcome": 5, "pools": 3}',
        '{"outcome": "applied", "pools": ["x"]}',
        '{"outcome": "applied", "pools": [{"before": 7}]}',
        json.dumps({"outcome": "applied", "error": "\x1b[2J[/nope]"}),
    ],
)
def test_a_document_it_cannot_describe_still_prints_one_plain_line(
    terminal: tuple[logging.Logger, io.StringIO], document: str
) -> None:
    logger, out = terminal
    logger.info("outcome", extra={"outcome": document})  # must not raise
    shown = SGR.sub("", out.getvalue())
    assert shown.count("\n") == 1 and "\x1b" not in shown


def test_a_broken_terminal_never_raises_into_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("terminal went away")

    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError stays quiet
    logger = logging.getLogger("test-console-broken")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = OutcomeConsole(Console(file=Broken()))
    logger.addHandler(handler)
    try:
        logger.info("outcome", extra={"outcome": json.dumps(outcome("[/nope]"))})
    finally:
        logger.removeHandler(handler)


def test_records_without_an_outcome_are_ignored(
    terminal: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = terminal
    logger.info("[/nope] \x1b[2J")
    assert out.getvalue() == ""


def test_a_refused_or_deferred_pool_shows_its_reason() -> None:
    from local.console import describe

    line = describe(
        {
            "outcome": "rejected",
            "intent_id": "bad",
            "cluster": "/subscriptions/s/resourceGroups/rg/providers/x/managedClusters/aks-demo",
            "pools": [
                {
                    "pool": "system",
                    "action": "none",
                    "before": {"count": 3},
                    "requested": {"count": 0},
                    "outcome": "refused",
                    "error": {"code": "SystemPoolMinimum", "message": "'system' keeps 1 node"},
                },
                {"pool": "batch", "action": "none", "requested": 4, "outcome": "not_attempted"},
            ],
            "error": None,
        }
    )
    assert "system: none 3 nodes → {\"count\": 0} (refused: 'system' keeps 1 node)" in line
    assert "batch: none ? → 4 (not_attempted)" in line
