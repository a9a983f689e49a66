"""Resource Manager and AKS throttle buckets, their time scale and their control API."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from local.aks_emulator.control import EmulatorControl, EmulatorProcess
from local.aks_emulator.throttle import DEFAULT_LIMITS, Throttler, request_kind
from tests.emulator.clients import (
    CLIENT_ID,
    CLUSTER,
    CLUSTER_PATH,
    OTHER_CLIENT_ID,
    RG,
    SUB,
    Client,
    aks_client,
    use_emulator_identity,
)

PROVIDER_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService"
SECOND_PATH = f"{PROVIDER_PATH}/managedClusters/aks-second"
SUB_LIST = f"/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
RG_LIST = f"{PROVIDER_PATH}/managedClusters"
READS = "x-ms-ratelimit-remaining-subscription-reads"
WRITES = "x-ms-ratelimit-remaining-subscription-writes"


def freeze_refill(control: EmulatorControl) -> None:
    """Real limits, but time nearly stands still for the buckets: counts come out exact."""
    control.set_throttle_time_scale(0.001)


@pytest.fixture
def client(emulator: EmulatorProcess, control: EmulatorControl) -> Client:
    return Client(emulator)


def error(response: requests.Response) -> dict[str, str]:
    err: dict[str, str] = response.json()["error"]
    return err


def assert_aks_throttled(response: requests.Response, handler: str, retry_after: int) -> None:
    assert response.status_code == 429
    assert error(response)["code"] == "Throttled"
    seconds = int(response.headers["Retry-After"])
    assert retry_after - 2 <= seconds <= retry_after
    assert error(response)["message"].startswith(
        f"The {handler} request limit has been exceeded for SubID='{SUB}', "
        f"please retry again in {seconds} seconds."
    )


# --- the pure model ----------------------------------------------------------------------------


def test_bucket_math_with_a_fake_clock() -> None:
    throttle = Throttler()
    kind = request_kind("pool", "PUT", {"sub": SUB, "rg": RG, "cluster": CLUSTER, "pool": "b"})
    assert [throttle.aks(kind, SUB, 100.0).allowed for _ in range(20)] == [True] * 20
    refused = throttle.aks(kind, SUB, 100.0)
    assert (refused.allowed, refused.retry_after, refused.throttled_by) == (
        False,
        60,
        "aks_put_agent_pool",
    )
    assert "x-ms-retry-after-ms" not in refused.headers  # real time: Retry-After only
    assert throttle.aks(kind, SUB, 130.0).retry_after == 30
    assert throttle.aks(kind, SUB, 160.0).allowed  # one token a minute
    assert not throttle.aks(kind, SUB, 160.0).allowed


def test_time_scale_changes_keep_what_refilled_so_far() -> None:
    throttle = Throttler(time_scale=60)
    kind = request_kind("pool", "PUT", {"sub": SUB, "rg": RG, "cluster": CLUSTER, "pool": "b"})
    for _ in range(20):
        throttle.aks(kind, SUB, 0.0)
    refused = throttle.aks(kind, SUB, 0.0)
    assert (refused.retry_after, refused.headers["x-ms-retry-after-ms"]) == (1, "1000")
    throttle.set_time_scale(1, 0.5)  # half a token refilled at x60
    assert throttle.aks(kind, SUB, 0.5).retry_after == 30  # the other half at x1
    assert throttle.aks(kind, SUB, 30.5).allowed


def test_arm_counts_per_principal_and_globally() -> None:
    throttle = Throttler()
    throttle.set_limits({"arm_reads": {"burst": 2, "refill_per_second": 0}})
    first = throttle.arm("GET", SUB, "a", 0.0)
    assert first.headers == {READS: "1", "x-ms-ratelimit-remaining-subscription-global-reads": "29"}
    assert throttle.arm("GET", SUB, "a", 0.0).allowed
    refused = throttle.arm("GET", SUB, "a", 0.0)
    assert (refused.allowed, refused.throttled_by) == (False, "arm_reads")
    assert refused.headers["Retry-After"] == "3600"  # a bucket that never refills
    assert throttle.arm("GET", SUB, "b", 0.0).allowed  # another principal has its own bucket
    assert throttle.arm("GET", "other-sub", "a", 0.0).allowed  # and another subscription
    assert throttle.arm("PUT", SUB, "a", 0.0).headers[WRITES] == "199"


def test_limits_match_the_documented_numbers() -> None:
    numbers = {
        name: (limit.burst, limit.refill_per_second) for name, limit in DEFAULT_LIMITS.items()
    }
    assert numbers == {
        "arm_reads": (250, 25),
        "arm_writes": (200, 10),
        "arm_deletes": (200, 10),
        "aks_put_agent_pool": (20, 1 / 60),
        "aks_put_managed_cluster": (20, 1 / 60),
        "aks_get_managed_cluster": (60, 1),
        "aks_get_operation_status": (200, 2),
        "aks_list_managed_clusters_subscription": (500, 1),
        "aks_list_managed_clusters_resource_group": (60, 1),
        "aks_other": (60, 1),
        "resource_graph": (15, 3),  # a fixed window: 15 queries per 5 s (test_resource_graph.py)
    }


# --- AKS buckets over HTTPS --------------------------------------------------------------------


def test_put_agent_pool_bucket_is_per_pool(client: Client, control: EmulatorControl) -> None:
    sent, throttled = client.until_throttled(lambda i: client.put_pool("batch", 3 + i % 2), 20)
    assert sent == 20
    assert_aks_throttled(throttled, "PutAgentPoolHandler.PUT", 60)
    assert "For more information, please visit aka.ms/aks/throttling" in error(throttled)["message"]
    assert 179 <= int(throttled.headers[WRITES]) < 200  # Resource Manager passed it on
    assert control.pool(RG, CLUSTER, "batch")["count"] == 4  # the refused write changed nothing
    assert client.put_pool("web", 5).status_code == 200  # other pools have their own bucket
    assert client.put_pool("batch", 3, SECOND_PATH).status_code == 200

    assert control.count(kind="PutAgentPool") == 23
    assert control.count(kind="PutAgentPool", status=429, throttled=True) == 1
    (entry,) = [e for e in control.writes() if e["status"] == 429]
    assert (entry["throttled"], entry["fault"]) == ("aks_put_agent_pool", None)
    stats = control.stats()
    assert stats["by_kind"]["PutAgentPool"] == {
        "total": 23,
        "throttled": 1,
        "by_status": {"200": 22, "429": 1},
    }
    assert stats["throttled_by_bucket"] == {"aks_put_agent_pool": 1}
    assert (stats["throttled"], stats["status_429"]) == (1, 1)


def test_put_agent_pool_refills_under_a_time_scale(
    client: Client, control: EmulatorControl
) -> None:
    control.set_throttle_time_scale(60)  # 1 per minute acts as 1 per second
    sent, throttled = client.until_throttled(lambda i: client.put_pool("batch", 3 + i % 2), 20)
    assert sent == 20  # the burst does not scale
    assert throttled.headers["Retry-After"] == "1"
    assert 0 < int(throttled.headers["x-ms-retry-after-ms"]) <= 1000
    assert "please retry again in 1 seconds" in error(throttled)["message"]
    time.sleep(1.1)
    assert client.put_pool("batch", 5).status_code == 200
    assert client.put_pool("batch", 6).status_code == 429


def test_get_managed_cluster_bucket_is_per_cluster(client: Client) -> None:
    client.until_throttled(lambda _: client.get(CLUSTER_PATH), 60, slack=5)
    throttled = client.get(CLUSTER_PATH)
    assert_aks_throttled(throttled, "GetManagedClusterHandler.GET", 1)
    assert int(throttled.headers[READS]) < 250
    assert client.get(SECOND_PATH).status_code == 200
    assert client.get(f"{CLUSTER_PATH}/agentPools").status_code == 200  # another bucket


def test_other_apis_share_one_bucket_per_subscription(
    client: Client, control: EmulatorControl
) -> None:
    def send(i: int) -> requests.Response:
        if i % 2:
            return client.get(f"{CLUSTER_PATH}/agentPools/batch")
        return client.get(f"{SECOND_PATH}/agentPools")

    sent, throttled = client.until_throttled(send, 60, slack=5)
    handler = "GetAgentPoolHandler.GET" if sent % 2 else "ListAgentPoolsHandler.GET"
    assert_aks_throttled(throttled, handler, 1)
    assert client.get(CLUSTER_PATH).status_code == 200  # GET managedCluster has its own
    stats = control.stats()["by_kind"]
    assert stats["ListAgentPools"]["total"] + stats["GetAgentPool"]["total"] == sent + 1
    assert stats["ListAgentPools"]["throttled"] + stats["GetAgentPool"]["throttled"] == 1


def test_list_managed_clusters_per_resource_group(client: Client) -> None:
    _, throttled = client.until_throttled(lambda _: client.get(RG_LIST), 60, slack=5)
    assert_aks_throttled(throttled, "ListManagedClustersByResourceGroupHandler.GET", 1)
    assert client.get(SUB_LIST).status_code == 200


def test_arm_reads_then_list_managed_clusters_per_subscription(
    client: Client, emulator: EmulatorProcess, control: EmulatorControl
) -> None:
    freeze_refill(control)
    # One principal runs out of Resource Manager reads (250) before AKS's list bucket (500).
    sent, throttled = client.until_throttled(lambda _: client.get(SUB_LIST), 250)
    assert sent == 250
    assert throttled.status_code == 429
    assert error(throttled)["code"] == "SubscriptionRequestsThrottled"
    seconds = throttled.headers["Retry-After"]
    assert error(throttled)["message"] == (
        f"Number of read requests for subscription '{SUB}' exceeded the limit. "
        f"Please try again after '{seconds}' seconds."
    )
    assert throttled.headers[READS] == "0"
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3500"
    # Other principals have their own Resource Manager buckets; AKS's is the subscription's.
    second = Client(emulator, OTHER_CLIENT_ID)
    assert {second.get(SUB_LIST).status_code for _ in range(250)} == {200}
    third = Client(emulator, "33333333-2222-3333-4444-555555555555")
    assert_aks_throttled(third.get(SUB_LIST), "ListManagedClustersHandler.GET", 1000)
    assert control.stats()["throttled_by_bucket"] == {
        "arm_reads": 1,
        "aks_list_managed_clusters_subscription": 1,
    }


def test_operation_status_bucket(client: Client) -> None:
    operation = client.put_pool("batch", 3).headers["Azure-AsyncOperation"]
    _, throttled = client.until_throttled(lambda _: client.get(operation), 200, slack=10)
    assert_aks_throttled(throttled, "GetOperationStatusHandler.GET", 1)


def test_put_managed_cluster_bucket_comes_before_the_emulators_405(client: Client) -> None:
    sent, throttled = client.until_throttled(
        lambda _: client.request("PUT", CLUSTER_PATH, {"location": "westeurope"}), 20
    )
    assert sent == 20
    assert_aks_throttled(throttled, "PutManagedClusterHandler.PUT", 60)
    assert client.request("PUT", SECOND_PATH, {}).status_code == 405


def test_sdk_sees_aks_throttling(
    emulator: EmulatorProcess, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_emulator_identity(emulator, monkeypatch)
    sdk = aks_client(emulator, SUB)
    control.set_limits({"aks_other": {"burst": 2, "refill_per_second": 0.5}})
    sdk.agent_pools.get(RG, CLUSTER, "batch")
    list(sdk.agent_pools.list(RG, CLUSTER))
    with pytest.raises(HttpResponseError) as info:  # azure-core does not retry a 429 for ever
        sdk.agent_pools.get(RG, CLUSTER, "batch", retry_total=0)
    assert info.value.status_code == 429
    assert info.value.error is not None and info.value.error.code == "Throttled"
    assert info.value.response is not None
    assert info.value.response.headers["Retry-After"] == "2"


# --- Resource Manager --------------------------------------------------------------------------


def test_arm_headers_on_every_answer(client: Client, control: EmulatorControl) -> None:
    freeze_refill(control)
    first, second = client.get(CLUSTER_PATH), client.get(f"{CLUSTER_PATH}/agentPools/nope")
    assert (first.headers[READS], second.headers[READS]) == ("249", "248")
    assert second.status_code == 404
    assert first.headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3749"
    assert WRITES not in first.headers
    write = client.put_pool("batch", 3)
    assert (write.headers[WRITES], READS in write.headers) == ("199", False)
    refused = client.put_pool("system", 0)
    assert (refused.status_code, refused.headers[WRITES]) == (400, "198")
    delete = client.request("DELETE", f"{CLUSTER_PATH}/agentPools/batch")
    assert (
        delete.status_code,
        delete.headers["x-ms-ratelimit-remaining-subscription-deletes"],
    ) == (
        405,
        "199",
    )
    tenant = client.get("/providers/Microsoft.ContainerService/operations")
    assert tenant.headers["x-ms-ratelimit-remaining-tenant-reads"] == "249"
    assert client.get(CLUSTER_PATH).headers[READS] == "247"  # tenant reads are another bucket


def test_arm_writes_bucket(client: Client, control: EmulatorControl) -> None:
    control.set_limits({"aks_put_agent_pool": {"burst": 1000}})  # let Resource Manager's show
    _, throttled = client.until_throttled(
        lambda i: client.put_pool("batch", 3 + i % 2), 200, slack=30
    )
    assert error(throttled)["code"] == "SubscriptionRequestsThrottled"
    assert "Number of write requests" in error(throttled)["message"]
    assert (throttled.headers[WRITES], throttled.headers["Retry-After"]) == ("0", "1")
    assert client.get(CLUSTER_PATH).status_code == 200  # reads are another bucket
    time.sleep(0.15)  # 10 per second
    assert client.put_pool("batch", 7).status_code == 200


def test_arm_deletes_bucket(client: Client, control: EmulatorControl) -> None:
    control.set_limits({"arm_deletes": {"burst": 2, "refill_per_second": 0.5}})
    path = f"{CLUSTER_PATH}/agentPools/batch"
    assert [client.request("DELETE", path).status_code for _ in range(2)] == [405, 405]
    throttled = client.request("DELETE", path)
    assert throttled.status_code == 429
    assert "Number of delete requests" in error(throttled)["message"]
    assert throttled.headers["Retry-After"] == "2"


# --- control API -------------------------------------------------------------------------------


def test_reset_refills_buckets_and_restores_settings(
    client: Client, control: EmulatorControl
) -> None:
    control.set_config(throttle_time_scale=5, list_page_size=1)
    control.set_limits({"aks_put_agent_pool": {"burst": 1}})
    assert client.put_pool("batch", 3).status_code == 200
    assert client.put_pool("batch", 4).status_code == 429
    control.reset()
    assert control.config() == {
        "operation_seconds": 0.0,
        "throttling": True,
        "throttle_time_scale": 1.0,
        "list_page_size": 100,
    }
    assert control.throttle()["limits"]["aks_put_agent_pool"]["burst"] == 20
    assert control.throttle()["buckets"] == []
    assert client.put_pool("batch", 4).status_code == 200


def test_throttling_off_and_on(client: Client, control: EmulatorControl) -> None:
    control.set_throttling(False)
    assert control.throttle()["enabled"] is False
    answers = [client.put_pool("batch", 3 + i % 2) for i in range(25)]
    assert {a.status_code for a in answers} == {200}
    assert answers[-1].headers[WRITES] == "200"  # nothing is counted: full buckets
    control.set_throttling(True)
    sent, _ = client.until_throttled(lambda i: client.put_pool("batch", 3 + i % 2), 20)
    assert sent == 20


def test_refill_buckets_and_inspect_them(client: Client, control: EmulatorControl) -> None:
    client.until_throttled(lambda i: client.put_pool("batch", 3 + i % 2), 20)
    buckets = {b["limit"]: b for b in control.throttle()["buckets"]}
    assert buckets["aks_put_agent_pool"]["scope"] == [SUB, RG, CLUSTER, "batch"]
    assert buckets["aks_put_agent_pool"]["tokens"] < 1
    assert buckets["arm_writes"]["scope"] == ["subscription", SUB, CLIENT_ID]
    control.refill_buckets()
    assert client.put_pool("batch", 5).status_code == 200


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.set_config(throttle_time_scale=0), "throttle_time_scale"),
        (lambda c: c.set_config(throttling="yes"), "throttling"),
        (lambda c: c.set_config(list_page_size=0), "list_page_size"),
        (lambda c: c.set_config(nope=1), "nothing else"),
        (lambda c: c.set_limits({"aks_nope": {"burst": 1}}), "unknown limit"),
        (lambda c: c.set_limits({"aks_other": {"burst": 0}}), "at least 1"),
        (lambda c: c._call("POST", "reset", {"fleet": {"subscriptions": 0}}), "subscriptions"),
    ],
)
def test_bad_settings_are_refused(control: EmulatorControl, call: Any, match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        call(control)
    assert control.config()["throttle_time_scale"] == 1.0
    assert control.throttle()["limits"]["aks_other"]["burst"] == 60


def test_process_flags() -> None:
    with EmulatorProcess(throttling=False, throttle_time_scale=60, list_page_size=7) as emu:
        config = emu.control.config()
        assert (config["throttling"], config["throttle_time_scale"]) == (False, 60.0)
        assert config["list_page_size"] == 7
        emu.control.set_config(throttling=True)
        emu.control.reset()  # back to the flags, not to the built-in defaults
        assert emu.control.config()["throttling"] is False
