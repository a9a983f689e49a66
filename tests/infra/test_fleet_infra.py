"""Infra for a fleet (issue 10, item 5): Reader for tag targets, off by default.

Schedule entries that select clusters by tag are resolved through Azure Resource Graph, which
only returns resources the app's identity can read. So the identity gets the built-in Reader
role on each subscription listed in `tagReaderSubscriptionIds` (and nowhere else, and nothing
broader); a management group cannot be targeted from the subscription-scoped deployment, so
docs/fleet-infra.md gives the one command instead. The hooks remove Reader from subscriptions
dropped from the list and before `azd down`; the deployer template lets the pipeline grant
Reader, and only Reader, on those subscriptions.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.test_bicep_structure import (
    BUILT_IN_ROLES,
    DEPLOYER,
    INFRA,
    MAIN,
    PARAMETERS_FILE,
    ROLE_ASSIGNMENT,
    ROOT,
    accessor_chain,
    app_settings,
    body,
    function_calls,
    main_module,
    modules,
    outputs,
    parameters,
    parse,
    resolve,
    resources,
    role_guid,
    variables,
)
from tests.infra.test_deploy_safety import (
    CLUSTER,
    PRINCIPAL,
    FakeAz,
    assignment,
    azd_env,
    condition_guids,
    deployed_by_main,
    hooks,
)

READER = INFRA / "aks" / "subscription-reader.bicep"
DEPLOYER_SUBSCRIPTION = INFRA / "deployer" / "subscription-access.bicep"
FLEET_DOC = ROOT / "docs" / "fleet-infra.md"
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
SUB_A = "aaaaaaaa-0000-0000-0000-00000000000a"
SUB_B = "bbbbbbbb-0000-0000-0000-00000000000b"


# --------------------------------------------------------------------------------------------
# main.bicep


def test_tag_target_reader_is_off_by_default() -> None:
    param = parameters(MAIN)["tagReaderSubscriptionIds"]
    assert param["type"] == "array" and param["default"] == []
    given = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert given["tagReaderSubscriptionIds"]["value"] == "${SCALER_TAG_READER_SUBSCRIPTION_IDS=[]}"
    # An empty list loops over nothing: no module, no assignment.
    list_var = variables(MAIN)["tagReaderSubscriptionList"]["value"]
    assert list_var["loop_type"]["detail"]["array_name"] == "tagReaderSubscriptionIds"


def test_each_listed_subscription_gets_reader_for_the_app_identity() -> None:
    _, module = main_module(READER)
    loop = module["config"]["loop_type"]["detail"]
    assert loop["array_name"] == "tagReaderSubscriptions"
    assert function_calls(variables(MAIN)["tagReaderSubscriptions"], "union")  # no duplicates
    scope = body(module)["scope"]["function"]
    assert scope["type"] == "subscription"
    assert scope["parameters"]["subscription_id"] == loop["item_name"]
    assert accessor_chain(body(module)["params"]["principalId"]) == [
        "identity",
        "outputs",
        "principalId",
    ]
    # The hooks find these assignments again (predown; a subscription dropped from the list).
    assert "SCALER_TAG_READER_SCOPES" in outputs(MAIN)
    assert "tagReaders" in modules(MAIN)["functionApp"]["config"]["dependsOn"]


def test_the_role_is_reader_at_the_subscription_and_nothing_broader() -> None:
    assert parse(READER)["globals"]["scope"]["value"] == "subscription"
    (assignment_,) = resources(READER, ROLE_ASSIGNMENT).values()
    assert role_guid(READER, assignment_) == READER_ROLE
    assert BUILT_IN_ROLES[READER_ROLE] == "Reader"
    config = body(assignment_)
    assert function_calls(config["scope"], "subscription")
    assert config["properties"]["principalId"] == "principalId"
    assert config["properties"]["principalType"] == "ServicePrincipal"
    assert set(resources(READER)) == {"reader"}, "the module creates nothing but the assignment"
    # Reader is granted nowhere else, and nothing main deploys grants another role at a
    # subscription.
    for path in deployed_by_main():
        if path != READER:
            assert READER_ROLE not in path.read_text(), path.name
            for res in resources(path, ROLE_ASSIGNMENT).values():
                assert not function_calls(body(res).get("scope"), "subscription"), path.name


def test_no_management_group_scope_is_attempted_from_the_subscription_deployment() -> None:
    # ARM cannot deploy to a management group from a subscription-scoped deployment; the
    # one-off command is documented instead.
    for path in deployed_by_main():
        assert "managementGroup(" not in path.read_text(), path.name
    doc = FLEET_DOC.read_text()
    assert "az role assignment create" in doc and "--role Reader" in doc
    assert "/providers/Microsoft.Management/managementGroups/" in doc


# --------------------------------------------------------------------------------------------
# Hooks


def test_the_hook_refuses_what_is_not_a_subscription_id() -> None:
    scaler = hooks()
    env = azd_env(
        SCALER_TAG_READER_SUBSCRIPTION_IDS=json.dumps([SUB_A, f"/subscriptions/{SUB_B.upper()}"])
    )
    assert scaler.tag_reader_scopes(env) == [f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_B}"]
    for bad in (
        "",
        "/providers/Microsoft.Management/managementGroups/platform",
        f"/subscriptions/{SUB_A}/resourceGroups/rg",
    ):
        with pytest.raises(scaler.HookError, match="not a subscription id"):
            scaler.preprovision(
                azd_env(SCALER_TAG_READER_SUBSCRIPTION_IDS=json.dumps([bad])),
                FakeAz(),
                sleep=lambda _: None,
            )
    assert scaler.tag_reader_scopes(azd_env()) == []


def test_preprovision_removes_reader_from_subscriptions_dropped_from_the_list() -> None:
    scaler = hooks()
    kept, dropped = f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_B}"
    az = FakeAz(
        [
            assignment(kept, READER_ROLE),
            assignment(dropped, READER_ROLE),
            # Not ours to remove: another role at that scope, and someone else's Reader.
            assignment(dropped, "some-other-role"),
            assignment(dropped, READER_ROLE, principal="someone-else"),
        ]
    )
    env = azd_env(
        SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL,
        SCALER_AKS_ACCESS_SCOPES=CLUSTER.lower(),
        SCALER_TAG_READER_SCOPES=f"{kept},{dropped}",
        SCALER_TAG_READER_SUBSCRIPTION_IDS=json.dumps([SUB_A]),
    )
    scaler.preprovision(env, az, sleep=lambda _: None)
    left = {
        (a["scope"], a["roleDefinitionId"].rsplit("/", 1)[-1], a["principalId"])
        for a in az.assignments
    }
    assert left == {
        (kept, READER_ROLE, PRINCIPAL),
        (dropped, "some-other-role", PRINCIPAL),
        (dropped, READER_ROLE, "someone-else"),
    }


def test_predown_removes_the_identitys_reader_assignments() -> None:
    scaler = hooks()
    scope = f"/subscriptions/{SUB_A}"
    az = FakeAz([assignment(scope, READER_ROLE), assignment(CLUSTER.lower(), "guid-prod")])
    env = azd_env(
        SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL,
        SCALER_AKS_ACCESS_SCOPES=CLUSTER.lower(),
        SCALER_TAG_READER_SCOPES=scope,
        SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID="/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/guid-prod",
    )
    scaler.predown(env, az, sleep=lambda _: None)
    assert az.assignments == []
    assert {c for c in az.commands()} <= {"role assignment list", "role assignment delete"}


# --------------------------------------------------------------------------------------------
# Deployer


def test_the_pipeline_may_grant_reader_and_only_reader_on_tag_target_subscriptions() -> None:
    assert parameters(DEPLOYER)["tagReaderSubscriptionIds"]["default"] == []
    access = modules(DEPLOYER)["readerSubscriptionAccess"]
    assert access["config"]["loop_type"]["detail"]["array_name"] == "readerSubscriptions"
    assert body(access)["scope"]["function"]["type"] == "subscription"
    params = body(access)["params"]
    assert params["grantableRoleIds"] == ["readerRoleId"]
    assert variables(DEPLOYER)["readerRoleId"]["value"] == READER_ROLE
    assert params["principalId"] == "pipelinePrincipalId"
    assert accessor_chain(params["deploymentsRoleGuid"]) == ["deploymentsRole", "name"]
    # The deployments role may be assigned there.
    (role,) = [
        r
        for r in resources(DEPLOYER, "Microsoft.Authorization/roleDefinitions").values()
        if "deployments" in json.dumps(body(r)["name"])
    ]
    assert "readerScopes" in json.dumps(body(role)["properties"]["assignableScopes"])

    assert parse(DEPLOYER_SUBSCRIPTION)["globals"]["scope"]["value"] == "subscription"
    found = resources(DEPLOYER_SUBSCRIPTION, ROLE_ASSIGNMENT)
    assert set(found) == {"deployments", "constrainedRbacAdministrator"}
    admin = body(found["constrainedRbacAdministrator"])["properties"]
    assert admin["conditionVersion"] == "2.0"
    condition = resolve(admin["condition"], variables(DEPLOYER_SUBSCRIPTION))
    assert condition_guids(condition) == (
        "${join(grantableRoleIds, ', ')}",
        "${join(grantableRoleIds, ', ')}",
    )
    assert role_guid(DEPLOYER_SUBSCRIPTION, found["deployments"]) == "deploymentsRoleGuid"
    # Same name as the deployer's own subscription-wide grant: listing that subscription too
    # renews the grant instead of failing with RoleAssignmentExists.
    own = next(iter(resources(DEPLOYER, ROLE_ASSIGNMENT).values()))
    assert json.dumps(body(own)["name"]).replace(
        "pipelinePrincipalId", "principalId"
    ) == json.dumps(body(found["deployments"])["name"])


# --------------------------------------------------------------------------------------------
# The platform team's page


def test_the_fleet_page_says_what_to_run_per_subscription() -> None:
    doc = FLEET_DOC.read_text()
    for needed in (
        "SCALER_AKS_CLUSTER_IDS",
        "azd provision",
        "SCALER_TAG_READER_SUBSCRIPTION_IDS",
        "infra/deployer/main.bicep",
        "tagReaderSubscriptionIds",
        "Reader",
    ):
        assert needed in doc, needed
    # Every azd variable it names is one the parameters file reads, or one azd writes.
    named = set(re.findall(r"\b(SCALER_[A-Z_]+|AKS_[A-Z_]+)\b", doc))
    known = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", PARAMETERS_FILE.read_text()))
    known |= set(outputs(MAIN)) | set(app_settings())
    assert named <= known, sorted(named - known)
