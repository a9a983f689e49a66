"""GET and LIST managedClusters (paged), and generated fleets in several subscriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.aks_emulator.control import EmulatorControl, EmulatorProcess, fleet_seed
from local.aks_emulator.fleet import subscription_id
from tests.emulator.clients import RG, SUB, Client, aks_client, use_emulator_identity

OPERATION_SECONDS = 0.2  # the emulator fixture's (conftest.py)
PROVIDER = "Microsoft.ContainerService"
# The shared AKS fixtures sit beside the checkout (shared/ next to the repository's folder, as
# in CI's clone and the developers' machines).
FIXTURES = next(
    (
        candidate
        for candidate in (
            Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "arm",
            Path("/work/shared/fixtures/arm"),
        )
        if candidate.is_dir()
    ),
    Path("/work/shared/fixtures/arm"),
)
PROFILE_FIELDS = {
    "name",
    "count",
    "enableAutoScaling",
    "powerState",
    "mode",
    "provisioningState",
    "eTag",
}


def sub_list(sub: str) -> str:
    return f"/subscriptions/{sub}/providers/{PROVIDER}/managedClusters"


def rg_list(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{PROVIDER}/managedClusters"


@pytest.fixture
def client(emulator: EmulatorProcess, control: EmulatorControl) -> Client:
    """These calls go as the system-assigned identity (a token asked for without client_id)."""
    return Client(emulator, client_id=None)


def test_get_cluster_profiles_carry_the_pool_fields(client: Client) -> None:
    cluster = client.get(rg_list(SUB, RG) + "/aks-demo").json()
    fixture = json.loads((FIXTURES / "cluster.json").read_text()) if FIXTURES.exists() else None
    if fixture is not None:
        assert set(fixture) <= set(cluster)
        assert set(fixture["properties"]) <= set(cluster["properties"])
    profiles = {p["name"]: p for p in cluster["properties"]["agentPoolProfiles"]}
    for profile in profiles.values():
        assert set(profile) >= PROFILE_FIELDS
        if fixture is not None:
            (expected,) = [
                p
                for p in fixture["properties"]["agentPoolProfiles"]
                if p["name"] == profile["name"]
            ]
            assert set(expected) <= set(profile)
            assert {k: profile[k] for k in expected} == expected
    assert (profiles["web"]["minCount"], profiles["web"]["maxCount"]) == (2, 10)


def test_profiles_follow_writes(client: Client, emulator: EmulatorProcess) -> None:
    pool_path = rg_list(SUB, RG) + "/aks-demo/agentPools/batch"
    response = client.session.put(
        emulator.arm_endpoint + pool_path + "?api-version=2026-08-01",
        json={"properties": {"count": 5}},
        headers={"Authorization": f"Bearer {client.token}"},
        verify=emulator.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 200
    etag = response.json()["properties"]["eTag"]
    (page,) = client.pages(sub_list(SUB))
    (demo,) = [c for c in page["value"] if c["name"] == "aks-demo"]
    (batch,) = [p for p in demo["properties"]["agentPoolProfiles"] if p["name"] == "batch"]
    assert (batch["count"], batch["provisioningState"], batch["eTag"]) == (5, "Scaling", etag)


def test_list_by_subscription_and_resource_group(client: Client) -> None:
    (page,) = client.pages(sub_list(SUB))
    assert "nextLink" not in page
    assert [c["name"] for c in page["value"]] == ["aks-demo", "aks-second"]
    assert page["value"][0] == client.get(rg_list(SUB, RG) + "/aks-demo").json()
    (by_rg,) = client.pages(rg_list(SUB, "RG-DEMO"))
    assert by_rg["value"] == page["value"]


def test_list_pages_with_next_link(client: Client, control: EmulatorControl) -> None:
    control.set_config(list_page_size=1)
    pages = client.pages(sub_list(SUB))
    assert [[c["name"] for c in p["value"]] for p in pages] == [["aks-demo"], ["aks-second"]]
    assert pages[0]["nextLink"].startswith(client.emu.arm_endpoint + sub_list(SUB) + "?")
    assert "$skipToken=1" in pages[0]["nextLink"]
    assert "nextLink" not in pages[1]
    assert client.get(sub_list(SUB) + "?api-version=2026-08-01&$skipToken=x").status_code == 400


@pytest.mark.parametrize(
    "path",
    [sub_list("99999999-0000-0000-0000-000000000000"), rg_list(SUB, "rg-missing")],
)
def test_list_unknown_scope_is_404(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"


def test_fleet_in_several_subscriptions(client: Client, control: EmulatorControl) -> None:
    subs = control.seed_fleet(
        subscriptions=3, resource_groups=2, clusters_per_resource_group=4, pools_per_cluster=5
    )
    assert subs == [subscription_id(i) for i in (1, 2, 3)]
    control.set_config(list_page_size=3)
    for index, sub in enumerate(subs):
        pages = client.pages(sub_list(sub))
        assert [len(p["value"]) for p in pages] == [3, 3, 2]
        names = [c["name"] for p in pages for c in p["value"]]
        assert names[0] == f"aks-s{index}-g0-c0" and len(set(names)) == 8
        cluster = pages[0]["value"][0]
        assert cluster["id"].startswith(
            f"/subscriptions/{sub}/resourcegroups/rg-fleet-s{index}-g0/"
        )
        profiles = cluster["properties"]["agentPoolProfiles"]
        assert [p["name"] for p in profiles] == ["system", "batch", "web", "gpu", "batch-2"]
        assert [p["mode"] for p in profiles] == ["System"] + ["User"] * 4
        assert (profiles[3]["powerState"]["code"], profiles[3]["count"]) == ("Stopped", 0)
        by_rg = client.pages(rg_list(sub, f"rg-fleet-s{index}-g1"))
        assert [len(p["value"]) for p in by_rg] == [3, 1]
    assert client.get(sub_list(SUB)).status_code == 404  # the default seed is gone
    assert len(control.pools()) == 24

    control.seed_fleet(subscriptions=1, clusters_per_resource_group=1, keep_seed=True)
    assert sorted(control.pools()) == [
        "rg-demo/aks-demo",
        "rg-demo/aks-second",
        "rg-fleet-s0-g0/aks-s0-g0-c0",
        "rg-fleet-s0-g1/aks-s0-g1-c0",
    ]
    control.reset()
    assert sorted(control.pools()) == ["rg-demo/aks-demo", "rg-demo/aks-second"]


def test_fleet_seed_is_also_a_plain_seed(control: EmulatorControl) -> None:
    seed = fleet_seed(subscriptions=2, resource_groups=1, clusters_per_resource_group=2)
    assert len(seed["clusters"]) == 4
    control.reset(seed)
    assert len(control.pools()) == 4


def test_sdk_lists_every_page(
    emulator: EmulatorProcess, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_emulator_identity(emulator, monkeypatch)
    (sub,) = control.seed_fleet(subscriptions=1, resource_groups=2, clusters_per_resource_group=3)
    control.set_config(list_page_size=2)
    sdk = aks_client(emulator, sub)
    clusters = list(sdk.managed_clusters.list())
    assert len(clusters) == 6
    profile = clusters[0].agent_pool_profiles[0]
    assert (profile.name, profile.mode, profile.count, profile.provisioning_state) == (
        "system",
        "System",
        3,
        "Succeeded",
    )
    assert profile.e_tag and profile.power_state.code == "Running"
    in_rg = list(sdk.managed_clusters.list_by_resource_group("rg-fleet-s0-g1"))
    assert [c.name for c in in_rg] == ["aks-s0-g1-c0", "aks-s0-g1-c1", "aks-s0-g1-c2"]
    kinds = control.stats()["by_kind"]
    assert kinds["ListManagedClusters"]["total"] == 3
    assert kinds["ListManagedClustersByResourceGroup"]["total"] == 2
