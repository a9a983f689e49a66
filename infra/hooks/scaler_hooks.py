"""azd hooks for infra/: what a single Bicep deployment cannot do safely.

preprovision
  1. Refuses settings whose meaning changed, instead of silently narrowing or widening access:
     SCALER_AKS_ROLE_MODE (built-in mode is gone) and SCALER_ALLOWED_CLUSTERS (now derived
     from SCALER_AKS_CLUSTER_IDS).
  2. Deploys infra/roles/scaler-role.bicep (the custom role, scoped to the clusters' and
     subnets' resource groups) and waits until the role can be read from every subscription it
     will be assigned in. Creating a role and assigning it in one deployment fails now and then
     while the definition replicates (RoleDefinitionDoesNotExist). Skipped when a platform team
     owns the role (SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID).
  3. Removes the app identity's assignments that the coming deployment will not renew: on
     clusters or subnets dropped from the lists, and of any other role (the former built-in
     mode's Azure Kubernetes Service Contributor Role, a previous custom role). Incremental
     deployments never delete, so without this a mode switch leaves the broad grant behind.
  4. Checks SCALER_TAG_READER_SUBSCRIPTION_IDS (subscriptions where schedules select clusters
     by tag, so the identity gets Reader there) and removes the identity's Reader on
     subscriptions dropped from it.

predown
  Removes the identity's assignments on the clusters and subnets and its Reader on the tag
  target subscriptions, then (when this environment created it) the role, before `azd down`
  deletes the app's resource group. Nothing else
  outside that group is touched; the clusters' groups are not deleted (azure.yaml requires an
  azd that only deletes groups the deployment created).

Only the Python standard library and the Azure CLI (`az`, signed in) are used. Values come from
the azd environment, which azd passes to hooks as environment variables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

INFRA = Path(__file__).resolve().parents[1]
ROLE_TEMPLATE = INFRA / "roles" / "scaler-role.bicep"

CLUSTER_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
    r"microsoft\.containerservice/managedclusters/[^/]+$"
)
SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
    r"microsoft\.network/virtualnetworks/[^/]+/subnets/[^/]+$"
)

SUBSCRIPTION_ID = re.compile(
    r"^(?:/subscriptions/)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
# The built-in Reader role (infra/aks/subscription-reader.bicep assigns it for tag targets).
READER_ROLE_GUID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

# How long to wait for a new role definition to be readable, and how many reads in a row must
# see it (reads can hit replicas that are behind: Azure/azure-cli#20727).
ROLE_WAIT_SECONDS = 300
ROLE_CONSISTENT_READS = 3

Az = Callable[[Sequence[str]], str]


class HookError(Exception):
    """A problem the person running azd has to fix; the message says how."""


def run_az(args: Sequence[str]) -> str:
    result = subprocess.run(["az", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HookError(f"az {' '.join(args[:3])} failed:\n{result.stderr.strip()}")
    return result.stdout


def _json_list(env: Mapping[str, str], name: str) -> list[str]:
    raw = env.get(name, "").strip()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise HookError(
            f"{name} must be a JSON array of resource ids, e.g. "
            f"azd env set {name} '[\"/subscriptions/…\"]' ({error})"
        ) from error
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HookError(f"{name} must be a JSON array of strings")
    return value


def _unique_lower(ids: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for raw in ids:
        item = raw.strip().lower()
        if item and item not in seen:
            seen.append(item)
    return seen


def cluster_ids(env: Mapping[str, str]) -> list[str]:
    """The default cluster, then SCALER_AKS_CLUSTER_IDS, as infra/main.bicep computes them."""
    subscription = (
        env.get("AKS_SUBSCRIPTION_ID", "").strip() or env.get("AZURE_SUBSCRIPTION_ID", "").strip()
    )
    group = env.get("AKS_RESOURCE_GROUP", "").strip()
    name = env.get("AKS_CLUSTER_NAME", "").strip()
    if not (subscription and group and name):
        raise HookError(
            "AZURE_SUBSCRIPTION_ID, AKS_RESOURCE_GROUP and AKS_CLUSTER_NAME must be set "
            "(azd env set …)"
        )
    default = (
        f"/subscriptions/{subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
    ids = _unique_lower([default, *_json_list(env, "SCALER_AKS_CLUSTER_IDS")])
    bad = [item for item in ids if not CLUSTER_ID.match(item)]
    if bad:
        raise HookError(f"not a managed cluster resource id: {', '.join(bad)}")
    return ids


def subnet_ids(env: Mapping[str, str]) -> list[str]:
    ids = _unique_lower(_json_list(env, "SCALER_AKS_SUBNET_IDS"))
    bad = [item for item in ids if not SUBNET_ID.match(item)]
    if bad:
        raise HookError(f"not a subnet resource id: {', '.join(bad)}")
    return ids


def tag_reader_scopes(env: Mapping[str, str]) -> list[str]:
    """`/subscriptions/<id>` for each entry of SCALER_TAG_READER_SUBSCRIPTION_IDS, as
    infra/main.bicep computes them; anything but a subscription id is refused here, before
    the deployment would fail on it (a management group needs the one-off command in
    docs/fleet-infra.md)."""
    scopes = []
    for raw in _json_list(env, "SCALER_TAG_READER_SUBSCRIPTION_IDS"):
        match = SUBSCRIPTION_ID.match(raw.strip().lower())
        if not match:
            raise HookError(
                f"SCALER_TAG_READER_SUBSCRIPTION_IDS: {raw!r} is not a subscription id. "
                "List subscription ids only; for a management group see docs/fleet-infra.md."
            )
        scope = f"/subscriptions/{match.group(1)}"
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def previous_reader_scopes(env: Mapping[str, str]) -> list[str]:
    """Where the last provision assigned Reader (its SCALER_TAG_READER_SCOPES output)."""
    return _unique_lower(env.get("SCALER_TAG_READER_SCOPES", "").split(","))


def previous_scopes(env: Mapping[str, str]) -> list[str]:
    """Where the last provision assigned the role (its SCALER_AKS_ACCESS_SCOPES output)."""
    return _unique_lower(env.get("SCALER_AKS_ACCESS_SCOPES", "").split(","))


def subscription_of(resource_id: str) -> str:
    return resource_id.split("/")[2]


def check_settings(env: Mapping[str, str]) -> None:
    mode = env.get("SCALER_AKS_ROLE_MODE", "").strip().lower()
    if mode not in ("", "custom"):
        raise HookError(
            f"SCALER_AKS_ROLE_MODE={mode} is no longer supported. The built-in 'Azure Kubernetes "
            "Service Contributor Role' is managedClusters/* (admin credentials, run command, "
            "delete) and no built-in role is limited to agent pools. Unset it "
            "(azd env set SCALER_AKS_ROLE_MODE ''): this provision then assigns the custom role "
            "and removes the built-in assignment."
        )
    if env.get("SCALER_ALLOWED_CLUSTERS", "").strip():
        raise HookError(
            "SCALER_ALLOWED_CLUSTERS is now derived from the clusters the app holds its role on. "
            "List the extra clusters as resource ids instead: azd env set SCALER_AKS_CLUSTER_IDS "
            "'[\"/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerService/"
            "managedClusters/<name>\"]', then azd env set SCALER_ALLOWED_CLUSTERS ''."
        )


def deploy_role(env: Mapping[str, str], clusters: list[str], subnets: list[str], az: Az) -> str:
    """Deploy the role template; returns the role definition id."""
    environment = env["AZURE_ENV_NAME"]
    output = az(
        [
            "deployment",
            "sub",
            "create",
            "--subscription",
            env["AZURE_SUBSCRIPTION_ID"],
            "--location",
            env["AZURE_LOCATION"],
            "--name",
            f"scaler-role-{environment}"[:64],
            "--template-file",
            str(ROLE_TEMPLATE),
            "--parameters",
            f"environmentName={environment}",
            f"clusterIds={json.dumps(clusters)}",
            f"subnetIds={json.dumps(subnets)}",
            "--query",
            "properties.outputs.roleDefinitionId.value",
            "--output",
            "tsv",
        ]
    )
    role_id = output.strip()
    if not role_id:
        raise HookError("infra/roles/scaler-role.bicep returned no roleDefinitionId")
    return role_id


def role_definitions(role_guid: str, subscription: str, az: Az) -> list[dict[str, object]]:
    """The role definition `role_guid` as seen from `subscription` (empty: not there, or not
    replicated there yet)."""
    listed = az(
        [
            "role",
            "definition",
            "list",
            "--name",
            role_guid,
            "--scope",
            f"/subscriptions/{subscription}",
            "--output",
            "json",
        ]
    )
    found: list[dict[str, object]] = json.loads(listed or "[]")
    return found


def wait_for_role(
    role_guid: str,
    subscriptions: Sequence[str],
    az: Az,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = ROLE_WAIT_SECONDS,
) -> None:
    for subscription in _unique_lower(subscriptions):
        seen_in_a_row = 0
        waited = 0.0
        while seen_in_a_row < ROLE_CONSISTENT_READS:
            found = role_definitions(role_guid, subscription, az)
            seen_in_a_row = seen_in_a_row + 1 if found else 0
            if seen_in_a_row >= ROLE_CONSISTENT_READS:
                break
            if waited >= timeout:
                raise HookError(
                    f"role {role_guid} is still not readable in subscription {subscription} "
                    f"after {int(timeout)} s; run azd provision again in a few minutes"
                )
            sleep(5)
            waited += 5


def assignments_at(scope: str, principal_id: str, az: Az) -> list[dict[str, str]]:
    """The principal's assignments made exactly at `scope` (not inherited ones)."""
    listed = json.loads(
        az(
            [
                "role",
                "assignment",
                "list",
                "--scope",
                scope,
                "--fill-principal-name",
                "false",
                "--fill-role-definition-name",
                "false",
                "--output",
                "json",
            ]
        )
        or "[]"
    )
    return [
        item
        for item in listed
        if str(item.get("principalId", "")).lower() == principal_id.lower()
        and str(item.get("scope", "")).lower() == scope.lower()
    ]


def remove_assignments(
    scopes: Sequence[str],
    principal_id: str,
    az: Az,
    keep_role_guid: str | None = None,
    only_role_guid: str | None = None,
) -> list[str]:
    """Delete the principal's assignments at these scopes, except of `keep_role_guid`, or
    only those of `only_role_guid`."""
    removed = []
    for scope in scopes:
        for item in assignments_at(scope, principal_id, az):
            role_guid = str(item.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
            if keep_role_guid and role_guid == keep_role_guid.lower():
                continue
            if only_role_guid and role_guid != only_role_guid.lower():
                continue
            az(["role", "assignment", "delete", "--ids", item["id"]])
            removed.append(item["id"])
    return removed


def preprovision(
    env: Mapping[str, str], az: Az = run_az, sleep: Callable[[float], None] = time.sleep
) -> None:
    check_settings(env)
    clusters = cluster_ids(env)
    subnets = subnet_ids(env)
    readers = tag_reader_scopes(env)
    platform_role = env.get("SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID", "").strip()
    if platform_role:
        role_id = platform_role
        print(f"scaler: using the platform team's role {role_id}")
    else:
        role_id = deploy_role(env, clusters, subnets, az)
        print(f"scaler: role {role_id} deployed; waiting until it has replicated")
        wait_for_role(
            role_id.rsplit("/", 1)[-1],
            [subscription_of(item) for item in clusters + subnets],
            az,
            sleep,
        )
    principal = env.get("SCALER_IDENTITY_PRINCIPAL_ID", "").strip()
    if not principal:
        return  # first provision: the identity has no assignments yet
    current = clusters + subnets
    dropped = [scope for scope in previous_scopes(env) if scope not in current]
    role_guid = role_id.rsplit("/", 1)[-1]
    removed = remove_assignments(dropped, principal, az)
    removed += remove_assignments(current, principal, az, keep_role_guid=role_guid)
    dropped_readers = [s for s in previous_reader_scopes(env) if s not in readers]
    removed += remove_assignments(dropped_readers, principal, az, only_role_guid=READER_ROLE_GUID)
    for item in removed:
        print(f"scaler: removed stale assignment {item}")


def predown(
    env: Mapping[str, str], az: Az = run_az, sleep: Callable[[float], None] = time.sleep
) -> None:
    principal = env.get("SCALER_IDENTITY_PRINCIPAL_ID", "").strip()
    scopes = previous_scopes(env)
    if principal:
        for item in remove_assignments(scopes, principal, az):
            print(f"scaler: removed {item}")
        readers = previous_reader_scopes(env)
        for item in remove_assignments(readers, principal, az, only_role_guid=READER_ROLE_GUID):
            print(f"scaler: removed {item}")
    if env.get("SCALER_AKS_PLATFORM_ROLE_DEFINITION_ID", "").strip():
        return  # the platform team's role outlives this environment
    role_id = env.get("SCALER_AKS_ROLE_DEFINITION_ID", "").strip()
    if not role_id:
        return
    role_guid = role_id.rsplit("/", 1)[-1]
    subscription = env.get("AZURE_SUBSCRIPTION_ID", "").strip() or subscription_of(role_id)
    exists = role_definitions(role_guid, subscription, az)
    if not exists:
        return
    # Deleting the assignments takes a moment to reach the role definition's check.
    for attempt in range(12):
        try:
            az(
                [
                    "role",
                    "definition",
                    "delete",
                    "--name",
                    role_guid,
                    "--scope",
                    f"/subscriptions/{subscription}",
                ]
            )
            break
        except HookError:
            if attempt == 11:
                raise
            sleep(10)
    print(f"scaler: removed role {role_guid}")


def main(argv: Sequence[str]) -> int:
    hooks = {"preprovision": preprovision, "predown": predown}
    if len(argv) != 2 or argv[1] not in hooks:
        print(f"usage: {argv[0]} {{{'|'.join(hooks)}}}", file=sys.stderr)
        return 2
    try:
        hooks[argv[1]](dict(os.environ))
    except HookError as error:
        print(f"scaler {argv[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
