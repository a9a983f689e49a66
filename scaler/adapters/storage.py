"""The app's storage account, as the Functions host configures it (`AzureWebJobsStorage`):
a connection string locally (Azurite), identity-based `AzureWebJobsStorage__*` settings in
Azure. One function builds the queue, table and blob clients alike from those settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential

from scaler.settings import STORAGE_CONNECTION

Client = TypeVar("Client")


def storage_client(
    client_class: type[Client], service: str, env: Mapping[str, str], credential: TokenCredential
) -> Client:
    """`service` is "queue", "table" or "blob"; `client_class` the SDK's service client."""
    cls: Any = client_class
    connection_string = env.get(STORAGE_CONNECTION)
    if connection_string:
        return cls.from_connection_string(connection_string)  # type: ignore[no-any-return]
    endpoint = _endpoint(env, service)
    if endpoint is None:
        raise RuntimeError(
            f"no {service} storage configured: set {STORAGE_CONNECTION} (a connection string, "
            f"for Azurite) or {STORAGE_CONNECTION}__{service}ServiceUri (identity-based, in Azure)"
        )
    return cls(endpoint, credential=credential)  # type: ignore[no-any-return]


def _endpoint(env: Mapping[str, str], service: str) -> str | None:
    """`AzureWebJobsStorage__queueServiceUri` (or `__accountName`) → the service URL."""
    explicit = env.get(f"{STORAGE_CONNECTION}__{service}ServiceUri")
    if explicit:
        return explicit
    account = env.get(f"{STORAGE_CONNECTION}__accountName")
    return f"https://{account}.{service}.core.windows.net" if account else None
