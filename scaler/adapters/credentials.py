"""Which identity the app is. One credential per process, shared by every client."""

from __future__ import annotations

from collections.abc import Mapping

from azure.core.credentials import TokenCredential


def build_credential(env: Mapping[str, str], client_id: str) -> TokenCredential:
    """In Azure (and against the local emulator) the platform's managed-identity endpoint is
    set, and the app is its user-assigned identity: nothing else is tried, so a misconfigured
    app fails loudly instead of falling back to some other login. Elsewhere (a developer
    running `python -m scaler plan`), DefaultAzureCredential finds the developer's login."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER"):
        # One quick retry of the token request; beyond that the queue's backoff takes over.
        return ManagedIdentityCredential(client_id=client_id or None, retry_total=1)
    return DefaultAzureCredential(managed_identity_client_id=client_id or None)
