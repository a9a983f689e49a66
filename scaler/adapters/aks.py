"""Resource Manager adapter for AKS: read a cluster's agent pools, list a subscription's
clusters with their pools, start one pool write.

Built once per process; one `ContainerServiceClient` per subscription, reused and closed with
the gateway, built as every ARM client of the app is (adapters/arm.py: no retries of 429, 409
or 5xx inside the SDK, the pacing policy on every attempt). Writes never wait for the
long-running operation (`polling=False`). A 401 makes the next call ask the identity for a new
token instead of its cached one (see `RenewableCredential`).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import AccessToken, TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPool,
    ManagedClusterAgentPoolProfile,
    PowerState,
)

from scaler.adapters.arm import client_options, cluster_ref, translated_errors
from scaler.domain.clusters import ClusterRef
from scaler.domain.planner import Action, PoolPlan
from scaler.domain.pools import PoolState
from scaler.service_layer.ports import ClusterListing


class RenewableCredential:
    """The app's credential, plus a way to refuse the token it has cached.

    On a 401 azure-core's BearerTokenCredentialPolicy forgets the token it holds and asks the
    credential again, but azure-identity's credentials answer from their own MSAL cache until
    the token is minutes from expiry: the refused token would come straight back, 401 after 401
    until the intent is poisoned. After `renew()`, the next token is asked for with a claims
    challenge for a token issued from now on (`nbf`, the form Resource Manager's own CAE
    challenges take); MSAL-based credentials (managed identity, workload identity, service
    principals) answer that by requesting a new token rather than reading their cache. A
    credential that cannot take claims (the Azure CLI in DefaultAzureCredential) says it is
    unavailable; it then gets a plain request, which asks the CLI again anyway.
    """

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._lock = threading.Lock()
        self._refused_at: float | None = None  # when a token was last refused, until renewed

    def renew(self) -> None:
        """The current token was refused: the next `get_token` must not come from a cache."""
        with self._lock:
            self._refused_at = time.time()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            refused_at = self._refused_at
        if refused_at is None or kwargs.get("claims"):
            return self._credential.get_token(*scopes, **kwargs)
        from azure.identity import CredentialUnavailableError

        try:
            fresh = {**kwargs, "claims": _issued_after(refused_at)}
            token = self._credential.get_token(*scopes, **fresh)
        except CredentialUnavailableError:
            token = self._credential.get_token(*scopes, **kwargs)
        with self._lock:
            if self._refused_at == refused_at:  # not refused again meanwhile
                self._refused_at = None
        return token


def _issued_after(moment: float) -> str:
    """A claims request for an access token not valid before `moment` (so: a new one)."""
    claims = {"access_token": {"nbf": {"essential": True, "value": str(int(moment))}}}
    return json.dumps(claims, separators=(",", ":"))


class AksGateway:
    def __init__(
        self,
        credential: TokenCredential,
        endpoint: str,
        scope: str,
        policies: Sequence[Any] = (),
    ) -> None:
        """`policies`: azure-core policies run on every HTTP attempt (the app's pacing of
        Resource Manager's limits, adapters/rate_limits.py)."""
        self._credential = RenewableCredential(credential)
        self._endpoint = endpoint
        self._scope = scope
        self._policies = list(policies)
        self._clients: dict[str, ContainerServiceClient] = {}
        self._lock = threading.Lock()

    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        client = self._client(cluster.subscription_id)
        with translated_errors(
            f"reading the pools of {cluster.short_name}", self._credential.renew
        ):
            return [
                _state(pool)
                for pool in client.agent_pools.list(cluster.resource_group, cluster.name)
            ]

    def list_clusters(self, subscription_id: str) -> list[ClusterListing]:
        client = self._client(subscription_id)
        listings = []
        with translated_errors(
            f"listing the clusters of subscription {subscription_id}", self._credential.renew
        ):
            for found in client.managed_clusters.list():  # the SDK follows nextLink
                cluster = cluster_ref(str(found.id or ""), subscription_id)
                if cluster is None:
                    continue
                pools = tuple(
                    _state(_agent_pool(profile)) for profile in found.agent_pool_profiles or ()
                )
                tags = {str(k): str(v) for k, v in (found.tags or {}).items()}
                listings.append(ClusterListing(cluster, tags, pools))
        return listings

    def snapshot(self, pools: Sequence[PoolState]) -> list[dict[str, Any]]:
        return [pool.handle.as_dict() for pool in pools if isinstance(pool.handle, AgentPool)]

    def restore(self, snapshot: object) -> list[PoolState]:
        if not isinstance(snapshot, list) or not all(isinstance(p, dict) for p in snapshot):
            raise ValueError("pools is not a list of agent pools")
        pools = [_state(AgentPool(raw)) for raw in snapshot]
        if any(p.name in ("", "None") or not p.etag for p in pools):
            raise ValueError("a pool has no name or no eTag")
        return pools

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        assert plan.before is not None and isinstance(plan.before.handle, AgentPool)
        body = _changed_body(plan.before.handle, plan)
        client = self._client(cluster.subscription_id)
        with translated_errors(
            f"updating pool {plan.name} of {cluster.short_name}", self._credential.renew
        ):
            poller = client.agent_pools.begin_create_or_update(
                cluster.resource_group,
                cluster.name,
                plan.name,
                body,
                etag=plan.before.etag,
                match_condition=MatchConditions.IfNotModified,
                polling=False,
            )
            return _state(poller.result())

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client(self, subscription_id: str) -> ContainerServiceClient:
        with self._lock:
            if subscription_id not in self._clients:
                self._clients[subscription_id] = ContainerServiceClient(
                    self._credential,
                    subscription_id,
                    **client_options(self._endpoint, self._scope, self._policies),
                )
            return self._clients[subscription_id]


def _agent_pool(profile: ManagedClusterAgentPoolProfile) -> AgentPool:
    """A pool as LIST managedClusters shows it (`agentPoolProfiles`: the same properties and
    eTag, flat) in the shape `agent_pools` reads and writes."""
    properties = profile.as_dict()
    name = properties.pop("name", None)
    return AgentPool({"name": name, "properties": properties})


def _changed_body(current: AgentPool, plan: PoolPlan) -> AgentPool:
    """The pool as read, with only the planned fields changed (read-only ones are dropped by
    the SDK when it serialises the request)."""
    body = copy.deepcopy(current)
    if plan.action is Action.SCALE:
        body.count = plan.target_count
    elif plan.action is Action.AUTOSCALE:
        body.enable_auto_scaling = True
        body.min_count = plan.requested.min_count  # type: ignore[union-attr]
        body.max_count = plan.requested.max_count  # type: ignore[union-attr]
        body.count = plan.target_count
    elif plan.action is Action.STOP:
        body.power_state = PowerState(code="Stopped")
    elif plan.action is Action.START:
        body.power_state = PowerState(code="Running")
    return body


def _state(pool: AgentPool) -> PoolState:
    power = pool.power_state.code if pool.power_state else None
    return PoolState(
        name=str(pool.name),
        mode=_text(pool.mode, "User"),
        count=int(pool.count or 0),
        autoscale=bool(pool.enable_auto_scaling),
        min_count=pool.min_count,
        max_count=pool.max_count,
        power=_text(power, "Running"),
        provisioning_state=_text(pool.provisioning_state, "Succeeded"),
        etag=pool.e_tag,
        spot=_text(pool.scale_set_priority, "Regular").lower() == "spot",
        vm_size=str(pool.vm_size or ""),
        tags={str(k): str(v) for k, v in (pool.tags or {}).items()},
        handle=pool,
    )


def _text(value: object, default: str) -> str:
    # The SDK hands back str-based enums; str() of those is "AgentPoolMode.SYSTEM", not "System".
    return str(getattr(value, "value", value)) if value else default
