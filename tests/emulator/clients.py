"""What the emulator tests share besides fixtures: the seed's names, the principals, and the
plain-HTTPS `Client` (one principal, a token from the emulator's /msi/token)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.identity import ManagedIdentityCredential
from azure.mgmt.containerservice import ContainerServiceClient

from local.aks_emulator.control import EmulatorProcess

# The default seed (local/aks_emulator/seed.json).
SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-demo"
CLUSTER = "aks-demo"
CLUSTER_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService"
    f"/managedClusters/{CLUSTER}"
)
# The app's user-assigned identity, and a second principal with buckets and quotas of its own.
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
OTHER_CLIENT_ID = "99999999-2222-3333-4444-555555555555"
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01"
ARM_API_VERSION = "2026-08-01"


def use_emulator_identity(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point azure-identity and azure-core at the emulator for the rest of the test.

    azure-identity reads these when the credential is built; azure-core (requests) reads
    REQUESTS_CA_BUNDLE on every call, so they stay patched for the whole test."""
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)


def aks_client(
    emulator: EmulatorProcess, subscription: str = SUB, **options: Any
) -> ContainerServiceClient:
    """The real AKS SDK client with a managed-identity credential for CLIENT_ID, against the
    emulator (call `use_emulator_identity` first)."""
    credential = ManagedIdentityCredential(client_id=CLIENT_ID)
    return ContainerServiceClient(
        credential, subscription, base_url=emulator.arm_endpoint, **options
    )


class Client:
    """Plain HTTPS calls as one principal: a token issued for `client_id` (None: the
    system-assigned identity, a token asked for without client_id)."""

    def __init__(self, emu: EmulatorProcess, client_id: str | None = CLIENT_ID) -> None:
        self.emu = emu
        self.client_id = client_id
        self.session = requests.Session()
        self.session.trust_env = False  # the host's REQUESTS_CA_BUNDLE would override verify=
        self.token = self.get_token().json()["access_token"]

    def get_token(self, header: str | None = "right") -> requests.Response:
        """Ask /msi/token with the right X-IDENTITY-HEADER, another value, or none (None)."""
        params = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
        if self.client_id is not None:
            params["client_id"] = self.client_id
        headers: dict[str, str] = {}
        if header is not None:
            headers["X-IDENTITY-HEADER"] = self.emu.identity_header if header == "right" else header
        return self.session.get(
            self.emu.identity_endpoint,
            params=params,
            headers=headers,
            verify=self.emu.ca_bundle,
            timeout=10,
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        if_match: str | None = None,
        token: str | None = "valid",
    ) -> requests.Response:
        """`path` is below the ARM endpoint or a whole https:// URL; the AKS api-version is
        added when it names none. `token`: "valid" (this principal's), another value, or None
        (no Authorization header)."""
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'valid' else token}"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        url = path if path.startswith("https://") else self.emu.arm_endpoint + path
        if "api-version" not in url:
            url += f"?api-version={ARM_API_VERSION}"
        return self.session.request(
            method, url, json=body, headers=headers, verify=self.emu.ca_bundle, timeout=10
        )

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    def pages(self, path: str) -> list[dict[str, Any]]:
        """Every page of a list, following nextLink."""
        pages, url = [], path
        while url:
            response = self.get(url)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            url = response.json().get("nextLink")
        return pages

    # --- agent pools ---------------------------------------------------------------------------

    def pool(self, name: str, cluster_path: str = CLUSTER_PATH) -> dict[str, Any]:
        response = self.request("GET", f"{cluster_path}/agentPools/{name}")
        assert response.status_code == 200, response.text
        pool: dict[str, Any] = response.json()
        return pool

    def put(
        self,
        name: str,
        properties: dict[str, Any],
        etag: str | None = "current",
        cluster_path: str = CLUSTER_PATH,
    ) -> requests.Response:
        """PUT a pool; If-Match is its current eTag ("current"), this one, or none (None)."""
        if etag == "current":
            etag = self.pool(name, cluster_path)["properties"]["eTag"]
        return self.request(
            "PUT", f"{cluster_path}/agentPools/{name}", {"properties": properties}, if_match=etag
        )

    def put_pool(
        self, pool: str, count: int, cluster_path: str = CLUSTER_PATH
    ) -> requests.Response:
        """PUT a pool's count without If-Match."""
        return self.put(pool, {"count": count}, etag=None, cluster_path=cluster_path)

    def until_throttled(
        self, send: Callable[[int], requests.Response], burst: int, slack: int = 0
    ) -> tuple[int, requests.Response]:
        """Send until the first 429: (answers before it, the 429). Expects `burst` answers, or
        up to `slack` more for the tokens that refill while they are sent."""
        for sent in range(burst + slack + 1):
            response = send(sent)
            if response.status_code == 429:
                assert sent >= burst, f"429 after {sent} requests, expected {burst}"
                return sent, response
            assert response.status_code < 400 or response.status_code == 405, response.text
        raise AssertionError(f"no 429 after {burst + slack + 1} requests")

    # --- Resource Graph ------------------------------------------------------------------------

    def query(self, query: str, **extra: Any) -> requests.Response:
        return self.request("POST", GRAPH_PATH, {"query": query, **extra})

    def names(self, query: str, **extra: Any) -> list[str]:
        response = self.query(query, **extra)
        assert response.status_code == 200, response.text
        return [row["name"] for row in response.json()["data"]]
