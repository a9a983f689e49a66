"""Fixtures of the emulator tests: one emulator process per test module, reset around each test.

A module sets `OPERATION_SECONDS` to give the emulator's pool operations that duration
(default 0: they settle at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aks_emulator.control import EmulatorControl, EmulatorProcess
from tests.emulator.clients import Client


@pytest.fixture(scope="module")
def emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorProcess]:
    operation_seconds = getattr(request.module, "OPERATION_SECONDS", 0)
    with EmulatorProcess(operation_seconds=operation_seconds) as emu:
        yield emu


@pytest.fixture
def control(emulator: EmulatorProcess) -> Iterator[EmulatorControl]:
    emulator.control.reset()
    yield emulator.control
    emulator.control.reset()


@pytest.fixture
def client(emulator: EmulatorProcess, control: EmulatorControl) -> Client:
    """Plain HTTPS calls as CLIENT_ID, on a freshly reset emulator."""
    return Client(emulator)
