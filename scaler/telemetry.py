"""Outcomes and pool changes as structured telemetry for Application Insights.

Every outcome document that `scaler.service_layer.messages.log_outcome` sees becomes one log
record for the outcome and one per pool in it, on the logger `scaler.telemetry`, with flat
custom dimensions (`DIMENSIONS`, plus `NODE_DIMENSIONS` on a pool whose states are known). They
are `extra=` attributes of the `LogRecord`: azure-monitor-opentelemetry's log exporter turns a
record's attributes into the `customDimensions` of a row in the `traces` table (values as
strings). The workbook (infra/app/workbook.json) and the alert rules (infra/app/alerts.bicep)
query exactly these names; tests/infra imports them from here so the two cannot drift.

The logger does not propagate: its records go only to the Azure Monitor handler that
`configure_azure_monitor` attaches, never to the `scaler` logger's handlers (the local run's
console reads `outcome` there as a JSON document). Without that handler, locally and in tests,
`emit_outcome` returns before building anything.

Module-level rather than an adapter: the service layer calls it (and imports no adapters), and
it needs only the standard library; the Azure Monitor SDK is imported lazily, in
`configure_azure_monitor`, and only when a connection string is set.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

LOGGER_NAME = "scaler.telemetry"
# The app's own logger: what configure_azure_monitor exports besides these records (warnings,
# errors, the human-readable outcome line), not the Azure SDKs' request logs.
APP_LOGGER_NAME = "scaler"

# Dimension names (customDimensions keys).
RECORD = "record"  # OUTCOME_RECORD or POOL_RECORD: which kind of row this is
CLUSTER = "cluster"  # the cluster's resource id, lower case ("" when the outcome has none)
POOL = "pool"  # the pool's name ("" on an outcome record)
SOURCE = "source"  # queue | timer | schedule | reconcile
OUTCOME = "outcome"  # the outcome's overall result: applied, deferred, rejected, poisoned, …
RESULT = "result"  # a pool record: the pool's own (started, refused, …); else = outcome
ACTION = "action"  # a pool record: scale, autoscale, stop, start, none; else ""
INTENT_ID = "intent_id"
PROBLEM_CODE = "problem_code"  # the error code (InvalidSchedule, PoolBusy, …) or ""
DETAIL = "detail"  # the error message or the intent's reason, cut to DETAIL_CHARS
THROTTLED = "throttled"  # 429s the outcome (or pool) counted under "throttled"; 0 if absent
NODES_BEFORE = "nodes_before"  # nodes before the write (0 when stopped)
NODES_AFTER = "nodes_after"  # nodes after it (0 when stopped)

OUTCOME_RECORD = "outcome"
POOL_RECORD = "pool"

# On every record, in this order.
DIMENSIONS = (
    RECORD,
    CLUSTER,
    POOL,
    SOURCE,
    OUTCOME,
    RESULT,
    ACTION,
    INTENT_ID,
    PROBLEM_CODE,
    DETAIL,
    THROTTLED,
)
# On a pool record whose outcome carries the state before and after.
NODE_DIMENSIONS = (NODES_BEFORE, NODES_AFTER)

# Outcome documents carry producers' text (reasons, ids, error messages echoing input):
# every string is cut and stripped of control characters before it becomes a dimension.
NAME_CHARS = 64
ID_CHARS = 300
DETAIL_CHARS = 300
# AKS allows 100 pools per cluster; an outcome never names more.
MAX_POOL_RECORDS = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

_logger = logging.getLogger(LOGGER_NAME)
_logger.propagate = False

Dimensions = dict[str, str | int]


def outcome_records(document: Mapping[str, Any]) -> list[tuple[str, Dimensions]]:
    """(message, dimensions) for the outcome, then for each of its pools. Never raises for
    a document of unexpected shape: missing or odd fields become "" or 0."""
    error = _mapping(document.get("error"))
    overall = _text(document.get("outcome"), NAME_CHARS)
    common: Dimensions = {
        CLUSTER: _text(document.get("cluster"), ID_CHARS).lower(),
        SOURCE: _text(document.get("source"), NAME_CHARS),
        OUTCOME: overall,
        INTENT_ID: _text(document.get("intent_id"), ID_CHARS),
    }
    detail = _text(error.get("message") or document.get("reason"), DETAIL_CHARS)
    first: Dimensions = {
        RECORD: OUTCOME_RECORD,
        CLUSTER: common[CLUSTER],
        POOL: "",
        SOURCE: common[SOURCE],
        OUTCOME: overall,
        RESULT: overall,
        ACTION: "",
        INTENT_ID: common[INTENT_ID],
        PROBLEM_CODE: _text(error.get("code"), NAME_CHARS),
        DETAIL: detail,
        THROTTLED: _count(document.get("throttled")),
    }
    found = [(_message(first), first)]
    pools = document.get("pools")
    for entry in (pools if isinstance(pools, list) else [])[:MAX_POOL_RECORDS]:
        pool = _mapping(entry)
        pool_error = _mapping(pool.get("error"))
        record: Dimensions = {
            RECORD: POOL_RECORD,
            CLUSTER: common[CLUSTER],
            POOL: _text(pool.get("pool"), NAME_CHARS),
            SOURCE: common[SOURCE],
            OUTCOME: overall,
            RESULT: _text(pool.get("outcome"), NAME_CHARS),
            ACTION: _text(pool.get("action"), NAME_CHARS),
            INTENT_ID: common[INTENT_ID],
            PROBLEM_CODE: _text(pool_error.get("code"), NAME_CHARS),
            DETAIL: _text(pool_error.get("message"), DETAIL_CHARS),
            THROTTLED: _count(pool.get("throttled")),
        }
        before, after = _nodes(pool.get("before")), _nodes(pool.get("after"))
        if before is not None and after is not None:
            record[NODES_BEFORE] = before
            record[NODES_AFTER] = after
        found.append((_message(record), record))
    return found


def emit_outcome(document: Mapping[str, Any]) -> None:
    """Log the outcome's records on `scaler.telemetry`; a no-op until a handler is attached.
    Telemetry never stops an outcome from being published: nothing here raises."""
    if not _logger.handlers or not _logger.isEnabledFor(logging.INFO):
        return
    try:
        for message, dimensions in outcome_records(document):
            _logger.info("%s", message, extra=dimensions)
    except Exception:
        logging.getLogger(APP_LOGGER_NAME).debug("outcome telemetry failed", exc_info=True)


_configure_lock = threading.Lock()
_configured = False


def configure_azure_monitor(
    env: Mapping[str, str], credential: Callable[[], TokenCredential]
) -> bool:
    """Export the `scaler` logger and these records to Application Insights, once per process,
    when APPLICATIONINSIGHTS_CONNECTION_STRING is set (in Azure: infra sets it; locally it is
    not, and nothing is imported). With APPLICATIONINSIGHTS_AUTHENTICATION_STRING saying
    `Authorization=AAD` (the component has local auth off) the exporter signs in with
    `credential()`, the app's managed identity. When the Functions worker configured Azure
    Monitor itself (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true), its handler is reused
    instead of configuring twice. Returns whether telemetry is exported; a failure is logged,
    never raised: scaling does not depend on telemetry."""
    global _configured
    connection_string = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if not connection_string:
        return False
    with _configure_lock:
        if _configured:
            return True
        try:
            if _is_true(env.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")):
                worker_logger = env.get("PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME", "")
                handlers = _otel_handlers(logging.getLogger(worker_logger))
            else:
                handlers = _configure_distro(connection_string, env, credential)
        except Exception as error:
            logging.getLogger(APP_LOGGER_NAME).warning(
                "Application Insights telemetry is off: %s: %s", type(error).__name__, error
            )
            return False
        if not handlers:
            logging.getLogger(APP_LOGGER_NAME).warning(
                "Application Insights telemetry is off: no OpenTelemetry log handler found"
            )
            return False
        for handler in handlers:
            _logger.addHandler(handler)
        _logger.setLevel(logging.INFO)
        _configured = True
        return True


def _configure_distro(
    connection_string: str, env: Mapping[str, str], credential: Callable[[], TokenCredential]
) -> list[logging.Handler]:
    from azure.monitor.opentelemetry import configure_azure_monitor as configure

    options: dict[str, Any] = {
        "connection_string": connection_string,
        "logger_name": APP_LOGGER_NAME,
        # Azure SDK calls (ARM, storage) become dependencies through azure-core's tracing;
        # the raw HTTP instrumentations would record each of them a second time.
        "instrumentation_options": {
            "requests": {"enabled": False},
            "urllib": {"enabled": False},
            "urllib3": {"enabled": False},
        },
    }
    if "authorization=aad" in env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "").lower():
        options["credential"] = credential()
    configure(**options)
    return _otel_handlers(logging.getLogger(APP_LOGGER_NAME))


def _otel_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if type(h).__module__.startswith("opentelemetry")]


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _message(dimensions: Dimensions) -> str:
    if dimensions[RECORD] == POOL_RECORD:
        return (
            f"pool {dimensions[POOL]}: {dimensions[ACTION]} {dimensions[RESULT]} "
            f"({dimensions[OUTCOME]}, {dimensions[SOURCE]} {dimensions[INTENT_ID]})"
        )
    return f"outcome {dimensions[OUTCOME]}: {dimensions[SOURCE]} {dimensions[INTENT_ID]}"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object, limit: int) -> str:
    if value is None or isinstance(value, Mapping | list | tuple | set):
        return ""
    text = _CONTROL.sub(" ", str(value)[: limit * 2]).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(0, min(value, 1_000_000))


def _nodes(state: object) -> int | None:
    """Nodes a pool state (PoolState.summary) runs: its count, 0 when stopped."""
    summary = _mapping(state)
    if str(summary.get("power") or "").lower() == "stopped":
        return 0
    count = summary.get("count")
    if isinstance(count, bool) or not isinstance(count, int):
        return None
    return max(0, count)
