"""Security guardrails, through the real path: function_app → Azurite → the AKS emulator.

What must never happen, whatever a producer puts on the queue:
- a write to a cluster outside SCALER_ALLOWED_CLUSTERS (nor even a read: the allowlist needs no
  Resource Manager call, so none may be made);
- a System pool emptied or stopped, a count above SCALER_MAX_COUNT, an expired intent applied,
  an oversized message processed (refusals that need no read make no request at all);
- the app's access token, the managed-identity secret or a storage key in a log record (any
  logger, DEBUG included) or an outcome.

The evidence is the emulator's request log, not a fake gateway.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import function_app
from local.azurite import DEV_KEY
from local.functions_host import LocalFunctionsHost, QueueSettings
from scaler import bootstrap
from scaler.domain.intents import MAX_MESSAGE_BYTES
from scaler.settings import (
    INTENTS_QUEUE,
    POISON_QUEUE,
    RECONCILE_QUEUE,
    RESULTS_QUEUE,
    Settings,
)
from tests.app_under_test import App

pytestmark = pytest.mark.integration

OTHER_SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"


def arm_writes(app: App) -> list[dict[str, Any]]:
    return [r for r in app.arm_requests() if r["method"] != "GET"]


def rejected_without_arm(app: App, body: str | bytes) -> dict[str, Any]:
    """Deliver; expect one final `rejected` outcome and not a single Resource Manager request."""
    app.deliver(body)
    app.settle()
    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True, outcome
    assert app.arm_requests() == []
    return outcome


def refused_after_one_read(app: App, body: str) -> dict[str, Any]:
    """Deliver; expect `rejected` after exactly one read of the pools and no write."""
    app.deliver(body)
    app.settle()
    outcome = app.only_result()
    assert outcome["outcome"] == "rejected" and outcome["final"] is True, outcome
    assert arm_writes(app) == []
    assert len(app.lists()) == 1
    return outcome


def intent(pools: dict[str, Any], **fields: Any) -> str:
    return json.dumps({"pools": pools, **fields})


def iso(moment: datetime) -> str:
    return moment.isoformat()


# -- the allowlist -------------------------------------------------------------------------------

# The stack allows `rg-demo/*`: every cluster of rg-demo, nothing else.
OUTSIDE_RG_DEMO = [
    ("rg-prod", "aks-prod"),
    ("rg-demo2", "aks-demo"),
    ("rg-dem", "aks-demo"),
    ("rg-demo-prod", "aks-demo"),
    ("xrg-demo", "aks-demo"),
    ("rg_demo", "aks-demo"),
    ("rg.demo", "aks-demo"),
    ("RG-PROD", "AKS-DEMO"),
    ("rg-d\u0435mo", "aks-demo"),  # Cyrillic e: looks like rg-demo, is not
    ("rg-demo\u200b", "aks-demo"),  # zero-width space
    ("(rg-demo)", "aks-demo"),
    ("rg-demo\n", "aks-demo"),  # a trailing newline is not part of a name
]


@pytest.mark.parametrize(("rg", "cluster"), OUTSIDE_RG_DEMO)
def test_clusters_outside_the_allowlist_are_refused_without_any_arm_request(
    app: App, rg: str, cluster: str
) -> None:
    outcome = rejected_without_arm(app, intent({"batch": 3}, resource_group=rg, cluster=cluster))
    # A name the contract refuses outright is InvalidIntent; a valid one outside the list is
    # ClusterNotAllowed. Either way: nothing reached Resource Manager.
    assert outcome["error"]["code"] in ("ClusterNotAllowed", "InvalidIntent"), outcome["error"]


@pytest.mark.parametrize(
    ("allowlist", "rg", "cluster"),
    [
        # `*` only ever matches a whole segment; inside a name it is a plain character.
        ("rg-demo*/aks-demo", "rg-demo", "aks-demo"),
        ("rg-demo*/aks-demo", "rg-demo-evil", "aks-demo"),
        ("rg-*/aks-demo", "rg-demo", "aks-demo"),
        ("rg-demo/aks-*", "rg-demo", "aks-demo"),
        ("rg-demo/*-demo", "rg-demo", "aks-demo"),
        ("*/aks-second", "rg-demo", "aks-demo"),
        ("rg-demo/aks-second", "rg-demo", "aks-demo"),
        ("rg-demo/aks-demo", "rg-demo", "aks-second"),
        ("RG-DEMO/AKS-DEMO", "rg-demo", "aks-second"),
        ("rg-other/*,*/aks-other", "rg-demo", "aks-demo"),
    ],
)
def test_wildcard_tricks_in_the_allowlist_match_nothing_extra(
    app: App, settings_override: Callable[..., None], allowlist: str, rg: str, cluster: str
) -> None:
    settings_override(SCALER_ALLOWED_CLUSTERS=allowlist)
    outcome = rejected_without_arm(app, intent({"batch": 3}, resource_group=rg, cluster=cluster))
    assert outcome["error"]["code"] == "ClusterNotAllowed"
    assert outcome["error"]["field"] == "cluster"


@pytest.mark.parametrize(
    ("rg", "cluster", "subscription"),
    [
        ("rg-demo", "aks-second", None),
        ("rg-prod", "aks-demo", None),
        ("rg-demo", "aks-demo", OTHER_SUBSCRIPTION),  # the default cluster's names, elsewhere
    ],
)
def test_without_an_allowlist_only_the_default_cluster_is_allowed(
    app: App,
    settings_override: Callable[..., None],
    rg: str,
    cluster: str,
    subscription: str | None,
) -> None:
    settings_override(SCALER_ALLOWED_CLUSTERS="")
    fields: dict[str, Any] = {"resource_group": rg, "cluster": cluster}
    if subscription:
        fields["subscription_id"] = subscription
    outcome = rejected_without_arm(app, intent({"batch": 3}, **fields))
    assert outcome["error"]["code"] == "ClusterNotAllowed"


def test_the_allowlist_is_case_insensitive_like_arm_and_still_lets_the_right_cluster_in(
    app: App, settings_override: Callable[..., None]
) -> None:
    """The control case: the refusals above are not the app refusing everything."""
    settings_override(SCALER_ALLOWED_CLUSTERS="rg-demo/aks-demo")
    app.deliver(intent({"batch": 3}, resource_group="RG-Demo", cluster="AKS-DEMO"))
    app.settle()
    assert app.only_result()["outcome"] == "applied"
    assert len(arm_writes(app)) == 1 and app.pool("batch")["count"] == 3


def test_another_subscription_is_not_allowed_by_an_entry_for_the_default_one(app: App) -> None:
    """`rg-demo/*` means rg-demo in the app's own subscription, not in any subscription the
    identity might reach."""
    outcome = rejected_without_arm(app, intent({"batch": 3}, subscription_id=OTHER_SUBSCRIPTION))
    assert outcome["error"]["code"] == "ClusterNotAllowed"


def test_unicode_case_folding_does_not_widen_the_allowlist(
    app: App, settings_override: Callable[..., None]
) -> None:
    """str.lower() folds the KELVIN SIGN (U+212A) to "k"; Resource Manager (ordinal, ignoring
    case) does not, so "rg-\u212a8s" is another resource group and must not pass rg-k8s/*."""
    settings_override(SCALER_ALLOWED_CLUSTERS="rg-k8s/*")
    outcome = rejected_without_arm(app, intent({"batch": 3}, resource_group="rg-\u212a8s"))
    assert outcome["error"]["code"] == "ClusterNotAllowed"


@pytest.mark.parametrize(
    "fields",
    [
        {"cluster": "aks-demo\n"},
        {"resource_group": "rg-demo\n"},
        {"subscription_id": "00000000-0000-0000-0000-000000000000\n"},
        {"id": "corr\n"},
    ],
    ids=["cluster", "resource_group", "subscription_id", "id"],
)
def test_a_trailing_newline_in_a_name_is_rejected_before_any_request(
    app: App, fields: dict[str, str]
) -> None:
    """`^...$` with re.match accepts "aks-demo\\n" (inside rg-demo/*): names must be fullmatched,
    or the name reaches Resource Manager and breaks the state table's keys."""
    outcome = rejected_without_arm(app, intent({"batch": 3}, **fields))
    assert outcome["error"]["code"] == "InvalidIntent"


# -- System pools ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"system": 0}', "SystemPoolMinimum"),  # the seed project's shorthand
        (intent({"system": 0}), "SystemPoolMinimum"),
        (intent({"system": {"count": 0}}), "SystemPoolMinimum"),
        (intent({"system": {"min": 0, "max": 3}}), "SystemPoolMinimum"),
        (intent({"system": {"power": "Stopped"}}), "SystemPoolStop"),
        (intent({"batch": 4, "system": 0}), "SystemPoolMinimum"),
        (intent({"system": {"power": "Stopped"}}, dry_run=False), "SystemPoolStop"),
        (intent({"system": 0}, cluster="aks-second"), "SystemPoolMinimum"),
        (intent({"system": {"power": "Stopped"}}, cluster="aks-second"), "SystemPoolStop"),
    ],
)
def test_system_pools_are_never_emptied_or_stopped(app: App, body: str, code: str) -> None:
    outcome = refused_after_one_read(app, body)
    by_pool = {p["pool"]: p for p in outcome["pools"]}
    assert by_pool["system"]["outcome"] == "refused"
    assert by_pool["system"]["error"]["code"] == code
    assert all(p["outcome"] in ("refused", "not_attempted") for p in outcome["pools"])
    assert app.pool("system")["count"] == 3


@pytest.mark.parametrize("mode", ["system", "SYSTEM", "System"])
@pytest.mark.parametrize(
    ("request_", "code"),
    [(0, "SystemPoolMinimum"), ({"power": "Stopped"}, "SystemPoolStop")],
)
def test_the_system_mode_is_recognised_however_arm_spells_it(
    app: App, mode: str, request_: Any, code: str
) -> None:
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", mode=mode)
    outcome = refused_after_one_read(app, intent({"batch": request_}))
    assert outcome["pools"][0]["error"]["code"] == code


def test_an_autoscaled_system_pool_keeps_a_minimum_of_one(app: App) -> None:
    app.emulator.force_pool(
        "rg-demo", "aks-demo", "system", enableAutoScaling=True, minCount=1, maxCount=5
    )
    outcome = refused_after_one_read(app, intent({"system": {"min": 0, "max": 5}}))
    assert outcome["pools"][0]["error"]["code"] == "SystemPoolMinimum"


# -- SCALER_MAX_COUNT --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_count", "pools"),
    [
        (None, {"batch": 101}),
        (None, {"batch": {"count": 101}}),
        (None, {"batch": {"min": 1, "max": 101}}),
        (None, {"batch": {"min": 101, "max": 101}}),
        (None, {"batch": 1001}),
        (None, {"batch": 10**18}),
        (None, {"batch": 2, "web": {"min": 2, "max": 500}}),
        ("5", {"batch": 6}),
        ("5", {"batch": {"count": 6}}),
        ("5", {"web": {"min": 0, "max": 6}}),
        ("5", {"batch": 100}),
    ],
)
def test_counts_above_the_maximum_are_refused_before_any_request(
    app: App, settings_override: Callable[..., None], max_count: str | None, pools: dict
) -> None:
    if max_count:
        settings_override(SCALER_MAX_COUNT=max_count)
    limit = max_count or "100"
    outcome = rejected_without_arm(app, intent(pools))
    assert outcome["error"]["code"] == "InvalidIntent"
    assert f"above the limit of {limit} (SCALER_MAX_COUNT)" in outcome["error"]["message"]
    assert outcome["error"]["field"].startswith("pools.")


def test_the_seed_shorthand_obeys_the_maximum_too(
    app: App, settings_override: Callable[..., None]
) -> None:
    settings_override(SCALER_MAX_COUNT="5")
    outcome = rejected_without_arm(app, '{"batch": 6}')
    assert outcome["error"]["field"] == "pools.batch"


# -- expiry ------------------------------------------------------------------------------------


def _expired_cases() -> list[tuple[str, dict[str, Any]]]:
    now = datetime.now(UTC)
    five_east = timezone(timedelta(hours=5))
    return [
        ("past-Z", {"expires_at": iso(now - timedelta(seconds=1)).replace("+00:00", "Z")}),
        ("long-ago", {"expires_at": "2001-01-01T00:00:00+00:00"}),
        # The wall clock says "in 30 minutes", the offset says it was 4.5 hours ago.
        (
            "offset-trick",
            {"expires_at": (now + timedelta(minutes=30)).replace(tzinfo=five_east).isoformat()},
        ),
        (
            "no-time-zone",
            {"expires_at": (now + timedelta(hours=1)).replace(tzinfo=None).isoformat()},
        ),
        ("on-a-retry", {"expires_at": "2001-01-01T00:00:00Z", "_retry": {"attempt": 3}}),
        (
            "expires-before-issued",
            {
                # Within SCALER_MAX_CLOCK_SKEW, so expires_at is the field refused.
                "issued_at": iso(now + timedelta(minutes=4)),
                "expires_at": iso(now + timedelta(minutes=3)),
            },
        ),
    ]


@pytest.mark.parametrize(
    "fields", [case for _, case in _expired_cases()], ids=[name for name, _ in _expired_cases()]
)
def test_expired_intents_are_refused_before_any_request(app: App, fields: dict) -> None:
    outcome = rejected_without_arm(app, intent({"batch": 5}, **fields))
    assert outcome["error"]["code"] == "InvalidIntent"
    assert outcome["error"]["field"] == "expires_at"


# -- oversized and malformed messages ----------------------------------------------------------


def padded(document: dict[str, Any], size: int) -> str:
    text = json.dumps(document)
    return text + " " * (size - len(text.encode()))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "body",
    [
        padded({"pools": {"batch": 3}}, MAX_MESSAGE_BYTES + 1),
        padded({"pools": {"batch": 3}}, 1024 * 1024),
        b64(padded({"pools": {"batch": 3}}, MAX_MESSAGE_BYTES + 1)),
        # Decoded it would fit; as it arrives (base64) it is a message no queue can hold.
        b64(padded({"pools": {"batch": 3}}, 50_000)),
        b"\xff" * (MAX_MESSAGE_BYTES + 1),
        json.dumps({"pools": {f"p{i}": 1 for i in range(10_000)}}),
    ],
    ids=[
        "plain-64KiB+1",
        "plain-1MiB",
        "base64-of-64KiB+1",
        "base64-over-64KiB",
        "binary",
        "pools",
    ],
)
def test_oversized_messages_are_refused_before_any_request(app: App, body: str | bytes) -> None:
    assert len(body) > MAX_MESSAGE_BYTES
    outcome = rejected_without_arm(app, body)
    assert outcome["error"]["code"] == "InvalidIntent"
    assert f"at most {MAX_MESSAGE_BYTES}" in outcome["error"]["message"]


def test_a_message_of_exactly_64_kib_is_still_processed(app: App) -> None:
    """The control case for the limit: it is the queue's, not an arbitrary smaller one."""
    app.deliver(padded({"pools": {"batch": 3}}, MAX_MESSAGE_BYTES))
    app.settle()
    assert app.only_result()["outcome"] == "applied"


# Within 64 KiB, and each once made the function raise instead of answering (the host then
# retries and parks the message in scale-intents-poison with no outcome at all): the error
# echoed the value and JSON escaping grew the outcome past a queue message, or the JSON parser
# raised RecursionError / ValueError.
UNANSWERABLE = {
    "non-ascii-cluster": json.dumps(
        {"pools": {"batch": 1}, "cluster": "\u00e9" * 30_000}, ensure_ascii=False
    ),
    "backslash-cluster": json.dumps({"pools": {"batch": 1}, "cluster": "\\" * 30_000}),
    "non-ascii-unknown-field": json.dumps(
        {"pools": {"batch": 1}, "\u00fc" * 30_000: 1}, ensure_ascii=False
    ),
    "non-ascii-pool-name": json.dumps({"pools": {"\u00e9" * 30_000: 1}}, ensure_ascii=False),
    "quote-heavy-reason": json.dumps({"pools": {"batch": 1}, "reason": '"' * 30_000}),
    "deep-nesting": "[" * 50_000,
    "huge-integer": '{"pools": {"batch": ' + "9" * 5000 + "}}",
}


@pytest.mark.parametrize("body", list(UNANSWERABLE.values()), ids=list(UNANSWERABLE))
def test_every_message_within_64_kib_gets_exactly_one_rejected_outcome(app: App, body: str) -> None:
    assert len(body.encode()) <= MAX_MESSAGE_BYTES
    outcome = rejected_without_arm(app, body)
    assert outcome["error"]["code"] == "InvalidIntent"


# -- no secrets anywhere -----------------------------------------------------------------------

SWEEP_FAULTS: list[dict[str, Any]] = [
    {"kind": "token_500", "times": 2},
    {"kind": "429", "method": "PUT", "times": 2, "retry_after": 1},
    {"kind": "500", "method": "GET", "times": 1},
    {"kind": "reset", "method": "PUT", "times": 1},
    {"kind": "409", "method": "PUT", "times": 1},
    {"kind": "412", "method": "PUT", "times": 1},
]
SWEEP_RANDOM = {"rate": 0.2, "seed": 11, "kinds": ["429", "500", "409", "reset"], "retry_after": 1}


def sweep_messages() -> list[str]:
    return [
        intent({"batch": 5}, id="sweep-applied", reason="a reason"),
        intent({"web": {"min": 2, "max": 10}}, id="sweep-unchanged"),
        intent({"spot": 3}, id="sweep-dry-run", dry_run=True),
        intent({"web": {"min": 1, "max": 6}, "gpu": {"power": "Running"}}, id="sweep-multi"),
        intent({"spot": {"power": "Stopped"}}, id="sweep-stop"),
        intent({"batch": 2}, id="sweep-second", cluster="aks-second"),
        intent({"batch": 1}, id="sweep-missing", cluster="aks-missing"),
        intent({"system": 0}, id="sweep-system"),
        intent({"web": 3}, id="sweep-autoscaler"),
        intent({"batch": 1}, id="sweep-not-allowed", resource_group="rg-prod"),
        intent({"batch": -1}, id="sweep-invalid"),
        intent({"batch": 1}, id="sweep-expired", expires_at="2001-01-01T00:00:00Z"),
        b64(intent({"gpu": {"power": "Stopped"}}, id="sweep-base64")),
        "not json",
        '{"batch": 4}',
    ]


def collect_log_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter()
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(str(record.__dict__))
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
    return "\n".join(parts)


def test_no_secret_in_any_log_record_or_outcome(
    app: App, settings_override: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    settings_override(
        SCALER_RETRY_BASE_SECONDS="1", SCALER_RETRY_MAX_SECONDS="2", SCALER_MAX_ATTEMPTS="3"
    )
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "msal", "urllib3", "scaler", "local"):
        caplog.set_level(logging.DEBUG, logger=name)
    app.emulator.set_faults(SWEEP_FAULTS, random=SWEEP_RANDOM)

    messages = sweep_messages()
    results: list[str] = []
    with app.stack.queue_service() as queues:
        intents = queues.get_queue_client(INTENTS_QUEUE)
        for body in messages:
            intents.send_message(body)
        # Straight to the function, as a queue could not carry them.
        app.deliver(padded({"pools": {"batch": 3}}, MAX_MESSAGE_BYTES + 10), message_id="big")
        app.deliver(b"\xff\xfe not utf-8", message_id="binary")
        expected_finals = len(messages) + 2

        host = LocalFunctionsHost(
            function_app.app, queues, QueueSettings(visibility_timeout_seconds=1)
        )
        results_queue = queues.get_queue_client(RESULTS_QUEUE)
        deadline = time.monotonic() + 180  # a guard against a hang, not a performance check
        finals: set[str] = set()  # outcome ids of the intents' final outcomes
        while len(finals) < expected_finals and time.monotonic() < deadline:
            host.drain(INTENTS_QUEUE)
            host.drain(RECONCILE_QUEUE)
            for message in results_queue.receive_messages(max_messages=32):
                results.append(message.content)
                results_queue.delete_message(message)
                document = json.loads(message.content)
                if document["final"] and document["source"] == "queue":
                    finals.add(document["outcome_id"])
            time.sleep(0.2)
        parked = [m.content for m in queues.get_queue_client(POISON_QUEUE).receive_messages()]
    assert len(finals) == expected_finals, (sorted(f.split("@")[0] for f in finals), results)

    app.emulator.clear_faults()
    scope = Settings.from_env(app.stack.settings).arm_scope
    token = bootstrap.credential().get_token(scope).token
    secrets = {
        "access token": token,
        "IDENTITY_HEADER": app.stack.settings["IDENTITY_HEADER"],
        "storage account key": DEV_KEY,
        "connection string": app.stack.azurite.connection_string,
        "AccountKey=": "AccountKey=",
        "SharedAccessSignature": "SharedAccessSignature",
        "sig=": "sig=",
    }
    records = list(caplog.records)
    everything = "\n".join([collect_log_text(records), caplog.text, *results, *parked])
    leaked = [name for name, secret in secrets.items() if secret in everything]
    assert leaked == []

    # The sweep really was varied, and the SDKs' own loggers were captured.
    outcomes = {json.loads(r)["outcome"] for r in results}
    assert {"applied", "rejected", "deferred"} <= outcomes, outcomes
    assert any(r.name.startswith("azure") for r in records)
    assert any(r.exc_info for r in records) or any(json.loads(r)["error"] for r in results)
