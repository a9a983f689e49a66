"""What every Resource Manager client of the app shares: azure-core's exceptions translated
into the ports' GatewayError, and cluster ids parsed from listings."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)

from scaler.adapters.rate_limits import Throttled
from scaler.domain.clusters import CLUSTER_NAME, RESOURCE_GROUP_NAME, SUBSCRIPTION_ID, ClusterRef
from scaler.service_layer.ports import GatewayError, StaleEtag

# MSAL keeps a failed (5xx) token answer for 5 s and replays it; retrying sooner is pointless.
_TOKEN_RETRY_AFTER_SECONDS = 5
# Statuses worth another attempt later; everything else from ARM is a permanent answer.
# 401 is an expired or refused token: a fresh one may well work next time.
_TRANSIENT_STATUS = {401, 408, 409, 429, 500, 502, 503, 504}


def cluster_ref(resource_id: str, subscription_id: str) -> ClusterRef | None:
    """The cluster a listed resource id names (None for anything unexpected)."""
    parts = resource_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    try:
        group = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("managedclusters") + 1]
    except (ValueError, IndexError):
        return None
    valid = (
        SUBSCRIPTION_ID.fullmatch(subscription_id)
        and RESOURCE_GROUP_NAME.fullmatch(group)
        and CLUSTER_NAME.fullmatch(name)
    )
    return ClusterRef(subscription_id, group, name) if valid else None


def client_options(endpoint: str, scope: str, policies: Sequence[Any]) -> dict[str, Any]:
    """How every Resource Manager client of the app is built. azure-core's own retries are cut
    down to quick reconnects: a 429, 409 or 5xx comes straight back, so the queue owns the
    backoff (honouring Retry-After) and no function sits in a sleep; `policies` (the pacing of
    Resource Manager's limits) run on every HTTP attempt."""
    return {
        "base_url": endpoint,
        "credential_scopes": [scope],
        "per_retry_policies": list(policies),
        "retry_total": 2,
        "retry_connect": 2,
        "retry_read": 1,
        "retry_status": 0,
        "retry_backoff_factor": 0.2,
        "connection_timeout": 10,
        "read_timeout": 60,
    }


@contextmanager
def translated_errors(
    doing: str, on_unauthorized: Callable[[], None] | None = None
) -> Iterator[None]:
    """Turns azure-core exceptions into the port's GatewayError (transient or permanent).
    A 401 calls `on_unauthorized` first, so the retry gets a new token. A 429, and a request
    the app's own pacing held back (`Throttled`), are `throttled`: expected, not failures."""
    try:
        yield
    except Throttled as error:  # raised by RateLimitPolicy before anything was sent
        raise GatewayError(
            "Throttled",
            f"{doing}: held back by the app's own pacing of {error.limit} "
            f"(Resource Manager's limit) for {error.retry_after:.1f} s",
            transient=True,
            retry_after=max(1, math.ceil(error.retry_after)),
            throttled=True,
        ) from error
    except ResourceModifiedError as error:  # 412, only raised for our If-Match writes
        raise StaleEtag(f"{doing}: the pool's eTag changed since it was read") from error
    except HttpResponseError as error:
        status = error.status_code
        if status is None:
            # No HTTP answer at all: the credential could not get a token.
            raise _token_unavailable(doing, error) from error
        if status == 401 and on_unauthorized is not None:
            on_unauthorized()
        code = (error.error.code if error.error else None) or f"Http{status}"
        message = (error.error.message if error.error else None) or str(error.reason)
        raise GatewayError(
            code,
            f"{doing}: {message}",
            transient=status in _TRANSIENT_STATUS,
            retry_after=_retry_after(error),
            throttled=status == 429,
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
