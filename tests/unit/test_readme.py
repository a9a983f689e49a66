"""README.md is tested: what it shows a reader is what the code does, so it cannot drift.

Blocks are found by their language and by what they hold (never by line number), so sections
can move and grow:

- every ```json block is an intent and must pass `parse_intent`, unless the line before it is an
  HTML comment `<!-- not-an-intent: why -->` (an outcome document, a deliberately partial one);
  every inline JSON object in backticks is an intent or a pool form (`{"count": 6}`), unless it
  holds a `<placeholder>` or an `…`;
- every ```toml block is a schedule and must pass `load_schedule`, unless it is marked
  `<!-- not-a-schedule: why -->`; the one introduced as the shipped `schedule.toml` must mean
  what the shipped file means;
- every quoted error message is produced by its input: under "Rejected at once" each table row
  pairs an intent (first cell) with its error (second cell), and an untyped code block of bare
  messages is refused; the Encodings table's inputs are described in words, so they are built
  here (ENCODED_INPUTS, keyed by the words); a code block of `schedule.toml: …` messages is
  paired with SCHEDULE_ERRORS below (a message without an entry fails);
- every ```console block is run: each `$ aks-scaler …` / `$ python -m scaler …` line whose
  output is deterministic (`validate`, `schedule check`, `schedule preview --at …`) goes
  through `scaler.cli.main` and its standard output is compared with the lines quoted under it.
  Normalised: trailing spaces (rich pads centred titles), a line that is just `…` (the rest
  of the output is left out there: the lines before must start the output, the lines after
  must end it), and, for `validate`, the time a `hold` ends (the README says it is counted from
  now). Other commands (`send`, `plan`) need a running stack and are not compared here.

The settings are the local run's (`.local/stack.env`: default cluster rg-demo/aks-demo, the
default limits), the context the README's commands are typed in.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scaler.cli import main as cli_main
from scaler.clock import utc_now
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import IntentDefaults, parse_intent
from scaler.domain.pools import parse_pool_request
from scaler.domain.schedule_file import load_schedule

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LOCAL_SETTINGS = {
    "AZURE_SUBSCRIPTION_ID": LOCAL_SUBSCRIPTION,
    "SCALER_RESOURCE_GROUP": "rg-demo",
    "SCALER_CLUSTER": "aks-demo",
    "SCALER_ALLOWED_CLUSTERS": "rg-demo/*",
}
DEFAULTS = IntentDefaults(LOCAL_SUBSCRIPTION, "rg-demo", "aks-demo", max_count=100)
MAX_COUNT = 100

# The clock of the "Rejected at once" examples; the table's header says so.
REJECTED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

NOT_AN_INTENT = "not-an-intent"
NOT_A_SCHEDULE = "not-a-schedule"


# --- reading the README ----------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MARKER = re.compile(r"^\s*<!--\s*([\w-]+)\b.*-->\s*$")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, for messages
    heading: str  # the nearest heading above it
    markers: frozenset[str]  # names of the HTML comments right above it
    intro: str  # the paragraph right above it (markers left out)

    def __str__(self) -> str:
        return f"README.md:{self.line} (```{self.language} under '{self.heading}')"


@dataclass(frozen=True)
class Readme:
    blocks: tuple[Block, ...]
    prose: tuple[tuple[int, str], ...]  # (line number, text) outside code blocks
    headings: tuple[tuple[int, int, str], ...]  # (line number, level, title)

    def span(self, title: str) -> tuple[int, int]:
        """The lines under the first heading that starts with `title`, up to the next heading
        of the same or a higher level: (first, after the last)."""
        for index, (line, level, text) in enumerate(self.headings):
            if text.startswith(title):
                end = next((n for n, lvl, _ in self.headings[index + 1 :] if lvl <= level), 1 << 30)
                return line, end
        raise AssertionError(f"README.md has no heading starting with {title!r}")

    def has(self, title: str) -> bool:
        return any(text.startswith(title) for _, _, text in self.headings)

    def section(self, title: str) -> list[tuple[int, str]]:
        first, end = self.span(title)
        return [(n, text) for n, text in self.prose if first < n < end]

    def blocks_under(self, title: str) -> list[Block]:
        first, end = self.span(title)
        return [b for b in self.blocks if first < b.line < end]


def read_readme(text: str) -> Readme:
    lines = text.splitlines()
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    headings: list[tuple[int, int, str]] = []
    heading = ""
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        fence = FENCE.match(line)
        if fence:
            closing = fence.group(1)
            end = index + 1
            while end < len(lines) and not lines[end].lstrip().startswith(closing):
                end += 1
            markers, intro = _above(lines, index)
            body = textwrap.dedent("\n".join(lines[index + 1 : end]))  # in a list item
            blocks.append(Block(fence.group(2), body, number, heading, markers, intro))
            index = end + 1
            continue
        found = HEADING.match(line)
        if found:
            heading = found.group(2)
            headings.append((number, len(found.group(1)), heading))
        prose.append((number, line))
        index += 1
    return Readme(tuple(blocks), tuple(prose), tuple(headings))


def _above(lines: list[str], fence: int) -> tuple[frozenset[str], str]:
    """The HTML comment markers right above line `fence`, and the paragraph above them."""
    markers: set[str] = set()
    index = fence - 1
    while index >= 0 and (not lines[index].strip() or MARKER.match(lines[index])):
        found = MARKER.match(lines[index])
        if found:
            markers.add(found.group(1))
        index -= 1
    paragraph: list[str] = []
    while index >= 0 and lines[index].strip() and not FENCE.match(lines[index]):
        paragraph.insert(0, lines[index])
        index -= 1
    return frozenset(markers), "\n".join(paragraph)


def table_rows(section: list[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of every Markdown table row in `section`, the header included and the
    separator row left out. Cells are split on `|` outside code spans."""
    for number, line in section:
        if not line.lstrip().startswith("|"):
            continue
        cells, cell, in_code = [], "", False
        for char in line.strip()[1:]:
            if char == "`":
                in_code = not in_code
            if char == "|" and not in_code:
                cells.append(cell.strip())
                cell = ""
            else:
                cell += char
        if not all(re.fullmatch(r":?-+:?", c) for c in cells):
            yield number, cells


def code(cell: str) -> str | None:
    """The text of a cell that is one code span, else None."""
    found = re.fullmatch(r"`([^`]+)`", cell)
    return found.group(1) if found else None


README_TEXT = README.read_text(encoding="utf-8")
DOC = read_readme(README_TEXT)


def blocks(language: str) -> list[Block]:
    return [b for b in DOC.blocks if b.language == language]


def rejected_examples() -> list[tuple[int, str, str]]:
    if not DOC.has("Rejected at once"):
        return []  # test_rejected_at_once_pairs_each_message_with_an_input says so
    rows = list(table_rows(DOC.section("Rejected at once")))
    return [
        (number, code(cells[0]) or "", code(cells[1]) or "")
        for number, cells in rows
        if len(cells) == 2 and code(cells[0]) and code(cells[1])
    ]


# --- intents ---------------------------------------------------------------------------------


def parse(text: str | bytes, now: datetime | None = None) -> object:
    return parse_intent(text, DEFAULTS, now or utc_now())


def test_the_readme_has_intents_schedules_and_outputs_to_check() -> None:
    """A restructure that renames the languages must not turn these tests into no-ops."""
    assert [b for b in blocks("json") if NOT_AN_INTENT not in b.markers]
    assert [b for b in blocks("toml") if NOT_A_SCHEDULE not in b.markers]
    assert [c for b in blocks("console") for c in commands(b)]


@pytest.mark.parametrize("block", blocks("json"), ids=str)
def test_every_json_block_is_an_intent_or_says_it_is_not(block: Block) -> None:
    if NOT_AN_INTENT in block.markers:
        pytest.skip(f"{block} is marked {NOT_AN_INTENT}")
    try:
        parse(block.text)
    except InvalidInput as error:
        pytest.fail(
            f"{block} is not a valid intent today: {error}. Fix it (use relative times, e.g. "
            f'"hold": "PT3H", not a date), or mark it <!-- {NOT_AN_INTENT}: why --> '
            "on the line before the fence."
        )


def inline_json_objects() -> list[tuple[int, str]]:
    """Inline JSON objects, but for the inputs of "Rejected at once" (meant to be refused)."""
    refused = {number for number, _, _ in rejected_examples()}
    found = []
    for number, line in DOC.prose:
        if number in refused:
            continue
        for span in CODE_SPAN.findall(line):
            if not span.startswith("{") or "<" in span or "…" in span:
                continue
            try:
                value = json.loads(span)
            except ValueError:
                continue  # `{"attempt": N}`, `{"min", "max"}`: a shape in words, not JSON
            if isinstance(value, dict):
                found.append((number, span))
    return found


@pytest.mark.parametrize(("line", "span"), inline_json_objects(), ids=lambda v: str(v))
def test_every_inline_json_object_is_an_intent_or_a_pool_form(line: int, span: str) -> None:
    try:
        parse(span)
        return
    except InvalidInput as as_intent:
        problem = str(as_intent)
    try:
        parse_pool_request(json.loads(span), "pool", MAX_COUNT)
    except InvalidInput as as_pool:
        pytest.fail(
            f"README.md:{line}: {span} is neither an intent ({problem}) nor a pool form ({as_pool})"
        )


def test_the_example_intent_file_is_valid() -> None:
    """`examples/intent.json` is what the README's commands send."""
    assert "examples/intent.json" in README_TEXT
    parse((REPO_ROOT / "examples" / "intent.json").read_bytes())


# --- "Rejected at once": every message next to its input ----------------------------------------


def test_rejected_at_once_pairs_each_message_with_an_input() -> None:
    section = DOC.blocks_under("Rejected at once")
    bare = [b for b in section if b.language in ("", "text")]
    assert not bare, (
        f"{bare[0]}: quoted messages without their inputs; put each in the table "
        "(| `<intent>` | `<error>` |) so this test can produce it"
    )
    assert len(rejected_examples()) >= 3, "the 'Rejected at once' table of examples is gone"
    header = next(cells for _, cells in table_rows(DOC.section("Rejected at once")))
    assert REJECTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ") in " ".join(header), (
        "the table's header must say the clock the examples are judged at",
        header,
    )


@pytest.mark.parametrize(
    ("line", "intent", "message"), rejected_examples(), ids=lambda v: str(v)[:40]
)
def test_a_rejected_example_gets_exactly_its_quoted_error(
    line: int, intent: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(intent, REJECTED_AT)
    assert str(caught.value) == message, f"README.md:{line}"


# The Encodings table describes its inputs in words; these build them.
PLAIN = '{"pools": {"batch": 3}, "reason": "?>?>~~"}'  # its base64 has + and /
ENCODED_INPUTS: dict[str, Callable[[], bytes]] = {
    "UTF-16": lambda: PLAIN.encode("utf-16"),
    "base64url": lambda: base64.urlsafe_b64encode(PLAIN.encode()),
    "both alphabets": lambda: base64.b64encode(PLAIN.encode()).replace(b"+", b"-", 1),
    "encoded twice": lambda: base64.b64encode(base64.b64encode(PLAIN.encode())),
    "anything else": lambda: b'{"pools": {"batch": 3}',
}


def encoding_examples() -> list[tuple[int, str, str]]:
    if not DOC.has("Encodings"):
        return []  # test_the_encodings_table_has_examples says so
    return [
        (number, cells[0], code(cells[1]) or "")
        for number, cells in table_rows(DOC.section("Encodings"))
        if len(cells) == 2 and code(cells[1])
    ]


def test_the_encodings_table_has_examples() -> None:
    assert DOC.section("Encodings") and encoding_examples()


@pytest.mark.parametrize(("line", "what", "message"), encoding_examples(), ids=lambda v: str(v))
def test_an_encoding_error_is_what_the_table_quotes(line: int, what: str, message: str) -> None:
    assert what in ENCODED_INPUTS, (
        f"README.md:{line}: no input for {what!r}; add one to ENCODED_INPUTS in this test"
    )
    assert parse(PLAIN), "the plain document itself is valid"
    with pytest.raises(InvalidInput) as caught:
        parse(ENCODED_INPUTS[what]())
    assert matches(message, str(caught.value)), (f"README.md:{line}", message, str(caught.value))


def matches(quoted: str, real: str) -> bool:
    """`…` in a quoted message stands for any text (the part that depends on the input)."""
    pattern = ".*".join(re.escape(part) for part in quoted.split("…"))
    return re.fullmatch(pattern, real, flags=re.DOTALL) is not None


# --- schedules -------------------------------------------------------------------------------


def load(text: str, source: str = "README.md") -> object:
    return load_schedule(text, source, MAX_COUNT)


@pytest.mark.parametrize("block", blocks("toml"), ids=str)
def test_every_toml_block_is_a_schedule_or_says_it_is_not(block: Block) -> None:
    if NOT_A_SCHEDULE in block.markers:
        pytest.skip(f"{block} is marked {NOT_A_SCHEDULE}")
    try:
        load(block.text)
    except InvalidInput as error:
        pytest.fail(
            f"{block} does not load: {error}. Fix it, or mark a deliberately partial "
            f"example <!-- {NOT_A_SCHEDULE}: why --> on the line before the fence."
        )


def test_the_quoted_shipped_schedule_means_what_schedule_toml_means() -> None:
    shipped = [b for b in blocks("toml") if "shipped `schedule.toml`" in b.intro]
    assert shipped, "no ```toml block introduced as the shipped `schedule.toml`"
    on_disk = (REPO_ROOT / "schedule.toml").read_text(encoding="utf-8")
    assert load(shipped[0].text, "schedule.toml") == load(on_disk, "schedule.toml"), (
        f"{shipped[0]} and schedule.toml disagree"
    )


SHIPPED = (REPO_ROOT / "schedule.toml").read_text(encoding="utf-8")


def _shipped_with(old: str, new: str) -> str:
    assert old in SHIPPED, f"schedule.toml no longer has {old!r}: update SCHEDULE_ERRORS"
    return SHIPPED.replace(old, new, 1)


# Each quoted schedule error and the document that produces it. The messages name the file
# `schedule.toml`, so each input is the shipped file with one mistake in it.
SCHEDULE_ERRORS: dict[str, Callable[[], str]] = {
    "schedule.toml: not valid TOML: Expected ']]' at the end of an array declaration "
    "(at line 2, column 11)": lambda: 'timezone = "UTC"\n[[clusters]\n',
    "schedule.toml: clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 18:00–19:00)": (
        lambda: _shipped_with(
            '{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 },',
            '{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 },\n'
            '  { days = "Mon", start = "18:00", end = "20:00", state = 8 },',
        )
    ),
    "schedule.toml: clusters[0].pools.web.windows[0].state: min (5) is greater than max (2)": (
        lambda: _shipped_with("state = { min = 3, max = 20 }", "state = { min = 5, max = 2 }")
    ),
    "schedule.toml: timezone: 'Europe/Amsterdm' is not an IANA time zone "
    '(e.g. "Europe/Amsterdam", "UTC")': (
        lambda: _shipped_with('timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amsterdm"')
    ),
}


def schedule_error_lines() -> list[tuple[int, str]]:
    """The lines of every untyped block that consists of `<file>.toml: …` messages."""
    found = []
    for block in DOC.blocks:
        lines = [line for line in block.text.splitlines() if line.strip()]
        if (
            block.language in ("", "text")
            and lines
            and all(re.match(r"[\w./-]+\.toml: ", line) for line in lines)
        ):
            found.extend((block.line + 1 + i, line) for i, line in enumerate(lines))
    return found


def test_the_schedule_validation_errors_are_quoted() -> None:
    assert schedule_error_lines(), "the block of schedule errors under 'Validation' is gone"


@pytest.mark.parametrize(("line", "message"), schedule_error_lines(), ids=lambda v: str(v)[:50])
def test_a_quoted_schedule_error_is_produced_by_its_input(line: int, message: str) -> None:
    assert message in SCHEDULE_ERRORS, (
        f"README.md:{line}: no input for {message!r}; add it to SCHEDULE_ERRORS in this test"
    )
    with pytest.raises(InvalidInput) as caught:
        load_schedule(SCHEDULE_ERRORS[message](), "schedule.toml", MAX_COUNT)
    assert str(caught.value) == message


# --- command output --------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    block: Block
    line: int
    argv: list[str]  # after `aks-scaler` / `python -m scaler`
    output: list[str]

    def __str__(self) -> str:
        return f"README.md:{self.line} {' '.join(self.argv)}"

    @property
    def deterministic(self) -> bool:
        if self.argv[:1] == ["validate"] or self.argv[:2] == ["schedule", "check"]:
            return True
        return self.argv[:2] == ["schedule", "preview"] and any(
            a == "--at" or a.startswith("--at=") for a in self.argv
        )


def commands(block: Block) -> list[Command]:
    """`$ <command>` lines of a console block, each with the lines under it."""
    found: list[Command] = []
    current: tuple[int, list[str]] | None = None
    outputs: list[list[str]] = []
    for offset, line in enumerate(block.text.splitlines()):
        if line.startswith("$ "):
            current = (block.line + 1 + offset, shlex.split(line[2:]))
            outputs.append([])
            found.append(Command(block, current[0], _cli_argv(current[1]), outputs[-1]))
        elif outputs:
            outputs[-1].append(line)
    for output in outputs:
        while output and not output[-1].strip():
            output.pop()
    return [c for c in found if c.argv]


def _cli_argv(words: list[str]) -> list[str]:
    """The arguments after `aks-scaler`, or after `python -m scaler` (any python); [] when the
    command is not the CLI's."""
    if words and Path(words[0]).name == "aks-scaler":
        return words[1:]
    if len(words) > 2 and "python" in Path(words[0]).name and words[1:3] == ["-m", "scaler"]:
        return words[3:]
    return []


def console_commands() -> list[Command]:
    return [c for b in blocks("console") for c in commands(b) if c.deterministic]


@pytest.fixture
def cli_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's context: the repository root, the local run's settings, no terminal."""
    import os

    for name in list(os.environ):
        if name.startswith(("SCALER_", "AZURE_", "AzureWebJobs")) or name in (
            "COLUMNS",
            "LINES",
            "FORCE_COLOR",
            "TTY_COMPATIBLE",
            "TTY_INTERACTIVE",
        ):
            monkeypatch.delenv(name)
    for name, value in LOCAL_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO_ROOT)


# What the README documents as differing between runs, per command.
HOLD_END = re.compile(r"(holds the pools until |\"hold_until\": \")[0-9T:.+-]+")


def normalised(command: Command, lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    if command.argv[:1] == ["validate"]:
        lines = [HOLD_END.sub(r"\1<counted from now>", line) for line in lines]
    return lines


ELISION = re.compile(r"^[\s│┃|]*…[\s│┃|]*$")


@pytest.mark.parametrize("command", console_commands(), ids=str)
def test_a_quoted_command_output_is_the_real_output(
    command: Command, cli_context: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(command.argv)
    captured = capsys.readouterr()
    assert code == 0, (str(command), captured.err)
    real = normalised(command, captured.out.splitlines())
    quoted = normalised(command, command.output)
    cut = next((i for i, line in enumerate(quoted) if ELISION.match(line)), None)
    if cut is None:
        assert quoted == real, f"{command}: the README quotes something else than it prints"
        return
    head, tail = quoted[:cut], quoted[cut + 1 :]
    assert real[: len(head)] == head, f"{command}: the quoted output's start differs"
    assert not tail or real[-len(tail) :] == tail, f"{command}: the quoted output's end differs"
    assert len(real) >= len(head) + len(tail)
