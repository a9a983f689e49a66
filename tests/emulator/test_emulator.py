"""The AKS emulator as a real process, driven over HTTPS by requests and by the Azure SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import ManagedIdentityCredential
from azure.mgmt.containerservice import ContainerServiceClient

from local.aks_emulator import start_server
from local.aks_emulator.control import REPO_ROOT, EmulatorControl, EmulatorProcess
from tests.emulator.clients import (
    CLIENT_ID,
    CLUSTER,
    CLUSTER_PATH,
    RG,
    SUB,
    Client,
    aks_client,
    use_emulator_identity,
)

SEED_ETAGS = {
    "system": "8e0a1c44-52b1-4f7e-b0c9-1d6f2a7e3b10",
    "batch": "2b7d9e61-0c3a-4e8f-9d12-6a5b4c3e2f11",
    "web": "5f3c1a90-e2d4-4b6a-8c7e-9f0d1b2a3c12",
    "spot": "a4e6b2c8-1d3f-4a5b-9c7d-e8f0a1b2c313",
    "gpu": "0c9b8a7d-6e5f-4d3c-8b2a-1f0e9d8c7b14",
}
OPERATION_SECONDS = 0.5  # the emulator fixture's (conftest.py)


@pytest.fixture
def arm(client: Client) -> Client:
    """This module's name for the shared `client`: Resource Manager calls as CLIENT_ID."""
    return client


@pytest.fixture
def sdk(
    emulator: EmulatorProcess, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> ContainerServiceClient:
    use_emulator_identity(emulator, monkeypatch)
    return aks_client(emulator, retry_total=0)


def error_code(response: requests.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- shapes ----------------------------------------------------------------------------------


def test_list_pools_shape_and_etags(arm: Client) -> None:
    response = arm.request("GET", f"{CLUSTER_PATH}/agentPools")
    assert response.status_code == 200
    pools = {p["name"]: p for p in response.json()["value"]}
    assert list(pools) == ["system", "batch", "web", "spot", "gpu"]
    for name, pool in pools.items():
        assert pool["type"] == "Microsoft.ContainerService/managedClusters/agentPools"
        assert pool["id"].endswith(f"/managedClusters/{CLUSTER}/agentPools/{name}")
        assert pool["properties"]["eTag"] == SEED_ETAGS[name]
        assert pool["properties"]["provisioningState"] == "Succeeded"
    props = {name: pool["properties"] for name, pool in pools.items()}
    assert (props["system"]["mode"], props["system"]["count"]) == ("System", 3)
    assert (props["batch"]["count"], props["batch"]["enableAutoScaling"]) == (2, False)
    assert (props["web"]["minCount"], props["web"]["maxCount"], props["web"]["count"]) == (2, 10, 4)
    assert (props["spot"]["scaleSetPriority"], props["spot"]["count"]) == ("Spot", 0)
    assert (props["gpu"]["powerState"]["code"], props["gpu"]["count"]) == ("Stopped", 0)


def test_cluster_shape_and_case_insensitive_path(arm: Client) -> None:
    lower = CLUSTER_PATH.replace("resourceGroups", "resourcegroups").replace(
        "managedClusters", "MANAGEDCLUSTERS"
    )
    response = arm.request("GET", lower)
    assert response.status_code == 200
    cluster = response.json()
    assert (cluster["name"], cluster["location"]) == (CLUSTER, "westeurope")
    profiles = {p["name"]: p for p in cluster["properties"]["agentPoolProfiles"]}
    assert profiles["web"]["eTag"] == SEED_ETAGS["web"]
    assert profiles["system"]["count"] == 3

    second = arm.request("GET", CLUSTER_PATH.replace(CLUSTER, "aks-second") + "/agentPools")
    assert {p["name"]: p["properties"]["count"] for p in second.json()["value"]} == {
        "system": 3,
        "batch": 1,
    }
    assert second.json()["value"][0]["properties"]["mode"] == "System"


@pytest.mark.parametrize(
    "path",
    [
        CLUSTER_PATH.replace(CLUSTER, "aks-missing"),
        CLUSTER_PATH + "/agentPools/nope",
        CLUSTER_PATH.replace(RG, "rg-missing") + "/agentPools",
        CLUSTER_PATH.replace(SUB, "99999999-0000-0000-0000-000000000000") + "/agentPools",
    ],
)
def test_unknown_resources_are_404(arm: Client, path: str) -> None:
    response = arm.request("GET", path)
    assert response.status_code == 404
    assert error_code(response) == "ResourceNotFound"


# --- auth ------------------------------------------------------------------------------------


def test_arm_requires_an_emulator_token(arm: Client, control: EmulatorControl) -> None:
    missing = arm.request("GET", f"{CLUSTER_PATH}/agentPools", token=None)
    forged = arm.request("GET", f"{CLUSTER_PATH}/agentPools", token="not-issued-here")
    assert (missing.status_code, forged.status_code) == (401, 401)
    assert error_code(missing) == error_code(forged) == "InvalidAuthenticationToken"
    assert [e["status"] for e in control.requests_log()][-2:] == [401, 401]


def test_token_endpoint_checks_the_identity_header(arm: Client) -> None:
    good = arm.get_token()
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.azure.com"
    assert body["client_id"] == CLIENT_ID
    assert int(body["expires_on"]) > time.time() + 3600
    assert len(body["access_token"]) >= 32
    assert arm.get_token(header="wrong").status_code == 401
    assert arm.get_token(header=None).status_code == 401


def test_managed_identity_credential_in_a_subprocess(emulator: EmulatorProcess) -> None:
    code = (
        "from azure.identity import ManagedIdentityCredential\n"
        f"t = ManagedIdentityCredential(client_id='{CLIENT_ID}')"
        ".get_token('https://management.azure.com/.default')\n"
        "print(len(t.token), t.expires_on)\n"
    )
    env = {**os.environ, **emulator.env()}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    length, expires_on = result.stdout.split()
    assert int(length) >= 32 and int(expires_on) > time.time()


# --- the real SDK ----------------------------------------------------------------------------


def test_sdk_lists_pools_and_updates_with_if_match(
    sdk: ContainerServiceClient, control: EmulatorControl
) -> None:
    pools = {p.name: p for p in sdk.agent_pools.list(RG, CLUSTER)}
    assert {name: p.e_tag for name, p in pools.items()} == SEED_ETAGS
    batch = pools["batch"]
    batch.count = 5
    poller = sdk.agent_pools.begin_create_or_update(
        RG,
        CLUSTER,
        "batch",
        batch,
        etag=batch.e_tag,
        match_condition=MatchConditions.IfNotModified,
        polling=False,
    )
    result = poller.result()
    assert (result.count, result.provisioning_state) == (5, "Scaling")
    assert result.e_tag not in (None, SEED_ETAGS["batch"])

    writes = control.writes()
    assert len(writes) == 1
    assert writes[0]["status"] == 200
    assert writes[0]["if_match"] == SEED_ETAGS["batch"]
    assert writes[0]["body"]["properties"]["count"] == 5
    tokens = [e for e in control.requests_log() if e["path"] == "/msi/token"]
    assert tokens and tokens[0]["status"] == 200

    # A stale eTag is refused with 412, which the SDK maps for IfNotModified.
    control.wait_until_settled()
    with pytest.raises(ResourceModifiedError) as info:
        sdk.agent_pools.begin_create_or_update(
            RG,
            CLUSTER,
            "batch",
            batch,
            etag=SEED_ETAGS["batch"],
            match_condition=MatchConditions.IfNotModified,
            polling=False,
        )
    assert info.value.status_code == 412
    assert control.pool(RG, CLUSTER, "batch")["count"] == 5


def test_sdk_second_write_while_scaling_is_409(
    sdk: ContainerServiceClient, control: EmulatorControl
) -> None:
    control.set_operation_seconds(30)  # keep the first operation running for the whole test
    web = sdk.agent_pools.get(RG, CLUSTER, "web")
    web.min_count, web.max_count = 3, 8
    first = sdk.agent_pools.begin_create_or_update(RG, CLUSTER, "web", web, polling=False).result()
    assert first.provisioning_state == "Updating"

    again = sdk.agent_pools.get(RG, CLUSTER, "web")
    assert again.e_tag == first.e_tag
    again.max_count = 9
    with pytest.raises(HttpResponseError) as info:
        sdk.agent_pools.begin_create_or_update(
            RG,
            CLUSTER,
            "web",
            again,
            etag=again.e_tag,
            match_condition=MatchConditions.IfNotModified,
            polling=False,
        )
    assert info.value.status_code == 409
    assert info.value.error is not None and info.value.error.code == "OperationNotAllowed"
    assert [w["status"] for w in control.writes()] == [200, 409]
    assert control.writes()[0]["if_match"] is None  # accepted without If-Match, but visible


def test_sdk_poller_follows_the_operation_until_succeeded(sdk: ContainerServiceClient) -> None:
    batch = sdk.agent_pools.get(RG, CLUSTER, "batch")
    batch.count = 3
    started = time.monotonic()
    result = sdk.agent_pools.begin_create_or_update(
        RG, CLUSTER, "batch", batch, polling_interval=0.05
    ).result()
    assert (result.count, result.provisioning_state) == (3, "Succeeded")
    assert time.monotonic() - started >= OPERATION_SECONDS * 0.8


def test_operation_settles_after_operation_seconds(arm: Client, control: EmulatorControl) -> None:
    response = arm.put("batch", {"count": 4})
    assert response.status_code == 200
    operation_url = response.headers["Azure-AsyncOperation"]
    assert operation_url.startswith(arm.emu.arm_endpoint + f"/subscriptions/{SUB}/providers/")
    assert arm.request("GET", operation_url).json()["status"] == "InProgress"
    assert control.pool(RG, CLUSTER, "batch")["provisioningState"] == "Scaling"

    time.sleep(OPERATION_SECONDS + 0.1)
    done = arm.request("GET", operation_url).json()
    assert done["status"] == "Succeeded" and "endTime" in done
    assert arm.pool("batch")["properties"]["provisioningState"] == "Succeeded"
    assert arm.pool("batch")["properties"]["count"] == 4


# --- AKS rules -------------------------------------------------------------------------------


def test_stop_and_start_restore_the_count(arm: Client, control: EmulatorControl) -> None:
    stopped = arm.put("batch", {"powerState": {"code": "Stopped"}})
    assert stopped.status_code == 200
    props = stopped.json()["properties"]
    assert (props["count"], props["provisioningState"]) == (0, "Stopping")
    assert props["powerState"] == {"code": "Stopped"}
    control.wait_until_settled()

    # Stopping again is a no-op: 200, same eTag, no operation.
    etag = arm.pool("batch")["properties"]["eTag"]
    again = arm.put("batch", {"powerState": {"code": "Stopped"}})
    assert again.status_code == 200
    assert again.json()["properties"]["eTag"] == etag
    assert "Azure-AsyncOperation" not in again.headers

    started = arm.put("batch", {"powerState": {"code": "Running"}})
    assert started.status_code == 200
    props = started.json()["properties"]
    assert (props["count"], props["provisioningState"]) == (2, "Starting")
    assert props["eTag"] != etag

    # A pool stopped since the seed has no remembered count: it comes back with 1 node.
    gpu = arm.put("gpu", {"powerState": {"code": "Running"}})
    assert gpu.json()["properties"]["count"] == 1


def test_stopped_autoscaled_pool_keeps_its_bounds(arm: Client, control: EmulatorControl) -> None:
    arm.put("web", {"powerState": {"code": "Stopped"}})
    stopped = control.wait_until_settled()["rg-demo/aks-demo"]["web"]
    assert (stopped["count"], stopped["enableAutoScaling"]) == (0, True)
    assert (stopped["minCount"], stopped["maxCount"]) == (2, 10)
    started = arm.put("web", {"powerState": {"code": "Running"}}).json()["properties"]
    assert (started["count"], started["minCount"], started["maxCount"]) == (4, 2, 10)


@pytest.mark.parametrize(
    "properties",
    [
        {"powerState": {"code": "Stopped"}},
        {"count": 0},
        {"enableAutoScaling": True, "minCount": 0, "maxCount": 5},
    ],
)
def test_system_pool_keeps_a_running_node(arm: Client, properties: dict[str, Any]) -> None:
    response = arm.put("system", properties)
    assert response.status_code == 400
    assert error_code(response) == "InvalidParameter"
    assert arm.pool("system")["properties"]["eTag"] == SEED_ETAGS["system"]


def test_empty_user_pool_cannot_become_system(arm: Client) -> None:
    response = arm.put("spot", {"mode": "System"})  # spot has 0 nodes
    assert response.status_code == 400
    assert "at least 1 node" in response.json()["error"]["message"]
    assert arm.put("batch", {"mode": "System"}).status_code == 200


@pytest.mark.parametrize(
    "properties",
    [
        {"count": 20},  # outside web's 2..10
        {"count": 1},
        {"minCount": 6, "maxCount": 5},
        {"enableAutoScaling": True, "minCount": 0, "maxCount": 1001},
    ],
)
def test_autoscaled_pool_ranges(arm: Client, properties: dict[str, Any]) -> None:
    response = arm.put("web", properties)
    assert response.status_code == 400
    assert error_code(response) == "InvalidParameter"


def test_autoscaled_count_inside_bounds_and_unchanged_count_are_accepted(arm: Client) -> None:
    response = arm.put("web", {"count": 4, "enableAutoScaling": True, "minCount": 1, "maxCount": 5})
    assert response.status_code == 200
    props = response.json()["properties"]
    assert (props["count"], props["minCount"], props["maxCount"]) == (4, 1, 5)
    assert props["provisioningState"] == "Updating"


def test_count_range_for_user_pools(arm: Client) -> None:
    assert arm.put("batch", {"count": 1001}).status_code == 400
    assert arm.put("batch", {"count": -1}).status_code == 400
    assert arm.put("batch", {"count": 0}).status_code == 200


def test_scaling_a_stopped_pool_is_refused(arm: Client) -> None:
    response = arm.put("gpu", {"count": 2})
    assert response.status_code == 400
    assert "is stopped; start it before scaling" in response.json()["error"]["message"]
    bounds = arm.put("gpu", {"enableAutoScaling": True, "minCount": 1, "maxCount": 3})
    assert bounds.status_code == 400
    started = arm.put("gpu", {"powerState": {"code": "Running"}, "count": 2})
    assert started.status_code == 200
    assert started.json()["properties"]["count"] == 2


def test_spot_pools_stop_and_scale_to_zero_but_never_become_system(
    arm: Client, control: EmulatorControl
) -> None:
    assert arm.put("spot", {"count": 3}).status_code == 200
    control.wait_until_settled()
    assert arm.put("spot", {"count": 0}).status_code == 200
    control.wait_until_settled()
    assert arm.put("spot", {"powerState": {"code": "Stopped"}}).status_code == 200
    control.wait_until_settled()
    arm.put("spot", {"powerState": {"code": "Running"}})
    control.wait_until_settled()
    response = arm.put("spot", {"mode": "System", "count": 1})
    assert response.status_code == 400
    assert "Spot" in response.json()["error"]["message"]


def test_rule_order_412_before_409_before_400(arm: Client, control: EmulatorControl) -> None:
    control.force_pool(RG, CLUSTER, "system", provisioningState="Scaling")
    stale = arm.put("system", {"powerState": {"code": "Stopped"}}, etag=SEED_ETAGS["system"])
    assert stale.status_code == 412
    assert error_code(stale) == "PreconditionFailed"
    busy = arm.put("system", {"powerState": {"code": "Stopped"}})
    assert busy.status_code == 409
    assert error_code(busy) == "OperationNotAllowed"
    control.force_pool(RG, CLUSTER, "system", provisioningState="Succeeded")
    refused = arm.put("system", {"powerState": {"code": "Stopped"}})
    assert refused.status_code == 400
    assert arm.put("system", {"count": 4}, etag=None).status_code == 200
    assert control.writes()[-1]["if_match"] is None


def test_every_write_changes_the_etag(arm: Client, control: EmulatorControl) -> None:
    seen = {SEED_ETAGS["batch"]}
    for count in (3, 4, 5):
        response = arm.put("batch", {"count": count})
        assert response.status_code == 200
        seen.add(response.json()["properties"]["eTag"])
        control.wait_until_settled()
    assert len(seen) == 4


# --- faults ----------------------------------------------------------------------------------


def test_fault_429_with_retry_after(arm: Client, control: EmulatorControl) -> None:
    control.set_faults([{"kind": "429", "method": "PUT", "retry_after": 7, "times": 2}])
    assert arm.request("GET", f"{CLUSTER_PATH}/agentPools").status_code == 200  # method filter
    for _ in range(2):
        throttled = arm.put("batch", {"count": 3})
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "7"
        assert error_code(throttled) == "SubscriptionRequestsThrottled"
    assert arm.put("batch", {"count": 3}).status_code == 200  # times used up
    faults = [e["fault"] for e in control.writes()]
    assert faults == ["429", "429", None]


def test_fault_429_and_500_through_the_sdk(
    sdk: ContainerServiceClient, control: EmulatorControl
) -> None:
    control.set_faults(
        [
            {"kind": "429", "path_contains": "/agentPools/batch", "retry_after": 2},
            {"kind": "500", "path_contains": "/agentPools/batch"},
        ]
    )
    with pytest.raises(HttpResponseError) as throttled:
        sdk.agent_pools.get(RG, CLUSTER, "batch")
    assert throttled.value.status_code == 429
    assert throttled.value.response is not None
    assert throttled.value.response.headers["Retry-After"] == "2"
    with pytest.raises(HttpResponseError) as failed:
        sdk.agent_pools.get(RG, CLUSTER, "batch")
    assert failed.value.status_code == 500
    assert sdk.agent_pools.get(RG, CLUSTER, "batch").count == 2


def test_fault_409_and_412_on_demand(arm: Client) -> None:
    arm.emu.control.set_faults([{"kind": "409"}, {"kind": "412"}])
    assert arm.put("batch", {"count": 3}, etag=None).status_code == 409
    assert arm.put("batch", {"count": 3}, etag=None).status_code == 412


def test_fault_reset_closes_the_connection(
    arm: Client, sdk: ContainerServiceClient, control: EmulatorControl
) -> None:
    control.set_faults([{"kind": "reset", "path_contains": "agentPools", "times": 2}])
    with pytest.raises(requests.exceptions.ConnectionError):
        arm.request("GET", f"{CLUSTER_PATH}/agentPools")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        sdk.agent_pools.get(RG, CLUSTER, "batch")
    assert arm.request("GET", f"{CLUSTER_PATH}/agentPools").status_code == 200
    resets = [e for e in control.requests_log() if e["fault"] == "reset"]
    assert len(resets) == 2 and all(e["status"] is None for e in resets)


def test_fault_token_500(
    arm: Client,
    control: EmulatorControl,
    emulator: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control.set_faults([{"kind": "token_500", "times": 2}])
    assert arm.request("GET", f"{CLUSTER_PATH}/agentPools").status_code == 200  # ARM unaffected
    failed = arm.get_token()
    assert failed.status_code == 500
    assert failed.json()["statusCode"] == 500  # the App Service error shape MSAL reads
    use_emulator_identity(emulator, monkeypatch)
    # azure-identity reports a failing identity endpoint as CredentialUnavailableError.
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=CLIENT_ID, retry_total=0).get_token(
            "https://management.azure.com/.default"
        )
    assert arm.get_token().status_code == 200
    token_faults = [e["fault"] for e in control.requests_log() if e["path"] == "/msi/token"]
    assert token_faults[-3:] == ["token_500", "token_500", None]


def test_random_faults_repeat_with_the_same_seed(arm: Client, control: EmulatorControl) -> None:
    def run() -> list[int]:
        control.reset()
        control.set_faults([], random={"rate": 0.4, "seed": 42, "kinds": ["429", "500"]})
        return [arm.request("GET", f"{CLUSTER_PATH}/agentPools").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 429, 500}
    control.set_faults([], random={"rate": 0.4, "seed": 7, "kinds": ["429", "500"]})
    third = [arm.request("GET", f"{CLUSTER_PATH}/agentPools").status_code for _ in range(30)]
    assert third != first


def test_bad_fault_config_is_refused(control: EmulatorControl) -> None:
    with pytest.raises(RuntimeError, match="unknown fault kind"):
        control.set_faults([{"kind": "418"}])
    assert control.faults() == {"rules": [], "random": None}


# --- control API -----------------------------------------------------------------------------


def test_reset_restores_the_seed(arm: Client, control: EmulatorControl) -> None:
    control.set_operation_seconds(0)
    assert arm.put("batch", {"count": 9}).status_code == 200
    assert control.pool(RG, CLUSTER, "batch")["provisioningState"] == "Succeeded"
    control.set_faults([{"kind": "500", "times": 5}])
    control.reset()
    assert control.requests_log() == []
    assert control.faults()["rules"] == []
    assert control.pool(RG, CLUSTER, "batch")["count"] == 2
    assert control.pool(RG, CLUSTER, "batch")["eTag"] == SEED_ETAGS["batch"]
    arm.put("batch", {"count": 3})
    assert control.pool(RG, CLUSTER, "batch")["provisioningState"] == "Scaling"


def test_reset_with_a_custom_seed(arm: Client, control: EmulatorControl) -> None:
    seed = {
        "subscriptionId": SUB,
        "clusters": [
            {
                "resourceGroup": "rg-x",
                "name": "aks-x",
                "agentPools": [{"name": "only", "properties": {"mode": "System", "count": 1}}],
            }
        ],
    }
    control.reset(seed)
    assert list(control.pools()) == ["rg-x/aks-x"]
    control.reset()
    assert "rg-demo/aks-second" in control.pools()


def test_force_pool_and_clear_requests(arm: Client, control: EmulatorControl) -> None:
    forced = control.force_pool(RG, CLUSTER, "batch", settle_after=0.2, provisioningState="Scaling")
    assert forced["eTag"] != SEED_ETAGS["batch"]
    assert arm.pool("batch")["properties"]["provisioningState"] == "Scaling"
    assert control.wait_until_settled(timeout=5)["rg-demo/aks-demo"]["batch"]["count"] == 2
    control.force_pool(RG, CLUSTER, "batch", powerState={"code": "Stopped"}, restoreCount=5)
    assert control.pool(RG, CLUSTER, "batch")["count"] == 0
    assert arm.put("batch", {"powerState": {"code": "Running"}}).json()["properties"]["count"] == 5
    assert control.requests_log()
    control.clear_requests()
    assert control.requests_log() == []


def test_start_server_in_process() -> None:
    with start_server(operation_seconds=0) as emu:
        control = emu.control
        assert "rg-demo/aks-demo" in control.pools()
        assert Path(emu.ca_bundle).is_file()
        assert emu.env()["SCALER_ARM_ENDPOINT"] == emu.arm_endpoint


def test_process_prints_one_ready_line_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.aks_emulator", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert set(info) == {"arm_endpoint", "identity_endpoint", "identity_header", "ca_bundle"}
        assert info["ca_bundle"] == str(tmp_path / "ca.pem")
        assert info["identity_endpoint"] == info["arm_endpoint"] + "/msi/token"
        control = EmulatorControl(info["arm_endpoint"], info["ca_bundle"])
        assert control.pools()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert out == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_emulator_process_reports_a_failed_start(tmp_path: Path) -> None:
    broken = tmp_path / "seed.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"exited with .* before it was ready"):
        EmulatorProcess(seed=broken).start()


def test_emulator_process_stop_and_orphan_guard() -> None:
    emu = EmulatorProcess(operation_seconds=0.1).start()
    process = emu.process
    assert process is not None and process.stdin is not None
    assert emu.control.pools()
    # Closing stdin is what the parent's death looks like: the emulator exits by itself.
    process.stdin.close()
    assert process.wait(timeout=10) == 0
    emu.stop()
    assert emu.returncode == 0
    emu.stop()  # twice is fine
