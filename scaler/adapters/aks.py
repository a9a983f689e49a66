"""Resource Manager adapter: read a cluster's agent pools, start one pool write.

Built once per process; one `ContainerServiceClient` per subscription, reused and closed with
the gateway. azure-core's own retries are cut down to quick reconnects: a 429, 409 or 5xx comes
straight back so the queue owns the backoff (honouring Retry-After) and the function never sits
in a sleep. Writes never wait for the long-running operation (`polling=False`). A 401 makes the
next call ask the identity for a new token instead of its cached one (see `RenewableCredential`).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import AgentPool, PowerState

from scaler.domain.clusters import ClusterRef
from scaler.domain.planner import Action, PoolPlan
from scaler.domain.pools import PoolState
from scaler.service_layer.ports import GatewayError, StaleEtag

# MSAL keeps a failed (5xx) token answer for 5 s and replays it; retrying sooner is pointless.
_TOKEN_RETRY_AFTER_SECONDS = 5
# Statuses worth another attempt later; everything else from ARM is a permanent answer.
# 401 is an expired or refused token: a fresh one may well work next time.
_TRANSIENT_STATUS = {401, 408, 409, 429, 500, 502, 503, 504}


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
    def __init__(self, credential: TokenCredential, endpoint: str, scope: str) -> None:
        self._credential = RenewableCredential(credential)
        self._endpoint = endpoint
        self._scope = scope
        self._clients: dict[str, ContainerServiceClient] = {}
        self._lock = threading.Lock()

    def list_pools(self, cluster: ClusterRef) -> list[PoolState]:
        client = self._client(cluster.subscription_id)
        with _translated_errors(
            f"reading the pools of {cluster.short_name}", self._credential.renew
        ):
            return [
                _state(pool)
                for pool in client.agent_pools.list(cluster.resource_group, cluster.name)
            ]

    def start_update(self, cluster: ClusterRef, plan: PoolPlan) -> PoolState:
        assert plan.before is not None and isinstance(plan.before.handle, AgentPool)
        body = _changed_body(plan.before.handle, plan)
        client = self._client(cluster.subscription_id)
        with _translated_errors(
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
                    base_url=self._endpoint,
                    credential_scopes=[self._scope],
                    retry_total=2,
                    retry_connect=2,
                    retry_read=1,
                    retry_status=0,
                    retry_backoff_factor=0.2,
                    connection_timeout=10,
                    read_timeout=60,
                )
            return self._clients[subscription_id]


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


@contextmanager
def _translated_errors(doing: str, on_unauthorized: Callable[[], None]) -> Iterator[None]:
    """Turns azure-core exceptions into the port's GatewayError (transient or permanent).
    A 401 calls `on_unauthorized` first, so the retry gets a new token."""
    try:
        yield
    except ResourceModifiedError as error:  # 412, only raised for our If-Match writes
        raise StaleEtag(f"{doing}: the pool's eTag changed since it was read") from error
    except HttpResponseError as error:
        status = error.status_code
        if status is None:
            # No HTTP answer at all: the credential could not get a token.
            raise _token_unavailable(doing, error) from error
        if status == 401:
            on_unauthorized()
        code = (error.error.code if error.error else None) or f"Http{status}"
        message = (error.error.message if error.error else None) or str(error.reason)
        raise GatewayError(
            code,
            f"{doing}: {message}",
            transient=status in _TRANSIENT_STATUS,
            retry_after=_retry_after(error),
        ) from error
    except ClientAuthenticationError as error:
        raise _token_unavailable(doing, error) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise GatewayError(
            "ConnectionFailed", f"{doing}: {type(error).__name__}", transient=True
        ) from error


def _token_unavailable(
    doing: str, error: ClientAuthenticationError | HttpResponseError
) -> GatewayError:
    return GatewayError(
        "TokenUnavailable",
        f"{doing}: no access token ({error.message})",
        transient=True,
        retry_after=_TOKEN_RETRY_AFTER_SECONDS,
    )


def _retry_after(error: HttpResponseError) -> int | None:
    raw = error.response.headers.get("Retry-After") if error.response is not None else None
    try:
        return max(0, int(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential backoff covers it
