"""Outcomes as structured telemetry (issue 11, item 5): one record per outcome and one per pool,
on `scaler.telemetry`, with exactly the documented dimensions; bounded text; nothing raises on
odd documents; Azure Monitor is configured only with a connection string."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from scaler import telemetry
from scaler.domain.outcomes import Outcome, Overall, PoolOutcome, PoolResult, Problem
from scaler.domain.planner import Action
from scaler.domain.pools import PoolState
from scaler.service_layer.messages import log_outcome

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-Demo/providers/"
    "Microsoft.ContainerService/managedClusters/aks-demo"
)
STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "f", 1, "m", None, None))) | {
    "message",
    "asctime",
}


def state(name: str, count: int, power: str = "Running") -> PoolState:
    return PoolState(name, "User", count, False, None, None, power, "Succeeded", "etag")


def document() -> dict[str, Any]:
    """An applied timer outcome: one pool scaled down, one stopped, one refused."""
    return Outcome(
        "schedule-20261123T120000Z-rg-demo-aks-demo",
        Overall.REJECTED,
        AT,
        "timer",
        cluster_id=CLUSTER,
        pools=(
            PoolOutcome(
                "batch",
                {"count": 2},
                Action.SCALE,
                PoolResult.STARTED,
                before=state("batch", 6),
                after=state("batch", 2),
            ),
            PoolOutcome(
                "gpu",
                {"power": "Stopped"},
                Action.STOP,
                PoolResult.STARTED,
                before=state("gpu", 3),
                after=state("gpu", 3, power="Stopped"),
            ),
            PoolOutcome(
                "system",
                {"count": 0},
                Action.SCALE,
                PoolResult.REFUSED,
                before=state("system", 1),
                problem=Problem("SystemPoolMinimum", "a System pool keeps at least one node"),
            ),
        ),
        reason="office hours",
    ).to_json()


@pytest.fixture
def captured() -> Iterator[list[logging.LogRecord]]:
    """What a handler on `scaler.telemetry` (Azure Monitor's, in Azure) receives."""
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(telemetry.LOGGER_NAME)
    handler, level = Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def own_handlers(name: str) -> list[logging.Handler]:
    """A logger's handlers, without those pytest adds (to non-propagating loggers too)."""
    found = logging.getLogger(name).handlers
    return [h for h in found if not type(h).__module__.startswith("_pytest")]


def dimensions(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in STANDARD}


def test_one_record_per_outcome_and_per_pool_with_exactly_the_dimensions(
    captured: list[logging.LogRecord],
) -> None:
    telemetry.emit_outcome(document())
    assert [r.name for r in captured] == [telemetry.LOGGER_NAME] * 4
    assert all(r.levelno == logging.INFO for r in captured)
    outcome, batch, gpu, system = (dimensions(r) for r in captured)
    common = {
        "cluster": CLUSTER.lower(),
        "source": "timer",
        "outcome": "rejected",
        "intent_id": "schedule-20261123T120000Z-rg-demo-aks-demo",
        "throttled": 0,
    }
    assert outcome == {
        **common,
        "record": "outcome",
        "pool": "",
        "result": "rejected",
        "action": "",
        "problem_code": "",
        "detail": "office hours",
    }
    assert batch == {
        **common,
        "record": "pool",
        "pool": "batch",
        "result": "started",
        "action": "scale",
        "problem_code": "",
        "detail": "",
        "nodes_before": 6,
        "nodes_after": 2,
    }
    assert gpu["nodes_before"] == 3 and gpu["nodes_after"] == 0  # stopped: no nodes
    assert gpu["action"] == "stop"
    # No state after the write: no node counts at all (not a made-up 0).
    assert system == {
        **common,
        "record": "pool",
        "pool": "system",
        "result": "refused",
        "action": "scale",
        "problem_code": "SystemPoolMinimum",
        "detail": "a System pool keeps at least one node",
    }
    assert set(outcome) == set(telemetry.DIMENSIONS)
    assert set(batch) == set(telemetry.DIMENSIONS) | set(telemetry.NODE_DIMENSIONS)
    assert captured[1].getMessage() == (
        "pool batch: scale started (rejected, timer schedule-20261123T120000Z-rg-demo-aks-demo)"
    )


def test_dimension_values_are_strings_or_integers_as_the_exporter_needs() -> None:
    for _, found in telemetry.outcome_records(document()):
        for name, value in found.items():
            assert isinstance(value, str | int) and not isinstance(value, bool), name
            if name in (telemetry.THROTTLED, *telemetry.NODE_DIMENSIONS):
                assert isinstance(value, int)


def test_the_document_error_and_throttled_count_reach_the_outcome_record() -> None:
    found = telemetry.outcome_records(
        {
            "intent_id": "schedule-20261123T120000Z",
            "outcome": "rejected",
            "source": "timer",
            "cluster": None,
            "error": {"code": "InvalidSchedule", "message": "schedule.toml: line 3: bad"},
            "reason": "not this one",
            "throttled": 4,
            "pools": [],
        }
    )
    ((_, outcome),) = found
    assert outcome["problem_code"] == "InvalidSchedule"
    assert outcome["detail"] == "schedule.toml: line 3: bad"
    assert outcome["cluster"] == ""
    assert outcome["throttled"] == 4


def test_untrusted_text_is_bounded_and_has_no_control_characters() -> None:
    long = "x\n\r\t\x00\u2028" * 10_000
    found = telemetry.outcome_records(
        {
            "intent_id": long,
            "outcome": long,
            "source": long,
            "cluster": long,
            "reason": long,
            "pools": [{"pool": long, "outcome": long, "action": long, "error": {"code": long}}],
        }
    )
    limits = {
        "intent_id": telemetry.ID_CHARS,
        "cluster": telemetry.ID_CHARS,
        "detail": telemetry.DETAIL_CHARS,
    }
    for message, dims in found:
        assert len(message) < 2 * telemetry.ID_CHARS + 4 * telemetry.NAME_CHARS
        for name, value in dims.items():
            if isinstance(value, str):
                assert len(value) <= limits.get(name, telemetry.NAME_CHARS), name
                assert not any(c in value for c in "\n\r\t\x00\u2028"), name


def test_pool_records_are_capped() -> None:
    pools = [{"pool": f"p{i}", "outcome": "unchanged"} for i in range(500)]
    found = telemetry.outcome_records({"outcome": "unchanged", "pools": pools})
    assert len(found) == 1 + telemetry.MAX_POOL_RECORDS


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"pools": "not a list"},
        {"pools": [None, 3, "x", [], {"before": "x", "after": {"count": "3"}}]},
        {"error": "a string", "throttled": "7", "outcome": 12, "cluster": ["a"]},
        {"throttled": True, "pools": [{"throttled": -5, "before": {"count": True}}]},
        {"pools": [{"before": {"count": 3}, "after": None}]},
    ],
)
def test_odd_documents_never_raise(odd: dict[str, Any], captured: list[logging.LogRecord]) -> None:
    telemetry.emit_outcome(odd)
    for record in captured:
        dims = dimensions(record)
        assert set(telemetry.DIMENSIONS) <= set(dims)
        assert dims["throttled"] == 0
        assert "nodes_before" not in dims


def test_a_failure_while_building_records_is_swallowed(
    captured: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(document: object) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(telemetry, "outcome_records", broken)
    telemetry.emit_outcome(document())  # no exception
    assert captured == []


def test_without_a_handler_nothing_is_built_and_nothing_reaches_the_scaler_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger(telemetry.LOGGER_NAME)
    assert logger.propagate is False
    assert own_handlers(telemetry.LOGGER_NAME) == []
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    logging.getLogger("scaler").addHandler(capture)
    try:
        telemetry.emit_outcome(document())  # pytest's own handlers are on the logger here
        assert [r.name for r in seen] == []  # the local console (on `scaler`) never sees them
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(telemetry, "outcome_records", lambda d: pytest.fail("built"))
        telemetry.emit_outcome(document())
    finally:
        logging.getLogger("scaler").removeHandler(capture)


def test_log_outcome_keeps_its_line_and_adds_the_telemetry(
    captured: list[logging.LogRecord], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scaler")
    log_outcome(document())
    lines = [r for r in caplog.records if r.name == "scaler"]
    assert len(lines) == 1 and lines[0].outcome.startswith("{")  # type: ignore[attr-defined]
    assert [dimensions(r)["record"] for r in captured] == ["outcome", "pool", "pool", "pool"]


# --------------------------------------------------------------------------------------------
# Configuring Azure Monitor


class FakeOtelHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


FakeOtelHandler.__module__ = "opentelemetry.instrumentation.logging.handler"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(telemetry, "_configured", False)
    loggers = [logging.getLogger(n) for n in ("", "scaler", telemetry.LOGGER_NAME)]
    before = {id(lg): list(lg.handlers) for lg in loggers}
    level = logging.getLogger(telemetry.LOGGER_NAME).level
    yield
    for lg in loggers:
        lg.handlers[:] = before[id(lg)]
    logging.getLogger(telemetry.LOGGER_NAME).setLevel(level)


def fake_distro(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def configure_azure_monitor(**options: Any) -> None:
        calls.append(options)
        if fail:
            raise ValueError("bad connection string")
        logging.getLogger(options["logger_name"]).addHandler(FakeOtelHandler())

    module = types.ModuleType("azure.monitor.opentelemetry")
    module.configure_azure_monitor = configure_azure_monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", module)
    return calls


AZURE_ENV = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=abc;Authorization=AAD",
}


def test_nothing_is_configured_or_imported_without_a_connection_string(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "azure.monitor.opentelemetry", raising=False)
    assert not telemetry.configure_azure_monitor({}, lambda: pytest.fail("credential"))
    assert "azure.monitor.opentelemetry" not in sys.modules
    assert own_handlers(telemetry.LOGGER_NAME) == []


def test_in_azure_the_distro_exports_the_scaler_logger_with_the_identity_once(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_distro(monkeypatch)
    identity = object()
    assert telemetry.configure_azure_monitor(AZURE_ENV, lambda: identity)
    assert telemetry.configure_azure_monitor(AZURE_ENV, lambda: pytest.fail("twice"))
    (options,) = calls
    assert options["connection_string"] == AZURE_ENV["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    assert options["logger_name"] == "scaler"
    assert options["credential"] is identity
    handlers = own_handlers(telemetry.LOGGER_NAME)
    assert [type(h) for h in handlers] == [FakeOtelHandler]
    assert handlers[0] in logging.getLogger("scaler").handlers


def test_without_entra_authentication_no_credential_is_passed(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_distro(monkeypatch)
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}
    assert telemetry.configure_azure_monitor(env, lambda: pytest.fail("credential"))
    assert "credential" not in calls[0]


def test_a_worker_that_configured_azure_monitor_is_reused_not_configured_twice(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_distro(monkeypatch)
    worker_handler = FakeOtelHandler()
    logging.getLogger().addHandler(worker_handler)
    env = {**AZURE_ENV, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}
    assert telemetry.configure_azure_monitor(env, lambda: pytest.fail("credential"))
    assert calls == []
    assert own_handlers(telemetry.LOGGER_NAME) == [worker_handler]


def test_a_failing_configuration_is_logged_never_raised(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_distro(monkeypatch, fail=True)
    caplog.set_level(logging.WARNING, logger="scaler")
    assert not telemetry.configure_azure_monitor(AZURE_ENV, lambda: object())
    assert "telemetry is off: ValueError: bad connection string" in caplog.text
    assert own_handlers(telemetry.LOGGER_NAME) == []
