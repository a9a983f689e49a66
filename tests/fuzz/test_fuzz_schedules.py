"""Fuzzing the schedule file: whatever an operator writes, `load_schedule` returns a Schedule or
raises `InvalidInput` whose message starts with the file's name and names the field (or says the
TOML itself is broken, with its line). Nothing else escapes, and whatever loads can be evaluated.

Profiles (tests/fuzz/conftest.py): `fast` (~200 examples per property, what CI runs) and `long`
(10,000 per property):

    .venv/bin/python -m pytest tests/fuzz/test_fuzz_schedules.py -q
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz -q

Inputs: valid schedules (which must load), valid schedules with one thing broken (whose error
must name that field), valid schedules with fields replaced, dropped or added at random, their
TOML text damaged (truncated, spliced, lines dropped, duplicated or swapped, headers inserted),
the shipped `schedule.toml` damaged the same way, and arbitrary text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from scaler.domain.errors import InvalidInput
from scaler.domain.schedule import Schedule
from scaler.domain.schedule_file import ROOT_FIELDS, load_schedule
from tests.fuzz import schedule_strategies as s

SOURCE = "fuzz.toml"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROBES = [
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # spring forward in Europe
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # the repeated hour
    datetime(2026, 12, 24, 12, 0, tzinfo=UTC),
    datetime(2027, 6, 1, 0, 0, tzinfo=UTC),
]
SHIPPED = (Path(__file__).resolve().parents[2] / "schedule.toml").read_text(encoding="utf-8")
PATH_ROOT = re.compile(r"[^.\[]*")


def assert_names_the_field(error: InvalidInput) -> None:
    """`<file>: <field>: <problem>`, the field's root a schedule field (or the problem says it
    is unknown), or `<file>: not valid TOML: …` for a syntax error."""
    text = str(error)
    assert text.startswith(f"{SOURCE}: "), text
    assert error.problem.strip(), text
    if error.field == SOURCE:
        assert error.problem.startswith("not valid TOML: "), text
        return
    assert error.field.startswith(f"{SOURCE}: "), text
    path = error.field.removeprefix(f"{SOURCE}: ")
    root = PATH_ROOT.match(path).group(0)  # type: ignore[union-attr]
    assert path and (root in ROOT_FIELDS or "unknown field" in error.problem), text


def load_or_refuse(text: str) -> Schedule | InvalidInput:
    """The property: a Schedule that can be evaluated, or an InvalidInput naming the field;
    anything else propagates and fails with hypothesis' minimal example."""
    try:
        schedule = load_schedule(text, SOURCE, 100, now=NOW)
    except InvalidInput as error:
        assert_names_the_field(error)
        return error
    for instant in PROBES:
        schedule.desired_at(instant)
        for cluster in schedule.clusters:
            for pool in cluster.pool_names:
                assert schedule.explain_at(instant, cluster.target, pool)
                after = schedule.next_transition(cluster.target, pool, instant)
                assert after is None or after > instant
    return schedule


@given(s.valid_schedules())
def test_valid_schedules_load(document: dict) -> None:
    loaded = load_or_refuse(s.to_toml(document))
    assert isinstance(loaded, Schedule), (str(loaded), s.to_toml(document))
    assert len(loaded.clusters) == len(document["clusters"])


@given(s.broken_schedules())
def test_one_broken_field_is_refused_naming_that_field(case: tuple[dict, str]) -> None:
    document, field = case
    text = s.to_toml(document)
    with pytest.raises(InvalidInput) as caught:
        load_schedule(text, SOURCE, 100, now=NOW)
    assert_names_the_field(caught.value)
    named = caught.value.field.removeprefix(f"{SOURCE}: ")
    assert named == field or named.startswith((f"{field}.", f"{field}[")), (
        str(caught.value),
        field,
        text,
    )


@given(s.mutated_schedules())
def test_fields_replaced_dropped_or_added(document: dict) -> None:
    load_or_refuse(s.to_toml(document))


@given(s.valid_schedules().flatmap(lambda doc: s.damaged_toml(s.to_toml(doc))))
def test_damaged_schedule_text(text: str) -> None:
    load_or_refuse(text)


@given(s.damaged_toml(SHIPPED))
@example(SHIPPED)
def test_the_shipped_schedule_damaged(text: str) -> None:
    load_or_refuse(text)


@given(st.text(max_size=300))
@example("")
@example("clusters = []")
@example("[[clusters]]")
@example("clusters = 1\n[[clusters]]")
def test_arbitrary_text(text: str) -> None:
    load_or_refuse(text)


# -- regressions: found by these properties --------------------------------------------------


def test_an_empty_top_level_key_is_named() -> None:
    text = s.to_toml({"timezone": "UTC", "clusters": [{"cluster": "a", "pools": {}}], "": 1})
    with pytest.raises(InvalidInput) as caught:
        load_schedule(text, SOURCE, 100)
    assert_names_the_field(caught.value)
