"""What every command reads and how it fails: FILE or `-`, settings, and the exit codes.

Commands raise `CliError` (message and exit code); `scaler.cli.main` prints it to standard
error as `error: <message>` and exits with the code. Anything an input is rejected for
(unreadable, not UTF-8, invalid, a bad setting) is exit 1; storage or Azure out of reach is 3;
argparse's usage errors are 2. `send --wait` adds 4 rejected, 5 poisoned, 6 timed out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scaler.domain.errors import InvalidInput
from scaler.settings import Settings, SettingsError

EXIT_INVALID = 1
EXIT_USAGE = 2  # argparse's own code for usage errors
EXIT_UNREACHABLE = 3
# send --wait (scaler/cli/wait.py): the intent's final outcome was not a success, or never came.
EXIT_REJECTED = 4
EXIT_POISONED = 5
EXIT_TIMED_OUT = 6

STDIN = "-"


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Input:
    """A file's bytes and the name messages call it by (its path, or `<stdin>`)."""

    name: str
    body: bytes

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CliError(
                f"{self.name}: not UTF-8 text (bad byte at {error.start})", EXIT_INVALID
            ) from None


def read_input(path: str) -> Input:
    """The contents of `path`, or of standard input when it is `-`."""
    try:
        body = sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", EXIT_INVALID) from None
    return Input(source_name(path), body)


def source_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


@contextmanager
def rejected(prefix: str = "") -> Iterator[None]:
    """Turn an input the domain refuses (`InvalidInput`) into exit 1, its message after
    `prefix` (the input's name, when the domain's message does not already say it)."""
    try:
        yield
    except InvalidInput as error:
        raise CliError(f"{prefix}{error}", EXIT_INVALID) from None


def load_settings() -> Settings:
    """The app's settings from the environment, so the CLI judges input as the app will."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise CliError(str(error), EXIT_INVALID) from None
