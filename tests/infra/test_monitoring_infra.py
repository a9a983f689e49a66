"""Infra for the dashboard and the alerts (issue 11, item 5).

- A workbook whose queries read exactly the custom dimensions scaler/telemetry.py emits (the
  names are imported from there, so renaming one side fails here) and compare them with values
  the app really produces (outcome and pool results from scaler.domain.outcomes).
- Three log search alert rules on the Application Insights component: a message in a poison
  queue, a rejected schedule, repeated failures for one pool; an action group e-mailing the
  `alertEmail` parameter, and only when it is set.
- OpenTelemetry on in Azure: host.json's telemetryMode, the worker setting, the SDK.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scaler import telemetry
from scaler.domain.outcomes import Overall, PoolResult
from tests.infra.test_bicep_structure import (
    FUNCTION,
    INFRA,
    MAIN,
    MONITORING,
    PARAMETERS_FILE,
    ROOT,
    accessor_chain,
    app_settings,
    body,
    function_calls,
    main_module,
    outputs,
    parameters,
    resources,
    variables,
)
from tests.infra.test_deploy_safety import deployed_by_main

WORKBOOK = INFRA / "app" / "workbook.bicep"
WORKBOOK_JSON = INFRA / "app" / "workbook.json"
ALERTS = INFRA / "app" / "alerts.bicep"
SCHEDULED_QUERY_RULE = "Microsoft.Insights/scheduledQueryRules"

EMITTED = set(telemetry.DIMENSIONS) | set(telemetry.NODE_DIMENSIONS)
DIMENSION_READ = re.compile(r'customDimensions\["(\w+)"\]')
# `name == "value"`, `name != "value"` and `name in ("a", "b")` in the queries' own columns.
COMPARED = re.compile(r'\b(record|outcome|result|source|problem_code)\s*(?:==|!=)\s*"([^"]*)"')
COMPARED_IN = re.compile(r"\b(record|outcome|result)\s+in\s*\(([^)]*)\)")
# The values each column can hold (the app's own enums, and the record kinds).
VALUES = {
    "record": {telemetry.OUTCOME_RECORD, telemetry.POOL_RECORD},
    "outcome": {o.value for o in Overall},
    "result": {r.value for r in PoolResult} | {o.value for o in Overall},
    "source": {"queue", "timer", "schedule", "reconcile"},
}


def workbook() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WORKBOOK_JSON.read_text())
    return data


def workbook_queries() -> dict[str, str]:
    return {
        item["name"]: item["content"]["query"] for item in workbook()["items"] if item["type"] == 3
    }


def alert_rules() -> dict[str, dict[str, Any]]:
    return {name: body(rule) for name, rule in resources(ALERTS, SCHEDULED_QUERY_RULE).items()}


def rule_query(rule: dict[str, Any]) -> str:
    (condition,) = rule["properties"]["criteria"]["allOf"]
    query = condition["query"]
    assert isinstance(query, str)
    return query


def with_only_strings_compared_as_the_app_writes_them(query: str) -> None:
    for column, value in COMPARED.findall(query):
        if column in VALUES:
            assert value in VALUES[column], f"{column} is never {value!r}"
    for column, values in COMPARED_IN.findall(query):
        for value in re.findall(r'"([^"]*)"', values):
            assert value in VALUES[column], f"{column} is never {value!r}"


def all_queries() -> list[str]:
    return [*workbook_queries().values(), *(rule_query(r) for r in alert_rules().values())]


# --------------------------------------------------------------------------------------------
# The workbook


def test_the_workbook_is_a_shared_workbook_on_the_application_insights_component() -> None:
    ((_, resource),) = resources(WORKBOOK, "Microsoft.Insights/workbooks").items()
    config = body(resource)
    assert function_calls(config["name"], "guid"), "a workbook's name must be a GUID"
    assert config["kind"] == "shared"
    props = config["properties"]
    assert props["category"] == "workbook"
    assert accessor_chain(props["sourceId"]) == ["applicationInsights", "id"]
    (loaded,) = function_calls(props["serializedData"], "load_text_content")
    assert (WORKBOOK.parent / loaded["parameters"]["file_path"]).resolve() == WORKBOOK_JSON
    (replaced,) = function_calls(props["serializedData"], "replace")
    assert replaced["parameters"]["old_string"] in WORKBOOK_JSON.read_text()
    insights = resources(WORKBOOK, "Microsoft.Insights/components")["applicationInsights"]
    assert insights["existing"] is True
    _, module = main_module(WORKBOOK)
    assert body(module)["scope"] == "rg"
    assert accessor_chain(body(module)["params"]["applicationInsightsName"]) == [
        "monitoring",
        "outputs",
        "applicationInsightsName",
    ]
    assert "applicationInsightsName" in outputs(MONITORING)


def test_the_workbook_has_the_panels_the_issue_asks_for() -> None:
    data = workbook()
    assert data["version"] == "Notebook/1.0"
    assert data["fallbackResourceIds"] == ["__APPLICATION_INSIGHTS_ID__"]
    titles = " | ".join(
        item["content"]["title"] for item in data["items"] if item["type"] == 3
    ).lower()
    for panel in (
        "changes per day",
        "failures",
        "deferred and poisoned",
        "429s",
        "node-hours saved",
    ):
        assert panel in titles, panel
    for item in data["items"]:
        if item["type"] == 3:
            content = item["content"]
            assert content["resourceType"] == "microsoft.insights/components"
            assert content["timeContextFromParameter"] == "TimeRange"
    assert "(approximate" in titles  # node-hours saved say they are an approximation


def test_the_workbook_reads_every_dimension_the_app_emits_and_no_other() -> None:
    read: set[str] = set()
    for name, query in workbook_queries().items():
        found = set(DIMENSION_READ.findall(query))
        assert found <= EMITTED, f"{name} reads dimensions the app never writes: {found - EMITTED}"
        read |= found
    assert read == EMITTED


def test_node_hours_saved_come_from_the_node_counts_of_started_changes() -> None:
    saved = [q for name, q in workbook_queries().items() if name.startswith("saved")]
    assert len(saved) == 2
    for query in saved:
        assert 'result == "started"' in query
        assert "nodes_before" in query and "nodes_after" in query
        assert "(baseline - nodes_after)" in query
        assert "next(timestamp)" in query  # until the pool's next change


@pytest.mark.parametrize("index", range(len(all_queries())))
def test_queries_compare_columns_only_with_values_the_app_writes(index: int) -> None:
    with_only_strings_compared_as_the_app_writes_them(all_queries()[index])


# --------------------------------------------------------------------------------------------
# Alerts


def test_three_log_search_alerts_on_the_component_for_the_three_conditions() -> None:
    rules = alert_rules()
    assert set(rules) == {"poisonAlert", "scheduleAlert", "poolFailuresAlert"}
    for name, rule in rules.items():
        props = rule["properties"]
        assert rule["kind"] == "LogAlert"
        assert props["enabled"] is True
        assert [accessor_chain(s) for s in props["scopes"]] == [["applicationInsights", "id"]], name
        assert props["actions"]["actionGroups"] == "actionGroupIds", name
        assert props["autoMitigate"] is True
        found = set(DIMENSION_READ.findall(rule_query(rule)))
        assert found and found <= EMITTED, f"{name}: {found - EMITTED}"
        assert "identity" not in rule, "the default: no identity, so no role assignment"
    insights = resources(ALERTS, "Microsoft.Insights/components")["applicationInsights"]
    assert insights["existing"] is True


def test_the_poison_alert_sees_parked_intents_and_host_moved_messages() -> None:
    from scaler import settings

    query = rule_query(alert_rules()["poisonAlert"])
    assert f'"{Overall.POISONED.value}"' in query
    # The host's own log line when it moves a message to <queue>-poison after maxDequeueCount.
    assert '"MaxDequeueCount"' in query and '"-poison"' in query
    assert settings.POISON_QUEUE.endswith("-poison")
    description = alert_rules()["poisonAlert"]["properties"]["description"]
    for queue in (settings.POISON_QUEUE, f"{settings.RECONCILE_QUEUE}-poison"):
        assert queue in description
    condition = alert_rules()["poisonAlert"]["properties"]["criteria"]["allOf"][0]
    assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == (
        "Count",
        "GreaterThan",
        0,
    )


def test_the_schedule_alert_matches_what_the_timer_publishes_for_an_invalid_schedule() -> None:
    query = rule_query(alert_rules()["scheduleAlert"])
    assert 'customDimensions["problem_code"]) == "InvalidSchedule"' in query
    assert 'customDimensions["source"]) == "timer"' in query
    assert 'customDimensions["record"]) == "outcome"' in query
    tick = (ROOT / "scaler" / "service_layer" / "schedule_tick.py").read_text()
    assert 'Problem("InvalidSchedule"' in tick and '"timer"' in tick


def test_repeated_failures_alert_once_per_cluster_and_pool() -> None:
    rule = alert_rules()["poolFailuresAlert"]
    props = rule["properties"]
    (condition,) = props["criteria"]["allOf"]
    assert [d["name"] for d in condition["dimensions"]] == [telemetry.CLUSTER, telemetry.POOL]
    assert all(d["operator"] == "Include" and d["values"] == ["*"] for d in condition["dimensions"])
    assert condition["timeAggregation"] == "Count"
    assert condition["operator"] == "GreaterThanOrEqual"
    assert condition["threshold"] == "failureThreshold"
    assert parameters(ALERTS)["failureThreshold"]["default"] == 3
    assert props["windowSize"] == "PT1H"
    query = rule_query(rule)
    assert f'result == "{PoolResult.FAILED.value}"' in query
    waits = '"PoolBusy", "Throttled", "SubscriptionRequestsThrottled", "TooManyRequests"'
    assert f'result == "{PoolResult.DEFERRED.value}" and problem_code !in ({waits})' in query
    planner = (ROOT / "scaler" / "domain" / "planner.py").read_text()
    assert '"PoolBusy"' in planner  # a busy pool is a normal wait, not a failure
    arm = (ROOT / "scaler" / "adapters" / "arm.py").read_text()
    assert '"Throttled"' in arm  # nor is throttling at fleet scale (the app's own pacing)


def test_the_action_group_e_mails_the_alert_email_parameter_only_when_set() -> None:
    group = resources(ALERTS, "Microsoft.Insights/actionGroups")["actionGroup"]
    condition = group["config"]["condition"]
    assert function_calls(condition, "empty") and condition["operator"]["type"] == "not"
    config = body(group)
    assert config["location"] == "Global"
    props = config["properties"]
    assert len(props["groupShortName"]) <= 12
    (receiver,) = props["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmail"
    assert receiver["useCommonAlertSchema"] is True
    ids = variables(ALERTS)["actionGroupIds"]["value"]["operator"]["operands"]
    assert ids["true_value"] == [] and function_calls(ids["condition"], "empty")
    assert [accessor_chain(x) for x in ids["false_value"]] == [["actionGroup", "id"]]
    # The parameter comes from main.bicep, empty by default, set with SCALER_ALERT_EMAIL.
    assert parameters(MAIN)["alertEmail"]["type"] == "string"
    assert parameters(MAIN)["alertEmail"]["default"] == ""
    _, module = main_module(ALERTS)
    assert body(module)["params"]["alertEmail"] == "alertEmail"
    given = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert given["alertEmail"]["value"] == "${SCALER_ALERT_EMAIL=}"


# --------------------------------------------------------------------------------------------
# OpenTelemetry in Azure


def test_opentelemetry_is_on_in_azure() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = app_settings()
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    # The worker's own set-up would configure Azure Monitor a second time.
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^azure-monitor-opentelemetry>=[\d.]+,<\d+$", requirements, re.M)


def test_every_new_module_file_is_deployed() -> None:
    deployed = {p.resolve() for p in deployed_by_main()}
    for path in (WORKBOOK, ALERTS):
        assert path.resolve() in deployed, path.name
    assert FUNCTION.resolve() in deployed
