"""Hypothesis profiles for the fuzz tests (the real-stack fixtures come from tests/conftest.py).

    .venv/bin/python -m pytest tests/fuzz                              # `fast`: CI default
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz      # `long`: >= 10,000 each

`fast` runs ~200 examples per pure property; `long` runs 10,000 (and more examples through the
real stack, see `stack_examples`). Neither profile has a deadline: the machines this runs on are
shared and noisy, and a slow example is not a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
FUZZ_DIR = Path(__file__).parent

settings.register_profile(
    "fast",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get(PROFILE_ENV, "fast"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """10,000 examples outlast the suite's 300 s per-test timeout (pyproject.toml)."""
    if os.environ.get(PROFILE_ENV) == "long":
        for item in items:
            if item.path.is_relative_to(FUZZ_DIR):
                item.add_marker(pytest.mark.timeout(3600))


def stack_examples() -> int:
    """Examples for properties that go through Azurite and the emulator (~0.1 s each)."""
    return 250 if os.environ.get(PROFILE_ENV) == "long" else 25
