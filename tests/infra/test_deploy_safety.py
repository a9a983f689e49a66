"""Issue 14: infra/ deploys as written, tears down without touching the clusters, stays least-privilege.

One test (or a few) per item of the issue, each failing on the files before the fix. Bicep is
parsed with pycep (no Bicep CLI here); the azd hooks run against a fake `az`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.infra.test_bicep_structure import (
    APP_RBAC,
    CLUSTER_ACCESS,
    DEPLOYER,
    DEPLOYER_GROUP,
    FUNCTION,
    INFRA,
    MAIN,
    PARAMETERS_FILE,
    PRODUCERS,
    ROLE_ASSIGNMENT,
    ROLE_DEFINITION,
    ROOT,
    SCALER_ROLE,
    SITE,
    STORAGE,
    SUBNET_ACCESS,
    accessor_chain,
    body,
    function_calls,
    main_module,
    module_path,
    modules,
    parameters,
    resolve,
    resources,
    role_guid,
    variables,
    walk,
)

AZURE_YAML = ROOT / "azure.yaml"
DEPLOY_YML = ROOT / ".github" / "workflows" / "deploy.yml"
HOOKS = INFRA / "hooks" / "scaler_hooks.py"
AKS_CONTRIBUTOR = "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"


def deployed_by_main() -> list[Path]:
    """main.bicep and every module it deploys, transitively."""
    seen: list[Path] = []
    pending = [MAIN]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.append(path)
        pending += [module_path(path, m) for m in modules(path).values()]
    return seen


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scaler_hooks", HOOKS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAz:
    """Answers the az calls the hooks make; records every call."""

    def __init__(self, assignments: list[dict[str, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.assignments = assignments or []
        self.roles: set[str] = set()

    def __call__(self, args: Sequence[str]) -> str:
        args = list(args)
        self.calls.append(args)
        if args[:3] == ["deployment", "sub", "create"]:
            environment = args[args.index("--parameters") + 1].split("=", 1)[1]
            role = f"/subscriptions/sub-app/providers/Microsoft.Authorization/roleDefinitions/guid-{environment}"
            self.roles.add(role.rsplit("/", 1)[-1])
            return role + "\n"
        if args[:3] == ["role", "definition", "list"]:
            name = args[args.index("--name") + 1]
            return json.dumps([{"name": name}] if name in self.roles else [])
        if args[:3] == ["role", "definition", "delete"]:
            self.roles.discard(args[args.index("--name") + 1])
            return ""
        if args[:3] == ["role", "assignment", "list"]:
            scope = args[args.index("--scope") + 1]
            return json.dumps([a for a in self.assignments if a["scope"].startswith(scope)])
        if args[:3] == ["role", "assignment", "delete"]:
            gone = args[args.index("--ids") + 1]
            self.assignments = [a for a in self.assignments if a["id"] != gone]
            return ""
        raise AssertionError(f"unexpected az call: {args}")

    def commands(self) -> list[str]:
        return [" ".join(call[:3]) for call in self.calls]


CLUSTER = (
    "/subscriptions/sub-aks/resourceGroups/rg-aks/providers/"
    "Microsoft.ContainerService/managedClusters/aks1"
)
OTHER_CLUSTER = (
    "/subscriptions/sub-b/resourceGroups/rg-b/providers/"
    "Microsoft.ContainerService/managedClusters/aks2"
)
SUBNET = (
    "/subscriptions/sub-net/resourceGroups/rg-net/providers/"
    "Microsoft.Network/virtualNetworks/vnet/subnets/nodes"
)
PRINCIPAL = "11111111-1111-1111-1111-111111111111"


def azd_env(**extra: str) -> dict[str, str]:
    return {
        "AZURE_ENV_NAME": "prod",
        "AZURE_LOCATION": "westeurope",
        "AZURE_SUBSCRIPTION_ID": "sub-app",
        "AKS_SUBSCRIPTION_ID": "sub-aks",
        "AKS_RESOURCE_GROUP": "rg-aks",
        "AKS_CLUSTER_NAME": "aks1",
        **extra,
    }


def assignment(scope: str, role: str, principal: str = PRINCIPAL) -> dict[str, str]:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{role}-{principal[:4]}",
        "scope": scope,
        "principalId": principal,
        "roleDefinitionId": f"/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{role}",
    }


# --------------------------------------------------------------------------------------------
# 1. azd down must not delete the clusters' resource groups


def test_azure_yaml_requires_an_azd_that_deletes_only_groups_it_created() -> None:
    text = AZURE_YAML.read_text()
    match = re.search(r"^requiredVersions:\n  azd: ['\"]>= ?(\d+)\.(\d+)\.(\d+)['\"]$", text, re.M)
    assert match, "azure.yaml must pin azd: requiredVersions: azd: '>= 1.24.0'"
    assert tuple(int(part) for part in match.groups()) >= (1, 24, 0)


def hook_commands(event: str) -> list[str]:
    text = AZURE_YAML.read_text()
    block = re.search(rf"^  {event}:\n((?:    .*\n)+)", text, re.M)
    assert block, f"azure.yaml has no {event} hook"
    return re.findall(r"run: (.+)", block.group(1))


@pytest.mark.parametrize("event", ["preprovision", "predown"])
def test_azure_yaml_runs_the_hooks_on_every_platform(event: str) -> None:
    commands = hook_commands(event)
    assert len(commands) == 2, commands  # posix and windows
    for command in commands:
        assert command.split()[1:] == ["infra/hooks/scaler_hooks.py", event]
    assert re.search(rf"def {event}\(", HOOKS.read_text())


def test_predown_removes_the_cluster_and_subnet_assignments_then_the_role() -> None:
    scaler = hooks()
    az = FakeAz(
        [
            assignment(CLUSTER.lower(), "guid-prod"),
            assignment(SUBNET.lower(), "guid-prod"),
            assignment(CLUSTER.lower(), "guid-prod", principal="someone-else"),
        ]
    )
    az.roles.add("guid-prod")
    env = azd_env(
        SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL,
        SCALER_AKS_ACCESS_SCOPES=f"{CLUSTER.lower()},{SUBNET.lower()}",
        SCALER_AKS_ROLE_DEFINITION_ID="/subscriptions/sub-app/providers/Microsoft.Authorization/roleDefinitions/guid-prod",
    )
    scaler.predown(env, az, sleep=lambda _: None)
    assert [a["principalId"] for a in az.assignments] == ["someone-else"]
    assert "guid-prod" not in az.roles
    deletes = [c for c in az.commands() if c.endswith("delete")]
    assert deletes == ["role assignment delete"] * 2 + ["role definition delete"]
    # Nothing but role assignments and the role: no resource group, no cluster.
    assert {c for c in az.commands()} <= {
        "role assignment list",
        "role assignment delete",
        "role definition list",
        "role definition delete",
    }


def test_predown_keeps_a_role_the_platform_team_owns() -> None:
    scaler = hooks()
    az = FakeAz([assignment(CLUSTER.lower(), "platform-role")])
    az.roles.add("platform-role")
    env = azd_env(
        SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL,
        SCALER_AKS_ACCESS_SCOPES=CLUSTER.lower(),
        SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID="/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/platform-role",
        SCALER_AKS_ROLE_DEFINITION_ID="/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/platform-role",
    )
    scaler.predown(env, az, sleep=lambda _: None)
    assert az.assignments == [] and az.roles == {"platform-role"}


# --------------------------------------------------------------------------------------------
# 2. No siteConfig.ftpsState on a Flex Consumption site


def test_flex_site_sets_no_ftps_state() -> None:
    for path in deployed_by_main():
        for name, site in resources(path, SITE).items():
            assert "ftpsState" not in json.dumps(body(site)), f"{path.name}:{name}"
    policies = resources(FUNCTION, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()}[
        "ftp"
    ] is False


# --------------------------------------------------------------------------------------------
# 3. Pools in a customer VNet: join on their subnets


def test_role_can_join_subnets_and_is_assigned_on_each_listed_subnet() -> None:
    (definition,) = resources(SCALER_ROLE, ROLE_DEFINITION).values()
    (permission,) = body(definition)["properties"]["permissions"]
    actions = resolve(permission["actions"], variables(SCALER_ROLE))
    assert "Microsoft.Network/virtualNetworks/subnets/join/action" in actions
    assert parameters(MAIN)["aksSubnetIds"]["type"] == "array"
    _, module = main_module(SUBNET_ACCESS)
    assert module["config"]["loop_type"]["detail"]["array_name"] == "subnetIds"
    params = body(module)["params"]
    assert params["roleDefinitionGuid"] == "roleDefinitionGuid"
    (join,) = resources(SUBNET_ACCESS, ROLE_ASSIGNMENT).values()
    # On the subnet itself, never the whole VNet.
    assert accessor_chain(body(join)["scope"]) == ["virtualNetwork", "subnet"]
    vnet = resources(SUBNET_ACCESS, "Microsoft.Network/virtualNetworks")["virtualNetwork"]
    assert vnet["existing"] is True
    # The same subnets widen the role's assignable scopes.
    assert "subnetIds" in json.dumps(variables(SCALER_ROLE)["scopeIds"])


# --------------------------------------------------------------------------------------------
# 4. The role is created before, never in, the deployment that assigns it


def test_no_role_definition_is_created_by_the_deployment_that_assigns_it() -> None:
    for path in deployed_by_main():
        assert not resources(path, ROLE_DEFINITION), f"{path.relative_to(INFRA)} creates a role"
    assert resources(SCALER_ROLE, ROLE_DEFINITION)
    # main.bicep assigns the role under the name the role template gives it.
    role_name = body(next(iter(resources(SCALER_ROLE, ROLE_DEFINITION).values())))["name"]
    role_guid_expr = resolve(role_name, variables(SCALER_ROLE))
    main_choice = variables(MAIN)["roleDefinitionGuid"]["value"]["operator"]
    assert main_choice["operands"]["true_value"] == role_guid_expr


def test_preprovision_deploys_the_role_and_waits_until_it_is_readable() -> None:
    scaler = hooks()
    az = FakeAz()
    sleeps: list[float] = []
    scaler.preprovision(azd_env(), az, sleep=sleeps.append)
    commands = az.commands()
    assert commands[0] == "deployment sub create"
    create = az.calls[0]
    assert (
        str(scaler.ROLE_TEMPLATE) in create
        and create[create.index("--location") + 1] == "westeurope"
    )
    assert f"clusterIds={json.dumps([CLUSTER.lower()])}" in create
    reads = [c for c in az.calls if c[:3] == ["role", "definition", "list"]]
    assert len(reads) >= scaler.ROLE_CONSISTENT_READS
    assert all(c[c.index("--scope") + 1] == "/subscriptions/sub-aks" for c in reads)


def test_preprovision_gives_up_loudly_when_the_role_never_replicates() -> None:
    scaler = hooks()

    class NeverVisible(FakeAz):
        def __call__(self, args: Sequence[str]) -> str:
            out = super().__call__(args)
            return "[]" if list(args[:3]) == ["role", "definition", "list"] else out

    with pytest.raises(scaler.HookError, match="still not readable"):
        scaler.preprovision(azd_env(), NeverVisible(), sleep=lambda _: None)


# --------------------------------------------------------------------------------------------
# 5. Allowed clusters are a list of resource ids; scopes and assignments follow it


def test_role_scopes_and_assignments_loop_over_the_cluster_list() -> None:
    assert parameters(SCALER_ROLE)["clusterIds"]["type"] == "array"
    (definition,) = resources(SCALER_ROLE, ROLE_DEFINITION).values()
    scopes = body(definition)["properties"]["assignableScopes"]
    assert scopes == "assignableScopes"
    assert not function_calls(variables(SCALER_ROLE), "resource_group"), "no fixed group"
    groups = variables(SCALER_ROLE)["scopeGroups"]["value"]
    assert groups["loop_type"]["detail"]["array_name"] == "scopeIds"
    _, module = main_module(CLUSTER_ACCESS)
    assert module["config"]["loop_type"]["detail"]["array_name"] == "clusterIds"
    assert "aksClusterIds" in json.dumps(variables(MAIN)["extraClusterIds"])


def test_allowed_clusters_setting_is_exactly_the_clusters_holding_the_role() -> None:
    assert "allowedClusters" not in parameters(MAIN)
    entries = variables(MAIN)["allowedClusterEntries"]["value"]
    assert entries["loop_type"]["detail"]["array_name"] == "clusterIds"
    _, module = main_module(FUNCTION)
    assert body(module)["params"]["allowedClusters"] == "allowedClusters"


def test_hook_lists_the_same_clusters_as_main() -> None:
    scaler = hooks()
    env = azd_env(SCALER_AKS_CLUSTER_IDS=json.dumps([OTHER_CLUSTER, f" {CLUSTER.upper()} ", ""]))
    assert scaler.cluster_ids(env) == [CLUSTER.lower(), OTHER_CLUSTER.lower()]
    with pytest.raises(scaler.HookError, match="JSON array"):
        scaler.cluster_ids(azd_env(SCALER_AKS_CLUSTER_IDS="rg-b/aks2"))
    with pytest.raises(scaler.HookError, match="not a managed cluster"):
        scaler.cluster_ids(azd_env(SCALER_AKS_CLUSTER_IDS='["/subscriptions/x/resourceGroups/y"]'))


def test_preprovision_removes_assignments_on_clusters_dropped_from_the_list() -> None:
    scaler = hooks()
    az = FakeAz(
        [assignment(OTHER_CLUSTER.lower(), "guid-prod"), assignment(CLUSTER.lower(), "guid-prod")]
    )
    env = azd_env(
        SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL,
        SCALER_AKS_ACCESS_SCOPES=f"{CLUSTER.lower()},{OTHER_CLUSTER.lower()}",
    )
    scaler.preprovision(env, az, sleep=lambda _: None)
    assert [a["scope"] for a in az.assignments] == [CLUSTER.lower()]


# --------------------------------------------------------------------------------------------
# 6. No cluster-admin built-in mode; switching away removes the old grant


def test_the_aks_contributor_role_is_never_assigned() -> None:
    assert "aksRoleMode" not in parameters(MAIN)
    for path in deployed_by_main():
        assert AKS_CONTRIBUTOR not in path.read_text(), path.name
    params = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert "SCALER_AKS_ROLE_MODE" not in json.dumps(params)


def test_preprovision_refuses_the_former_builtin_mode() -> None:
    scaler = hooks()
    with pytest.raises(scaler.HookError, match="no longer supported"):
        scaler.preprovision(azd_env(SCALER_AKS_ROLE_MODE="builtin"), FakeAz())
    with pytest.raises(scaler.HookError, match="SCALER_AKS_CLUSTER_IDS"):
        scaler.preprovision(azd_env(SCALER_ALLOWED_CLUSTERS="rg/aks"), FakeAz())


def test_preprovision_removes_the_builtin_assignment_when_switching_to_the_custom_role() -> None:
    scaler = hooks()
    az = FakeAz(
        [assignment(CLUSTER.lower(), AKS_CONTRIBUTOR), assignment(CLUSTER.lower(), "guid-prod")]
    )
    env = azd_env(SCALER_IDENTITY_PRINCIPAL_ID=PRINCIPAL, SCALER_AKS_ACCESS_SCOPES=CLUSTER.lower())
    scaler.preprovision(env, az, sleep=lambda _: None)
    assert [a["roleDefinitionId"].rsplit("/", 1)[-1] for a in az.assignments] == ["guid-prod"]


# --------------------------------------------------------------------------------------------
# 7. The pipeline cannot escalate


def condition_guids(condition: str) -> tuple[str, str]:
    """The role lists a "Constrain roles" condition allows to grant and to delete."""
    guids = r"ForAnyOfAnyValues:GuidEquals \{(\$\{[^}]*\}|[^}]*)\}"
    request = re.search(r"@Request\[[^\]]+RoleDefinitionId\] " + guids, condition)
    resource = re.search(r"@Resource\[[^\]]+RoleDefinitionId\] " + guids, condition)
    assert request and resource, condition
    return request.group(1), resource.group(1)


def test_pipeline_role_admin_is_constrained_to_the_roles_infra_assigns() -> None:
    (admin,) = [
        r
        for r in resources(DEPLOYER_GROUP, ROLE_ASSIGNMENT).values()
        if "condition" in body(r)["properties"]
    ]
    props = body(admin)["properties"]
    assert props["conditionVersion"] == "2.0"
    assert role_guid(DEPLOYER_GROUP, admin) == "rbacAdministratorRoleId"
    condition = resolve(props["condition"], variables(DEPLOYER_GROUP))
    assert "roleAssignments/write" in condition and "roleAssignments/delete" in condition
    write, delete = condition_guids(condition)
    assert write == "${join(grantableRoleIds, ', ')}"
    assert delete == "${join(deletableRoleIds, ', ')}"
    # What the deployer grants in the app's group is exactly what infra/app assigns.
    assigned = {
        resolve(role_guid(APP_RBAC, r), variables(APP_RBAC))
        for r in resources(APP_RBAC, ROLE_ASSIGNMENT).values()
    }
    assigned |= {role_guid(PRODUCERS, r) for r in resources(PRODUCERS, ROLE_ASSIGNMENT).values()}
    app_roles = set(resolve(variables(DEPLOYER)["appRoleIds"]["value"], variables(DEPLOYER)))
    assert app_roles == assigned
    # In the clusters' groups: only the scaler role (and removing the retired built-in one).
    _, cluster_groups = next(
        (n, m) for n, m in modules(DEPLOYER).items() if n == "clusterGroupAccess"
    )
    params = body(cluster_groups)["params"]
    assert [accessor_chain(x) for x in params["grantableRoleIds"]] == [
        ["scalerRole", "outputs", "roleDefinitionGuid"]
    ]
    assert AKS_CONTRIBUTOR in resolve(variables(DEPLOYER)["retiredRoleIds"]["value"], {})


def test_pipeline_holds_no_unconstrained_role_administration_anywhere() -> None:
    text = DEPLOYER.read_text() + DEPLOYER_GROUP.read_text()
    for escalating in (OWNER, USER_ACCESS_ADMINISTRATOR):
        assert escalating not in text
    # Subscription-wide the pipeline may only start deployments.
    (sub_assignment,) = resources(DEPLOYER, ROLE_ASSIGNMENT).values()
    assert accessor_chain(body(sub_assignment)["properties"]["roleDefinitionId"]) == [
        "deploymentsRole",
        "id",
    ]
    (deployments,) = [
        r for r in resources(DEPLOYER, ROLE_DEFINITION).values() if body(r)["name"] != "roleGuid"
    ]
    (permission,) = body(deployments)["properties"]["permissions"]
    assert set(permission["actions"]) == {
        "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
    }
    plain = [
        r
        for r in resources(DEPLOYER_GROUP, ROLE_ASSIGNMENT).values()
        if "condition" not in body(r)["properties"]
    ]
    assert all(r["config"]["loop_type"]["detail"]["array_name"] == "extraRoleIds" for r in plain)


# --------------------------------------------------------------------------------------------
# 8. Producers of any principal type, clean lists, the schedule container, the workflow


def test_producer_list_is_cleaned_of_spaces_empty_entries_and_duplicates() -> None:
    vars_ = variables(MAIN)
    text = json.dumps(vars_["producerText"])
    assert '",,"' in text and '" "' in text
    assert function_calls(vars_["producerTrimmedStart"], "starts_with")
    assert function_calls(vars_["producerTrimmed"], "ends_with")
    assert function_calls(vars_["producerIds"], "union")
    _, module = main_module(PRODUCERS)
    assert body(module)["params"]["principalIds"] == "producerIds"


def test_schedule_blob_container_is_created() -> None:
    container = resources(STORAGE)["scheduleContainer"]
    assert "scheduleContainerName" in json.dumps(container["config"]["condition"])
    assert body(container)["properties"]["publicAccess"] == "None"
    _, module = main_module(STORAGE)
    assert body(module)["params"]["scheduleContainerName"] == "scheduleContainerName"
    assert "scheduleBlob" in json.dumps(variables(MAIN)["scheduleContainerName"])


def workflow_script() -> str:
    text = DEPLOY_YML.read_text()
    match = re.search(r"python3 - <<'PY'\n(.*?)\n\s*PY\n", text, re.S)
    assert match, "deploy.yml must configure the azd environment with its inline script"
    return textwrap.dedent(match.group(1))


def test_workflow_passes_every_parameter_variable_through(monkeypatch: pytest.MonkeyPatch) -> None:
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", PARAMETERS_FILE.read_text()))
    assert {"SCALER_MAX_COUNT", "SCALER_SCHEDULE_BLOB", "SCALER_AKS_CLUSTER_IDS"} <= placeholders
    given = {name: f"value-of-{name}" for name in placeholders | {"UNRELATED"}}
    set_calls: list[list[str]] = []

    def fake_run(args: list[str], check: bool) -> Any:
        set_calls.append(args)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setenv("GITHUB_VARS", json.dumps(given))
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(workflow_script(), "deploy.yml", "exec"), {})
    passed = {call[3] for call in set_calls}
    assert passed == placeholders - {"AZURE_ENV_NAME"}
    assert all(call[:3] == ["azd", "env", "set"] for call in set_calls)


def test_workflow_signs_in_the_azure_cli_because_the_hooks_use_it() -> None:
    text = DEPLOY_YML.read_text()
    assert "run_az" in HOOKS.read_text() and '["az", *args]' in HOOKS.read_text()
    assert text.index("azure/login@") < text.index("azd provision")


# --------------------------------------------------------------------------------------------
# Private network mode (off by default)


def test_private_network_mode_is_off_by_default_and_closes_storage() -> None:
    assert parameters(MAIN)["privateNetwork"]["default"] is False
    (account,) = resources(STORAGE, "Microsoft.Storage/storageAccounts").values()
    props = body(account)["properties"]
    for value, private, public in (
        (props["publicNetworkAccess"], "Disabled", "Enabled"),
        (props["networkAcls"]["defaultAction"], "Deny", "Allow"),
    ):
        choice = value["operator"]
        assert (
            choice["type"] == "conditional" and choice["operands"]["condition"] == "privateNetwork"
        )
        assert (choice["operands"]["true_value"], choice["operands"]["false_value"]) == (
            private,
            public,
        )
    services = variables(STORAGE)["privateServices"]["value"]["operator"]["operands"]
    assert services["true_value"] == ["blob", "queue", "table"] and services["false_value"] == []
    endpoints = resources(STORAGE, "Microsoft.Network/privateEndpoints")["privateEndpoints"]
    assert endpoints["config"]["loop_type"]["detail"]["array_name"] == "privateServices"
    connection = body(endpoints)["properties"]["privateLinkServiceConnections"][0]["properties"]
    assert accessor_chain(connection["privateLinkServiceId"]) == ["storage", "id"]
    zones = resources(STORAGE, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert zones, "private DNS zone groups for the platform's privatelink zones"


def test_private_network_mode_integrates_the_app_with_the_vnet() -> None:
    (site,) = resources(FUNCTION, SITE).values()
    assert "virtualNetworkSubnetId" in json.dumps(
        body(site)["properties"]["virtualNetworkSubnetId"]
    )
    _, module = main_module(FUNCTION)
    choice = body(module)["params"]["virtualNetworkSubnetId"]["operator"]
    assert choice["operands"]["condition"] == "privateNetwork"
    assert choice["operands"]["true_value"] == "appSubnetId"


def test_checkov_storage_skips_say_they_apply_to_public_mode_only() -> None:
    for line in STORAGE.read_text().splitlines():
        if "checkov:skip=CKV_AZURE_35" in line or "checkov:skip=CKV_AZURE_59" in line:
            assert "privateNetwork=true" in line, line


def test_every_walk_of_main_finds_no_role_mode_leftovers() -> None:
    for node in walk(parse_all_main()):
        assert node not in ("roleMode", "aksRoleMode", "builtin")


def parse_all_main() -> list[Any]:
    from tests.infra.test_bicep_structure import parse

    return [parse(path) for path in deployed_by_main()]
