"""The intent contract: what is accepted, and the exact error for what is not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from scaler.domain.clusters import ClusterRef
from scaler.domain.errors import InvalidInput
from scaler.domain.intents import IntentDefaults, parse_intent
from scaler.domain.pools import Autoscale, ManualCount, Power

SUB = "00000000-0000-0000-0000-000000000000"
DEFAULTS = IntentDefaults(SUB, "rg-demo", "aks-demo", max_count=100)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def parse(body: str | bytes):
    return parse_intent(body, DEFAULTS, NOW)


def test_full_intent_is_parsed_with_every_field() -> None:
    intent = parse(
        json.dumps(
            {
                "id": "ci-run-42",
                "subscription_id": "11111111-2222-3333-4444-555555555555",
                "resource_group": "rg-prod",
                "cluster": "aks-prod",
                "pools": {
                    "batch": 6,
                    "gpu": {"count": 0},
                    "web": {"min": 3, "max": 20},
                    "spot": {"power": "Stopped"},
                },
                "issued_at": "2026-11-23T11:59:00Z",
                "expires_at": "2026-11-23T14:00:00+01:00",
                "dry_run": True,
                "reason": "nightly batch",
            }
        )
    )
    assert intent.id == "ci-run-42"
    assert intent.cluster == ClusterRef(
        "11111111-2222-3333-4444-555555555555", "rg-prod", "aks-prod"
    )
    assert dict(intent.pools) == {
        "batch": ManualCount(6),
        "gpu": ManualCount(0),
        "web": Autoscale(3, 20),
        "spot": Power("Stopped"),
    }
    assert intent.issued_at == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)
    assert intent.dry_run is True and intent.reason == "nightly batch"


def test_defaults_fill_the_cluster_and_the_id_is_left_to_the_message() -> None:
    intent = parse('{"pools": {"batch": 3}}')
    assert intent.cluster == ClusterRef(SUB, "rg-demo", "aks-demo")
    assert intent.id == ""  # the intake keys it by the queue message id


def test_seed_project_shorthand_targets_the_default_cluster() -> None:
    intent = parse('{"manualpool2": 5, "manualpool3": 5}')
    assert intent.cluster.name == "aks-demo"
    assert dict(intent.pools) == {"manualpool2": ManualCount(5), "manualpool3": ManualCount(5)}


def test_base64_and_plain_text_give_the_same_intent() -> None:
    text = '{"id": "same", "pools": {"batch": {"count": 4}}}'
    encoded = base64.b64encode(text.encode()).decode()
    assert parse(text) == parse(encoded) == parse(text.encode())


def test_round_trip_through_the_queue_form_keeps_the_intent() -> None:
    intent = parse(
        '{"id": "x1", "pools": {"web": {"min": 1, "max": 5}}, "reason": "r",'
        ' "expires_at": "2030-01-01T00:00:00Z", "_retry": {"attempt": 3}}'
    )
    assert parse(json.dumps(intent.to_message())) == intent


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "message is not JSON (Expecting value at position 0)"),
        ("", "message is not JSON (Expecting value at position 0)"),
        (
            b"\xff\xfe{}",
            "message is not UTF-8 text (bad byte at 0; it starts with a UTF-16 byte-order mark)",
        ),
        ("[1, 2]", "an intent must be a JSON object, not a list"),
        ("true", "an intent must be a JSON object, not a boolean"),
        ('{"pools": {"batch": NaN}}', "message is not JSON (NaN is not a JSON value)"),
        ('{"pools": {"batch": 1}, "pools": {"web": 2}}', "pools: appears twice in the same object"),
        ("{}", 'pools: is required (or send the short form {"<pool>": <count>, ...})'),
        (
            '{"cluster": "aks-demo"}',
            'pools: is required (or send the short form {"<pool>": <count>, ...})',
        ),
        ('{"batch": "5"}', 'pools: is required (or send the short form {"<pool>": <count>, ...})'),
        ('{"pools": {}}', "pools: must be a non-empty object of pool name → desired state"),
        ('{"pools": [1]}', "pools: must be a non-empty object of pool name → desired state"),
        (
            '{"pools": {"batch": 1}, "clustr": "x"}',
            "clustr: unknown field (allowed: cluster, dry_run, expires_at, hold, hold_until, id, "
            "issued_at, lease, pools, reason, release, resource_group, subscription_id)",
        ),
        ('{"pools": {"batch": -1}}', "pools.batch: must not be negative, got -1"),
        ('{"pools": {"batch": {"count": -2}}}', "pools.batch.count: must not be negative, got -2"),
        (
            '{"pools": {"batch": 101}}',
            "pools.batch: 101 is above the limit of 100 (SCALER_MAX_COUNT)",
        ),
        (
            '{"pools": {"web": {"min": 1, "max": 500}}}',
            "pools.web.max: 500 is above the limit of 100 (SCALER_MAX_COUNT)",
        ),
        ('{"pools": {"web": {"min": 5, "max": 2}}}', "pools.web: min (5) is greater than max (2)"),
        ('{"pools": {"web": {"min": 1}}}', "pools.web.max: is required with the autoscaler form"),
        ('{"pools": {"web": {"max": 1}}}', "pools.web.min: is required with the autoscaler form"),
        (
            '{"pools": {"batch": "5"}}',
            "pools.batch: expected a node count or an object with count, min and max, or power; "
            "got the string '5'",
        ),
        (
            '{"pools": {"batch": true}}',
            "pools.batch: expected a node count or an object with count, min and max, or power; "
            "got a boolean",
        ),
        (
            '{"pools": {"batch": 2.5}}',
            "pools.batch: expected a node count or an object with count, min and max, or power; "
            "got the number 2.5",
        ),
        (
            '{"pools": {"batch": {"count": "3"}}}',
            "pools.batch.count: must be a whole number, got the string '3'",
        ),
        (
            '{"pools": {"batch": {"count": 1, "power": "Stopped"}}}',
            "pools.batch: use exactly one form: {count}, {min, max} or {power}",
        ),
        (
            '{"pools": {"batch": {"size": 1}}}',
            "pools.batch.size: is not a pool field (count, min, max, power)",
        ),
        (
            '{"pools": {"batch": {}}}',
            "pools.batch: use exactly one form: {count}, {min, max} or {power}",
        ),
        (
            '{"pools": {"batch": {"power": "Off"}}}',
            'pools.batch.power: must be "Running" or "Stopped", not \'Off\'',
        ),
        (
            '{"pools": {"Batch-1": 1}}',
            "pools.Batch-1: 'Batch-1' is not an AKS pool name (lowercase letters and digits, "
            "starting with a letter, at most 12 characters)",
        ),
        ('{"pools": {"batch": 1}, "cluster": 7}', "cluster: must be a string, got the number 7"),
        ('{"pools": {"batch": 1}, "cluster": "-bad-"}', "cluster: '-bad-' is not a valid cluster"),
        (
            '{"pools": {"batch": 1}, "resource_group": "rg/x"}',
            "resource_group: 'rg/x' is not a valid resource group",
        ),
        (
            '{"pools": {"batch": 1}, "subscription_id": "abc"}',
            "subscription_id: 'abc' is not a valid subscription id",
        ),
        ('{"pools": {"batch": 1}, "id": "has space"}', "id: 'has space' is not a valid id"),
        ('{"pools": {"batch": 1}, "dry_run": "yes"}', "dry_run: must be true or false"),
        (
            '{"pools": {"batch": 1}, "reason": 5}',
            "reason: must be a string of at most 1000 characters",
        ),
        (
            '{"pools": {"batch": 1}, "expires_at": "2026-11-23T11:00:00Z"}',
            "expires_at: the intent expired at 2026-11-23T11:00:00+00:00 (now 2026-11-23T12:00:00+00:00)",
        ),
        (
            '{"pools": {"batch": 1}, "expires_at": "tomorrow"}',
            "expires_at: 'tomorrow' is not an ISO-8601 timestamp",
        ),
        (
            '{"pools": {"batch": 1}, "expires_at": "2027-01-01T00:00:00"}',
            "expires_at: '2027-01-01T00:00:00' has no time zone; add Z or an offset like +01:00",
        ),
        (
            '{"pools": {"batch": 1}, "issued_at": "2026-11-23T12:03:00Z", "expires_at": "2026-11-23T12:02:00Z"}',
            "expires_at: must be later than issued_at",
        ),
        (
            '{"pools": {"batch": 1}, "issued_at": "2026-11-23T12:30:00Z"}',
            "issued_at: 2026-11-23T12:30:00+00:00 is in the future (now 2026-11-23T12:00:00+00:00;"
            " at most 5 minutes ahead, SCALER_MAX_CLOCK_SKEW): check the producer's clock",
        ),
        (
            '{"pools": {"batch": 1}, "issued_at": 5}',
            "issued_at: must be an ISO-8601 timestamp string",
        ),
        (
            '{"pools": {"batch": 1}, "_retry": {"attempt": 0}}',
            "_retry.attempt: must be a whole number from 1 to 8 (SCALER_MAX_ATTEMPTS)",
        ),
        (
            '{"pools": {"batch": 1}, "_retry": {"attempt": 8, "x": 1}}',
            '_retry: is reserved; the only form is {"attempt": N}',
        ),
        (
            '{"id": "l", "pools": {"batch": {"min": 1, "max": 2}}, "lease": "PT1H"}',
            "pools.batch: a lease asks for a node count (e.g. 4): counts of concurrent leases add up",
        ),
        (
            '{"pools": {"batch": 2}, "lease": "PT1H"}',
            "id: a lease needs an id: it is the lease id, to renew or release it",
        ),
        (
            '{"id": "l", "pools": {"batch": 2}, "lease": "P2D"}',
            "lease: P2D is longer than P1D (SCALER_MAX_LEASE)",
        ),
        (
            '{"id": "l", "pools": {"batch": 2}, "lease": "PT1H", "hold": "PT1H"}',
            "lease: give lease or hold, not both",
        ),
        (
            '{"release": "l", "pools": {"batch": 2}}',
            "release: a release names only the lease; drop 'pools'",
        ),
    ],
)
def test_bad_intents_are_rejected_with_a_specific_error(body: str | bytes, error: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(body)
    assert str(raised.value) == error


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[" * 5000 + "]" * 5000, "message is not an intent (JSON nested too deeply)"),
        (
            '{"pools": {"batch": 1' + "0" * 5000 + "}}",
            "message is not an intent (Exceeds the limit (4300 digits) for integer string conversion: value has 5001 digits; use sys.set_int_max_str_digits() to increase the limit)",
        ),
        ('{"pools": {"batch": 1}, "\ud800": 1}', None),
        (
            '{"pools": {"batch": 1}, "": 1}',
            '"": unknown field (allowed: cluster, dry_run, expires_at, hold, hold_until, id, issued_at, lease, pools, reason, release, resource_group, subscription_id)',
        ),
    ],
    ids=["deep-nesting", "huge-integer", "escaped-surrogate-key", "empty-key"],
)
def test_hostile_json_is_rejected_not_raised(body: str, error: str | None) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(body)
    if error is not None:
        assert str(raised.value) == error


def test_a_lone_surrogate_in_a_text_body_is_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"message is not UTF-8 text \(bad character at 1\)"):
        parse('{\ud800"pools": {"batch": 1}}')


def test_errors_quoting_huge_input_stay_small() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse('{"pools": {"batch": 1}, "' + "k" * 60_000 + '": 1}')
    assert len(str(raised.value)) < 1200 and raised.value.field.endswith("…")


def test_an_oversized_message_is_rejected_before_parsing() -> None:
    body = '{"pools": {"batch": 1}, "reason": "' + "x" * 70_000 + '"}'
    with pytest.raises(
        InvalidInput, match=r"message is \d+ bytes; a queue message holds at most 65536"
    ):
        parse(body)


def test_the_count_limit_comes_from_the_defaults() -> None:
    small = IntentDefaults(SUB, "rg-demo", "aks-demo", max_count=5)
    with pytest.raises(InvalidInput, match="6 is above the limit of 5"):
        parse_intent('{"pools": {"batch": 6}}', small, NOW)


def test_no_default_cluster_means_the_intent_must_name_one() -> None:
    empty = IntentDefaults("", "", "", max_count=100)
    with pytest.raises(InvalidInput) as raised:
        parse_intent('{"pools": {"batch": 1}}', empty, NOW)
    assert str(raised.value) == (
        "subscription_id: is required: the intent names none and no default is configured"
    )


def test_hold_and_lease_are_counted_from_acceptance() -> None:
    issued = parse('{"pools": {"batch": 10}, "hold": "PT3H", "issued_at": "2026-11-23T11:30:00Z"}')
    assert issued.hold_until == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    lease = parse('{"id": "l", "pools": {"batch": 2}, "lease": "PT2H"}')
    assert lease.lease_until == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    release = parse('{"release": "l"}')
    assert release.release == "l" and dict(release.pools) == {}
    fresh = parse('{"pools": {"batch": 10}, "hold": "P1DT12H"}')
    assert fresh.hold_until == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    until = parse('{"pools": {"batch": 10}, "hold_until": "2026-11-23T18:00:00+01:00"}')
    assert until.hold_until == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert parse(json.dumps(until.to_message())).hold_until == until.hold_until
