"""Infra for events (issue 11, item 3): an optional Event Grid topic, off by default, with
local auth disabled and CloudEvents input, the app identity's `EventGrid Data Sender` on that
topic only, and the endpoint and notice settings passed to the app."""

from __future__ import annotations

import json

from tests.infra.test_bicep_structure import (
    BUILT_IN_ROLES,
    FUNCTION,
    INFRA,
    MAIN,
    PARAMETERS_FILE,
    ROLE_ASSIGNMENT,
    app_settings,
    body,
    function_calls,
    main_module,
    modules,
    parameters,
    resources,
    role_guid,
)

EVENTS = INFRA / "app" / "events.bicep"


def test_events_are_off_by_default_and_the_topic_is_deployed_only_when_on() -> None:
    enabled = parameters(MAIN)["eventsEnabled"]
    assert enabled["type"] == "bool" and enabled["default"] is False
    module = modules(MAIN)["events"]
    assert module["config"]["condition"] == "eventsEnabled"
    assert body(module)["params"]["principalId"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {
                "operand_1": "identity",
                "operand_2": {
                    "operator": {
                        "type": "property_accessor",
                        "operands": {"operand_1": "outputs", "operand_2": "principalId"},
                    }
                },
            },
        }
    }
    file_values = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert file_values["eventsEnabled"]["value"] == "${SCALER_EVENTS=false}"
    assert file_values["noticeMinutes"]["value"] == "${SCALER_NOTICE_MINUTES=15}"


def test_the_topic_takes_cloudevents_with_entra_only() -> None:
    (topic,) = resources(EVENTS, "Microsoft.EventGrid/topics").values()
    properties = body(topic)["properties"]
    assert properties["disableLocalAuth"] is True  # no aeg-sas-key, no SAS token
    assert properties["inputSchema"] == "CloudEventSchemaV1_0"
    assert properties["minimumTlsVersionAllowed"] == "1.2"


def test_the_app_may_send_to_this_topic_only() -> None:
    (assignment,) = resources(EVENTS, ROLE_ASSIGNMENT).values()
    assert BUILT_IN_ROLES[role_guid(EVENTS, assignment)] == "EventGrid Data Sender"
    config = body(assignment)
    assert config["scope"] == "topic"
    assert config["properties"]["principalType"] == "ServicePrincipal"
    assert config["properties"]["principalId"] == "principalId"
    name_parts = function_calls(config["name"], "guid")[0]["parameters"]
    assert "principalId" in json.dumps(name_parts) and "topic" in json.dumps(name_parts)


def test_the_app_gets_the_endpoint_only_when_events_are_on() -> None:
    settings = app_settings()
    assert settings["SCALER_EVENTGRID_ENDPOINT"] == "eventGridEndpoint"
    _, module = main_module(FUNCTION)
    passed = module["config"]["params"]["eventGridEndpoint"]["operator"]
    assert passed["type"] == "conditional"
    assert passed["operands"]["condition"] == "eventsEnabled"
    assert passed["operands"]["false_value"] == ""
    assert parameters(FUNCTION)["eventGridEndpoint"]["default"] == ""
    notice = parameters(MAIN)["noticeMinutes"]
    assert notice["default"] == 15
    assert module["config"]["params"]["noticeMinutes"] == "noticeMinutes"
