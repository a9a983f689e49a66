"""Fuzzing the intent contract: whatever arrives, `parse_intent` returns an Intent or raises
`InvalidInput` whose message names the field (or says the whole message is wrong), and invalid
input never turns into a Resource Manager call.

Profiles (tests/fuzz/conftest.py): `fast` (~200 examples per pure property; the default, and
what CI runs) and `long` (10,000 per pure property, 250 through the real stack):

    .venv/bin/python -m pytest tests/fuzz -q                                # fast
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/fuzz -q        # long

The pure properties call the domain directly (it does no I/O). The "never an ARM call" property
goes through the real path instead of a fake gateway: `function_app` → Azurite → the AKS
emulator, whose request log is the evidence.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from scaler.domain.errors import InvalidInput
from scaler.domain.intents import FIELDS, MAX_MESSAGE_BYTES, Intent, parse_intent
from tests.app_under_test import App
from tests.fuzz import strategies as s
from tests.fuzz.conftest import stack_examples

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# Field-less errors are about the message as a whole. All say "message", except the one for
# JSON that is not an object, which says what an intent must be.
WHOLE_MESSAGE_WORDING = ("message", "an intent must be a JSON object")


def parse(body: bytes | str, now: datetime = NOW) -> Intent:
    return parse_intent(body, s.DEFAULTS, now)


def assert_well_formed(error: InvalidInput) -> None:
    """Non-empty, and either `<field>: <problem>` or about the whole message."""
    text = str(error)
    assert text.strip(), "an empty error message"
    if error.field:
        assert text == f"{error.field}: {error.problem}" and error.problem.strip()
        root = error.field.split(".")[0]
        known = root in FIELDS
        assert known or error.problem.startswith(("unknown field", "appears twice")), text
    else:
        assert any(words in text for words in WHOLE_MESSAGE_WORDING), text


def parse_or_reject(body: bytes | str, now: datetime = NOW) -> Intent | InvalidInput:
    """The property itself: an Intent, or an InvalidInput with a usable message; anything else
    propagates and fails the test with hypothesis' minimal example."""
    try:
        return parse(body, now)
    except InvalidInput as error:
        assert_well_formed(error)
        return error


# -- arbitrary input ---------------------------------------------------------------------------


@given(st.binary(max_size=2048))
@example(b"")
@example(b"\xff\xfe{}")
@example(b"{" + b" " * MAX_MESSAGE_BYTES + b"}")
@example(b'{"pools": {"batch": 1}}\x00')
def test_arbitrary_bytes(body: bytes) -> None:
    parse_or_reject(body)


@given(st.binary(max_size=1024).map(base64.b64encode))
def test_arbitrary_bytes_in_base64(body: bytes) -> None:
    parse_or_reject(body)


@given(st.text(max_size=1024))
@example("   ")
@example('"just a string"')
@example("NaN")
def test_arbitrary_text(body: str) -> None:
    parse_or_reject(body)


@given(s.json_values, st.booleans(), st.booleans())
@example([], False, False)
@example({}, False, False)
@example({"pools": None}, False, False)
def test_arbitrary_json(value: Any, as_base64: bool, ensure_ascii: bool) -> None:
    body = json.dumps(value, ensure_ascii=ensure_ascii)
    parse_or_reject(base64.b64encode(body.encode()).decode() if as_base64 else body)


intent_shaped = st.dictionaries(
    st.one_of(st.sampled_from(sorted(FIELDS)), s.json_keys),
    st.one_of(
        s.json_values,
        st.dictionaries(s.pool_names, st.one_of(s.pool_requests(100), s.json_values)),
    ),
    max_size=8,
)


@given(intent_shaped)
def test_intent_shaped_json(document: dict[str, Any]) -> None:
    parse_or_reject(json.dumps(document))


# -- valid intents and their mutations ---------------------------------------------------------


@given(s.valid_intents(NOW))
def test_valid_intents_are_accepted_and_survive_a_retry_round_trip(document: dict) -> None:
    intent = parse(json.dumps(document))
    assert set(intent.pools) == set(document.get("pools", document))
    again = parse(json.dumps(intent.to_message()))
    # to_message() leaves out an empty reason, which parses back as None.
    assert again == replace(intent, reason=intent.reason or None)


@given(s.broken_intents(NOW))
def test_one_broken_field_is_rejected_naming_that_field(case: tuple[dict, str]) -> None:
    document, field = case
    with pytest.raises(InvalidInput) as caught:
        parse(json.dumps(document))
    assert_well_formed(caught.value)
    assert caught.value.field == field or caught.value.field.startswith(f"{field}."), (
        str(caught.value),
        field,
    )


@given(s.valid_intents(NOW).flatmap(lambda doc: s.damaged_text(json.dumps(doc))))
def test_damaged_serialisations(body: str) -> None:
    parse_or_reject(body)
    # Lone surrogates as bytes too (surrogatepass): not UTF-8 on the wire.
    parse_or_reject(body.encode("utf-8", "surrogatepass"))


@given(st.one_of(s.valid_intents(NOW), s.broken_intents(NOW).map(lambda case: case[0])), st.data())
def test_any_field_replaced_by_any_json(document: dict, data: st.DataObject) -> None:
    document = dict(document)
    key = data.draw(st.one_of(st.sampled_from(sorted(FIELDS)), s.json_keys))
    document[key] = data.draw(s.json_values)
    parse_or_reject(json.dumps(document))


# -- regressions: inputs that once escaped as other exceptions (found by these properties) ----


@pytest.mark.parametrize("body", ["[" * 5000, '{"pools": ' * 3000, "[" * 40000])
def test_deep_nesting_is_invalid_input(body: str) -> None:
    """json.loads raises RecursionError beyond ~1000 levels, well within 64 KiB."""
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    assert_well_formed(caught.value)


def test_a_huge_integer_is_invalid_input() -> None:
    """More than 4300 digits: int() inside json.loads raises ValueError (int_max_str_digits)."""
    with pytest.raises(InvalidInput) as caught:
        parse('{"pools": {"batch": ' + "9" * 5000 + "}}")
    assert_well_formed(caught.value)


def test_a_text_body_with_a_lone_surrogate_is_invalid_input() -> None:
    """A str body is encoded to UTF-8 first; a lone surrogate cannot be."""
    with pytest.raises(InvalidInput) as caught:
        parse('{"pools": {"batch": 1}, "reason": "\ud800"}')
    assert_well_formed(caught.value)


@pytest.mark.parametrize("body", ['{"pools": {"batch": 1}, "": 1}', '{"": 1, "": 2}'])
def test_an_empty_key_is_named_in_the_error(body: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    assert caught.value.field, "an empty key must still be named"
    assert_well_formed(caught.value)


@pytest.mark.parametrize(
    "document",
    [
        {"id": "abc\n", "pools": {"batch": 1}},
        {"cluster": "aks-demo\n", "pools": {"batch": 1}},
        {"resource_group": "rg-demo\n", "pools": {"batch": 1}},
        {"subscription_id": f"{s.SUB}\n", "pools": {"batch": 1}},
        {"pools": {"batch\n": 1}},
    ],
    ids=["id", "cluster", "resource_group", "subscription_id", "pool"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name(document: dict) -> None:
    with pytest.raises(InvalidInput):
        parse(json.dumps(document))


# -- through the real app: invalid input never reaches Resource Manager --------------------------

# The wall clock, as the app sees it: expired stays expired for the whole run.
STACK_NOW = datetime.now(UTC)


def _disallowed(document: dict) -> dict:
    document = dict(document)
    document.pop("id", None)  # a generated id each time: finished ids are deduplicated
    document["resource_group"] = "rg-" + document.get("resource_group", "other").lower() + "-x"
    return document


invalid_messages = st.one_of(
    s.broken_intents(STACK_NOW).map(lambda case: json.dumps(case[0])),
    s.broken_intents(STACK_NOW).map(
        lambda case: base64.b64encode(json.dumps(case[0]).encode()).decode()
    ),
    s.valid_intents(STACK_NOW, with_id=False).flatmap(lambda d: s.damaged_text(json.dumps(d))),
    s.json_non_objects.map(json.dumps),
    st.binary(max_size=512),
    # Valid, but for a cluster outside SCALER_ALLOWED_CLUSTERS: refused before any read.
    s.valid_intents(STACK_NOW, with_id=False)
    .filter(lambda d: "pools" in d)
    .map(_disallowed)
    .map(json.dumps),
)


def _refused_before_arm(body: str | bytes) -> bool:
    """Whether the app must refuse this without a Resource Manager call, judged conservatively
    for the stack's settings (default cluster rg-demo/aks-demo, allowlist `rg-demo/*`): the
    contract rejects it, or it names another subscription or a resource group that is not
    rg-demo under any case folding."""
    try:
        intent = parse_intent(body, s.DEFAULTS, datetime.now(UTC))
    except InvalidInput:
        return True
    return (
        intent.cluster.subscription_id.lower() != s.SUB
        or intent.cluster.resource_group.casefold() != "rg-demo"
    )


@pytest.mark.integration
@settings(
    max_examples=stack_examples(),
    deadline=None,
    # One `app` for the whole run (Azurite and the emulator are shared anyway); each example
    # clears the emulator's request log and takes its own outcome off the results queue.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=invalid_messages)
def test_invalid_messages_through_the_app_never_reach_arm(app: App, body: str | bytes) -> None:
    if isinstance(body, str):  # as a queue hands it over: bytes (lone surrogates passed through)
        body = body.encode("utf-8", "surrogatepass")
    assume(_refused_before_arm(body))
    app.emulator.clear_requests()

    app.deliver(body)

    results = app.results()
    assert len(results) == 1, results
    (outcome,) = results
    assert outcome["outcome"] == "rejected" and outcome["final"] is True
    assert outcome["error"]["code"] in ("InvalidIntent", "ClusterNotAllowed"), outcome["error"]
    assert app.arm_requests() == []


def test_stack_strategy_only_produces_refusals() -> None:
    """Guards the property above against a strategy that drifts into valid, allowed intents
    (the `assume` would then silently skip most examples)."""
    refused = []

    @settings(max_examples=100, database=None)
    @given(invalid_messages)
    def collect(body: str | bytes) -> None:
        refused.append(_refused_before_arm(body))

    collect()
    assert sum(refused) >= 0.9 * len(refused)
