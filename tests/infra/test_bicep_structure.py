"""Structure of infra/: parsed with pycep, checked against the issue and the app's own code.

There is no Bicep CLI in CI, so these tests are what stands between a typo in infra/ and a
failed `azd provision`. They check security properties, role scopes and ids, module wiring
(parameters in, outputs out), the parameters file, and that the function app sets every
setting the code reads (scaler.settings.SETTINGS), so a new setting without infra fails here.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

# The tests compare infra/ with the app's own catalogue of settings and queue names.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    from pycep import BicepParser

    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=path))
    return parsed


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's own properties; `if` and `for` put them one level further down."""
    config = resource["config"]
    while isinstance(config, dict) and ("condition" in config or "loop_type" in config):
        config = config["config"]
    assert isinstance(config, dict)
    return config


def resources(path: Path, type_: str | None = None) -> dict[str, dict[str, Any]]:
    found = parse(path).get("resources") or {}
    return {
        name: res
        for name, res in found.items()
        if type_ is None or res["type"].lower() == type_.lower()
    }


def all_resources(type_: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path in bicep_files():
        for name, res in resources(path, type_).items():
            yield path, name, res


def unquote(key: str) -> str:
    """pycep keeps the quotes of quoted object keys ('azd-service-name')."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def accessor_chain(node: Any) -> list[str] | None:
    """`a.b.c` or `a::b::c` as ['a', 'b', 'c']; None for anything else."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict) and "operator" in node:
        op = node["operator"]
        if op.get("type") in ("property_accessor", "nested_resource_accessor"):
            left = accessor_chain(op["operands"]["operand_1"])
            right = accessor_chain(op["operands"]["operand_2"])
            if left is not None and right is not None:
                return left + right
    return None


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def function_calls(node: Any, name: str) -> list[dict[str, Any]]:
    return [
        n["function"]
        for n in walk(node)
        if isinstance(n, dict)
        and isinstance(n.get("function"), dict)
        and n["function"].get("type") == name
    ]


_INTERPOLATION = re.compile(r"\$\{(\w+)\}")


def resolve(value: Any, variables: dict[str, Any], depth: int = 0) -> Any:
    """Replace references to `var`s (whole or interpolated in a string) by their values."""
    if depth > 10 or not isinstance(value, str):
        return value
    if value in variables:
        return resolve(variables[value]["value"], variables, depth + 1)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            resolved = resolve(variables[name]["value"], variables, depth + 1)
            if isinstance(resolved, str):
                return resolved
        return match.group(0)

    return _INTERPOLATION.sub(substitute, value)


def variables(path: Path) -> dict[str, Any]:
    return parse(path).get("variables") or {}


def parameters(path: Path) -> dict[str, Any]:
    return parse(path).get("parameters") or {}


def outputs(path: Path) -> dict[str, Any]:
    return parse(path).get("outputs") or {}


def modules(path: Path) -> dict[str, dict[str, Any]]:
    return parse(path).get("modules") or {}


def module_path(owner: Path, module: dict[str, Any]) -> Path:
    return (owner.parent / str(module["detail"]["path"])).resolve()


def has_default(param: dict[str, Any]) -> bool:
    """pycep reports a parameter without default as `"default": None`."""
    return param.get("default") is not None


def decorator(param: dict[str, Any], kind: str) -> Any:
    for dec in param.get("decorators") or []:
        if dec.get("type") == kind:
            return dec.get("argument")
    return None


# --------------------------------------------------------------------------------------------
# Files and names

MAIN = INFRA / "main.bicep"
PARAMETERS_FILE = INFRA / "main.parameters.json"
FUNCTION = INFRA / "app" / "function.bicep"
STORAGE = INFRA / "app" / "storage.bicep"
MONITORING = INFRA / "app" / "monitoring.bicep"
APP_RBAC = INFRA / "app" / "rbac.bicep"
PRODUCERS = INFRA / "app" / "producers.bicep"
CLUSTER_ACCESS = INFRA / "aks" / "cluster-access.bicep"
SUBNET_ACCESS = INFRA / "aks" / "subnet-access.bicep"
SCALER_ROLE = INFRA / "roles" / "scaler-role.bicep"
DEPLOYER = INFRA / "deployer" / "main.bicep"
DEPLOYER_GROUP = INFRA / "deployer" / "group-access.bicep"
# Templates deployed on their own: main.bicep by azd, the role by the preprovision hook (before
# main.bicep, never in it), the deployer by a platform team once.
ENTRY_POINTS = (MAIN, SCALER_ROLE, DEPLOYER)

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
SITE = "Microsoft.Web/sites"

# Built-in role ids and their names, copied from Microsoft's "Azure built-in roles" reference
# (MicrosoftDocs/azure-docs, articles/role-based-access-control/built-in-roles/storage.md,
# containers.md and monitor.md: each role's JSON "name" and "roleName").
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": "Storage Queue Data Message Sender",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8": "Azure Kubernetes Service Contributor Role",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    # integration.md
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
    # general.md
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
}

# Exactly what the custom role may do; anything else is a review decision, not a drive-by.
SCALER_ACTIONS = {
    "Microsoft.ContainerService/managedClusters/read",
    "Microsoft.ContainerService/managedClusters/agentPools/read",
    "Microsoft.ContainerService/managedClusters/agentPools/write",
    # Effective only on the node subnets it is assigned on (issue 14, item 3).
    "Microsoft.Network/virtualNetworks/subnets/join/action",
}

# Settings the platform (not scaler/settings.py) reads, which infra must set as well.
PLATFORM_SETTINGS = {
    "SCALER_TIMER_SCHEDULE",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # The Python worker: the app exports its own OpenTelemetry logs (scaler/telemetry.py).
    "PYTHON_ENABLE_OPENTELEMETRY",
}

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def only(mapping: dict[str, Any], what: str) -> tuple[str, Any]:
    assert len(mapping) == 1, f"expected exactly one {what}, found {sorted(mapping)}"
    return next(iter(mapping.items()))


def role_guid(path: Path, assignment: dict[str, Any]) -> str:
    """The role GUID a roleAssignment grants, resolved through the file's variables."""
    role_id = body(assignment)["properties"]["roleDefinitionId"]
    calls = function_calls(role_id, "subscription_resource_id")
    assert calls, (
        f"{path.name}: roleDefinitionId must be subscriptionResourceId(...), not {role_id}"
    )
    params = calls[0]["parameters"]
    assert params["resource_type"] == ROLE_DEFINITION
    guid = resolve(params["resource_name_1"], variables(path))
    assert isinstance(guid, str), guid
    return guid


def app_settings() -> dict[str, Any]:
    _, site = only(resources(FUNCTION, SITE), "function app")
    entries = body(site)["properties"]["siteConfig"]["appSettings"]
    names = [entry["name"] for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"app settings set twice: {duplicates}"
    return {entry["name"]: entry["value"] for entry in entries}


def main_module(path: Path) -> tuple[str, dict[str, Any]]:
    for name, module in modules(MAIN).items():
        if module_path(MAIN, module) == path.resolve():
            return name, module
    raise AssertionError(f"main.bicep does not use {path.relative_to(INFRA)}")


# --------------------------------------------------------------------------------------------
# Parsing and wiring


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_main_is_subscription_scoped_and_uses_every_module() -> None:
    for entry in ENTRY_POINTS:
        assert parse(entry)["globals"]["scope"]["value"] == "subscription", entry.name
    used = {module_path(e, m) for e in ENTRY_POINTS for m in modules(e).values()}
    unused = {p.resolve() for p in bicep_files()} - used - {e.resolve() for e in ENTRY_POINTS}
    assert not unused, f"modules nobody deploys: {sorted(map(str, unused))}"


@pytest.mark.parametrize("name", sorted(modules(MAIN)))
def test_module_parameters_match_the_module(name: str) -> None:
    module = modules(MAIN)[name]
    target = module_path(MAIN, module)
    assert target.exists(), f"module {name} points at missing {target}"
    declared = parameters(target)
    passed = set((body(module).get("params") or {}).keys())
    unknown = passed - set(declared)
    assert not unknown, (
        f"{name} passes parameters {target.name} does not declare: {sorted(unknown)}"
    )
    required = {p for p, spec in declared.items() if not has_default(spec)}
    missing = required - passed
    assert not missing, (
        f"{name} leaves required parameters of {target.name} unset: {sorted(missing)}"
    )


def test_module_outputs_used_in_main_exist() -> None:
    mods = modules(MAIN)
    checked = 0
    for node in walk(parse(MAIN)):
        chain = accessor_chain(node) if isinstance(node, dict) else None
        if chain and len(chain) == 3 and chain[0] in mods and chain[1] == "outputs":
            target = module_path(MAIN, mods[chain[0]])
            assert chain[2] in outputs(target), (
                f"{chain[0]}.outputs.{chain[2]}: {target.name} has no such output"
            )
            checked += 1
    assert checked, "found no module outputs in main.bicep; the walker is broken"


def test_parameters_file_matches_declared_parameters() -> None:
    declared = parameters(MAIN)
    given = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    assert set(given) == set(declared), (
        f"only in main.parameters.json: {sorted(set(given) - set(declared))}; "
        f"only in main.bicep: {sorted(set(declared) - set(given))}"
    )
    placeholder = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(?:=(.*))?\}$")
    for name, entry in given.items():
        match = placeholder.match(str(entry["value"]))
        assert match, (
            f"{name}: expected an azd ${{VAR}} or ${{VAR=default}} placeholder, got {entry['value']!r}"
        )
        default_in_file = match.group(2)
        if not has_default(declared[name]):
            assert default_in_file is None, (
                f"{name} is required in main.bicep; give it no default in the file"
            )
        elif default_in_file is not None and not isinstance(declared[name]["default"], dict):
            default = declared[name]["default"]
            expected = json.dumps(default) if isinstance(default, bool | list) else str(default)
            assert default_in_file == expected, (
                f"{name}: default {default_in_file!r} in the parameters file, "
                f"{declared[name]['default']!r} in main.bicep"
            )


def test_main_declares_the_parameters_the_issue_names() -> None:
    params = parameters(MAIN)
    for name in (
        "environmentName",
        "location",
        "aksClusterName",
        "aksResourceGroupName",
        "aksSubscriptionId",
        "aksClusterIds",
        "aksSubnetIds",
        "aksPlatformRoleDefinitionId",
        "producerPrincipalIds",
        "timerSchedule",
        "instanceMemoryMB",
        "maximumInstanceCount",
        "privateNetwork",
    ):
        assert name in params, f"main.bicep lacks parameter {name}"
    assert params["timerSchedule"]["default"] == "0 */5 * * * *"
    assert params["aksClusterIds"]["type"] == "array" and params["aksClusterIds"]["default"] == []


def test_outputs_azd_and_producers_need() -> None:
    for name in (
        "AZURE_FUNCTION_APP_NAME",
        "SCALER_IDENTITY_CLIENT_ID",
        "SCALER_IDENTITY_PRINCIPAL_ID",
        "AZURE_STORAGE_QUEUE_ENDPOINT",
        "SCALER_INTENTS_QUEUE_URL",
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
    ):
        assert name in outputs(MAIN), f"main.bicep lacks output {name}"


# --------------------------------------------------------------------------------------------
# Identity


def test_one_user_assigned_identity_and_no_system_assigned_identity() -> None:
    identities = list(all_resources("Microsoft.ManagedIdentity/userAssignedIdentities"))
    assert len(identities) == 1, identities
    for path, name, res in ((p, n, r) for p in bicep_files() for n, r in resources(p).items()):
        identity = body(res).get("identity")
        if isinstance(identity, dict):
            assert "systemassigned" not in str(identity.get("type", "")).lower(), (
                f"{path.name}:{name}"
            )
    _, site = only(resources(FUNCTION, SITE), "function app")
    identity = body(site)["identity"]
    assert identity["type"] == "UserAssigned"
    assert [unquote(k) for k in identity["userAssignedIdentities"]] == ["${identityId}"]


# --------------------------------------------------------------------------------------------
# Storage


def test_storage_account_is_locked_to_entra_and_tls12() -> None:
    _, account = only(resources(STORAGE, "Microsoft.Storage/storageAccounts"), "storage account")
    props = body(account)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["allowBlobPublicAccess"] is False
    containers = resources(STORAGE, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert set(containers) == {"deploymentContainer", "scheduleContainer"}
    for container in containers.values():
        assert body(container)["properties"]["publicAccess"] == "None"


def test_storage_has_the_queues_and_table_the_app_uses() -> None:
    from scaler import settings

    vars_ = variables(STORAGE)
    queues = {
        resolve(body(q)["name"], vars_)
        for q in resources(
            STORAGE, "Microsoft.Storage/storageAccounts/queueServices/queues"
        ).values()
    }
    assert queues == {
        settings.INTENTS_QUEUE,
        settings.POISON_QUEUE,
        settings.RESULTS_QUEUE,
        # The host never creates a trigger's queue; the app sends to it (issue 10, item 1).
        settings.RECONCILE_QUEUE,
        f"{settings.RECONCILE_QUEUE}-poison",
    }
    tables = {
        resolve(body(t)["name"], vars_)
        for t in resources(
            STORAGE, "Microsoft.Storage/storageAccounts/tableServices/tables"
        ).values()
    }
    assert tables == {getattr(settings, "STATE_TABLE", "scalerstate")}


# --------------------------------------------------------------------------------------------
# Function app


def test_flex_consumption_plan_linux() -> None:
    _, plan = only(resources(FUNCTION, "Microsoft.Web/serverfarms"), "plan")
    config = body(plan)
    assert config["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert config["properties"]["reserved"] is True


def test_function_app_is_secure_python_311_and_deploys_with_the_identity() -> None:
    _, site = only(resources(FUNCTION, SITE), "function app")
    config = body(site)
    assert config["kind"] == "functionapp,linux"
    props = config["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    app_config = props["functionAppConfig"]
    assert app_config["runtime"] == {"name": "python", "version": "3.11"}
    storage = app_config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    scale = app_config["scaleAndConcurrency"]
    assert scale == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
    }
    # Both are parameters of main.bicep, passed through.
    _, module = main_module(FUNCTION)
    assert module["config"]["params"]["instanceMemoryMB"] == "instanceMemoryMB"
    assert module["config"]["params"]["maximumInstanceCount"] == "maximumInstanceCount"
    tags = function_calls(config["tags"], "union")
    assert tags and {unquote(k): v for k, v in tags[0]["parameters"]["arg_2"].items()} == {
        "azd-service-name": "scaler"
    }


def test_basic_publishing_credentials_are_off() -> None:
    policies = resources(FUNCTION, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_app_settings_cover_every_setting_the_code_reads() -> None:
    from scaler.settings import SETTINGS

    required = {spec.name for spec in SETTINGS} | PLATFORM_SETTINGS
    missing = sorted(required - set(app_settings()))
    assert not missing, (
        f"scaler reads settings infra/app/function.bicep does not set: {missing}. "
        "Add them to siteConfig.appSettings (and a parameter in main.bicep if users choose the value)."
    )


def test_app_settings_use_the_identity_and_no_secrets() -> None:
    settings = app_settings()
    assert "AzureWebJobsStorage" not in settings, "a storage connection string would need a key"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert (
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    for service in ("blob", "queue", "table"):
        chain = accessor_chain(settings[f"AzureWebJobsStorage__{service}ServiceUri"])
        assert chain == ["storage", "properties", "primaryEndpoints", service]
    for node in walk(parse(FUNCTION)):
        assert not (isinstance(node, dict) and node.get("function", {}).get("type") == "list_keys")
    text = FUNCTION.read_text()
    assert "AccountKey" not in text and "InstrumentationKey=" not in text


def test_arm_endpoint_and_scope_follow_the_deployment_cloud() -> None:
    settings = app_settings()
    assert settings["SCALER_ARM_ENDPOINT"] == "armEndpoint"
    assert settings["SCALER_ARM_SCOPE"] == "${armEndpoint}/.default"
    vars_ = variables(FUNCTION)
    arm = vars_["armEndpoint"]["value"]
    # environment().resourceManager ends with '/'; the app wants it without.
    assert arm["operator"]["type"] == "conditional"
    assert function_calls(arm, "ends_with") and function_calls(arm, "substring")
    source = accessor_chain(vars_["resourceManager"]["value"]["operator"]["operands"]["operand_1"])
    assert source is None or source == ["environment"]
    assert function_calls(vars_["resourceManager"]["value"], "environment")


def test_default_cluster_settings_come_from_the_target_cluster() -> None:
    settings = app_settings()
    assert settings["SCALER_RESOURCE_GROUP"] == "clusterResourceGroupName"
    assert settings["SCALER_CLUSTER"] == "clusterName"
    assert settings["AZURE_SUBSCRIPTION_ID"] == "clusterSubscriptionId"
    _, module = main_module(FUNCTION)
    params = module["config"]["params"]
    assert params["clusterResourceGroupName"] == "aksResourceGroupName"
    assert params["clusterName"] == "aksClusterName"
    assert (
        params["clusterSubscriptionId"] == "clusterSubscriptionId"
    )  # main's var: param or deployment sub
    assert "aksSubscriptionId" in json.dumps(variables(MAIN)["clusterSubscriptionId"])


def test_setting_defaults_in_infra_match_the_code() -> None:
    """Where a setting comes from a main.bicep parameter, its default is the code's default."""
    from scaler.settings import SETTINGS

    code_defaults = {spec.name: spec.default for spec in SETTINGS}
    code_defaults["SCALER_TIMER_SCHEDULE"] = "0 */5 * * * *"
    _, module = main_module(FUNCTION)
    passed = module["config"]["params"]
    main_params = parameters(MAIN)
    compared = 0
    for name, value in app_settings().items():
        if name not in code_defaults:
            continue
        calls = function_calls(value, "string")
        inner = calls[0]["parameters"]["value_to_convert"] if calls else value
        if not (isinstance(inner, str) and inner in parameters(FUNCTION)):
            continue
        source = passed.get(inner)
        if isinstance(source, str) and source in main_params and has_default(main_params[source]):
            assert str(main_params[source]["default"]) == code_defaults[name], (
                f"{name}: main.bicep parameter {source} defaults to {main_params[source]['default']!r}, "
                f"the code to {code_defaults[name]!r}"
            )
            compared += 1
    assert compared >= 5, "expected the policy settings to come from main.bicep parameters"


# --------------------------------------------------------------------------------------------
# Monitoring


def test_monitoring_has_local_auth_disabled() -> None:
    _, insights = only(
        resources(MONITORING, "Microsoft.Insights/components"), "Application Insights"
    )
    props = body(insights)["properties"]
    assert props["DisableLocalAuth"] is True
    assert accessor_chain(props["WorkspaceResourceId"]) == ["logAnalytics", "id"]
    _, workspace = only(
        resources(MONITORING, "Microsoft.OperationalInsights/workspaces"), "Log Analytics workspace"
    )
    assert body(workspace)["properties"]["features"]["disableLocalAuth"] is True


# --------------------------------------------------------------------------------------------
# Role assignments


def test_role_assignments_are_deterministic_service_principal_grants() -> None:
    found = list(all_resources(ROLE_ASSIGNMENT))
    assert len(found) >= 6
    for path, name, res in found:
        config = body(res)
        assert function_calls(config["name"], "guid"), f"{path.name}:{name} needs a guid(...) name"
        if path == PRODUCERS:
            # Producers may be users or groups too (issue 14, item 8).
            assert "principalType" not in config["properties"], f"{path.name}:{name}"
        else:
            assert config["properties"]["principalType"] == "ServicePrincipal", (
                f"{path.name}:{name}"
            )
        if path != DEPLOYER:  # the pipeline's deployments role is subscription-wide by design
            assert "scope" in config, f"{path.name}:{name} must name its scope explicitly"
    assert not resources(MAIN, ROLE_ASSIGNMENT), "no role assignment at subscription scope"


def test_every_role_guid_is_a_named_built_in_role() -> None:
    """Each GUID in infra/ carries the role's name in a comment, and the pair is Microsoft's."""
    comment = re.compile(r"'(" + GUID.pattern + r")'\s*//\s*(.+?)\s*$")
    seen = {}
    for path in bicep_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            guids = GUID.findall(line)
            if not guids:
                continue
            match = comment.search(line)
            assert match, f"{path.name}:{number}: a GUID literal needs its role name in a comment"
            guid, name = match.group(1).lower(), match.group(2)
            assert guid in BUILT_IN_ROLES, (
                f"{path.name}:{number}: {guid} is not in the reviewed table"
            )
            assert BUILT_IN_ROLES[guid] == name, (
                f"{path.name}:{number}: {guid} is {BUILT_IN_ROLES[guid]!r}, the comment says {name!r}"
            )
            seen[guid] = name
    assert set(seen) == set(BUILT_IN_ROLES), f"unused table rows: {set(BUILT_IN_ROLES) - set(seen)}"


def test_app_identity_gets_only_the_data_roles_it_needs() -> None:
    granted = {}
    for res in resources(APP_RBAC, ROLE_ASSIGNMENT).values():
        role = BUILT_IN_ROLES[role_guid(APP_RBAC, res)]
        granted[role] = body(res)["scope"]
        assert body(res)["properties"]["principalId"] == "principalId"
    assert granted == {
        "Storage Blob Data Owner": "storage",
        "Storage Queue Data Contributor": "storage",
        "Storage Table Data Contributor": "storage",
        "Monitoring Metrics Publisher": "applicationInsights",
    }
    assert resources(APP_RBAC, "Microsoft.Storage/storageAccounts")["storage"]["existing"] is True
    _, module = main_module(APP_RBAC)
    assert accessor_chain(module["config"]["params"]["principalId"]) == [
        "identity",
        "outputs",
        "principalId",
    ]


def test_producers_may_only_send_to_the_intents_queue() -> None:
    (res,) = resources(PRODUCERS, ROLE_ASSIGNMENT).values()
    assert BUILT_IN_ROLES[role_guid(PRODUCERS, res)] == "Storage Queue Data Message Sender"
    assert res["config"]["loop_type"]["detail"]["array_name"] == "principalIds"
    scope = accessor_chain(body(res)["scope"])
    assert scope is not None
    queue = resources(PRODUCERS)["__".join(scope)]
    assert queue["type"] == "Microsoft.Storage/storageAccounts/queueServices/queues"
    assert body(queue)["name"] == "intentsQueueName"
    _, module = main_module(PRODUCERS)
    assert accessor_chain(module["config"]["params"]["intentsQueueName"]) == [
        "storage",
        "outputs",
        "intentsQueueName",
    ]
    assert accessor_chain(outputs(STORAGE)["intentsQueueName"]["value"]) == ["intentsQueue", "name"]


def test_cluster_role_is_assigned_on_each_listed_cluster_only() -> None:
    ((cluster_name, cluster),) = resources(
        CLUSTER_ACCESS, "Microsoft.ContainerService/managedClusters"
    ).items()
    assert cluster["existing"] is True
    assert body(cluster)["name"] == "clusterName"
    (assignment,) = resources(CLUSTER_ACCESS, ROLE_ASSIGNMENT).values()
    config = body(assignment)
    assert config["scope"] == cluster_name, "the role must be assigned on the cluster itself"
    guid_args = function_calls(config["name"], "guid")[0]["parameters"]
    assert accessor_chain(guid_args["base_string"]) == [cluster_name, "id"]
    assert config["properties"]["principalId"] == "principalId"
    granted = function_calls(config["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert granted[0]["parameters"]["resource_name_1"] == "roleDefinitionGuid"
    # One module per cluster, each in that cluster's resource group and subscription.
    _, module = main_module(CLUSTER_ACCESS)
    assert module["config"]["loop_type"]["detail"]["array_name"] == "clusterIds"
    scope = body(module)["scope"]["function"]
    assert scope["type"] == "resource_group"
    text = json.dumps(scope["parameters"])
    assert '"operand_2": 2' in text and '"operand_2": 4' in text, text
    params = body(module)["params"]
    assert params["roleDefinitionGuid"] == "roleDefinitionGuid"
    assert accessor_chain(params["principalId"]) == ["identity", "outputs", "principalId"]
    # The default cluster is always in the list.
    assert "defaultClusterId" in json.dumps(variables(MAIN)["clusterIds"])


def test_custom_role_is_least_privilege() -> None:
    (definition,) = resources(SCALER_ROLE, ROLE_DEFINITION).values()
    props = body(definition)["properties"]
    vars_ = variables(SCALER_ROLE)
    (permission,) = props["permissions"]
    actions = set(resolve(permission["actions"], vars_))
    assert actions == SCALER_ACTIONS
    assert not any("*" in action for action in actions)
    assert permission.get("notActions", []) == [] and permission.get("dataActions", []) == []
    assert props["type"] == "CustomRole"


# --------------------------------------------------------------------------------------------
# azd and GitHub Actions


def test_azure_yaml_deploys_service_scaler_as_python_function() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^services:\n  scaler:\n(    .*\n)*?    host: function$", text, re.M), text
    assert re.search(r"^    language: python$", text, re.M)
    assert re.search(r"^  path: infra$", text, re.M)


def test_deploy_workflow_uses_openid_connect_and_azd() -> None:
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert re.search(r"^\s+id-token: write\b", text, re.M)
    assert "azure/login@" in text
    for key in ("client-id", "tenant-id", "subscription-id"):
        assert re.search(rf"^\s+{key}: \$\{{\{{ vars\.\w+ \}}\}}$", text, re.M), key
    for forbidden in ("client-secret", "creds:", "AZURE_CREDENTIALS", "secrets."):
        assert forbidden not in text, f"deploy.yml must not use a long-lived secret ({forbidden})"
    assert "azd provision" in text and "azd deploy" in text


def test_ci_workflow_runs_the_readme_test_command() -> None:
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert re.search(r"^\s+run: \./scripts/test$", text, re.M)
    assert "python-version: '3.11'" in text or 'python-version: "3.11"' in text
    assert re.search(r"node-version: ['\"]?20", text)
