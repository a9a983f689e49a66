"""Azure Resource Graph adapter: which AKS clusters carry a tag, across subscriptions.

A schedule entry may pick clusters by tag (`select = { tag = "name=value" }`); the tick asks
once, with every selector in one query, paged by `$skipToken`. Resource Graph only returns what
the identity may read: `Reader` on the subscriptions (or management group) to search (infra's
tag-target scopes). The caller intersects the answer with the allowlist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from scaler.adapters.arm import client_options, cluster_ref, translated_errors
from scaler.domain.tags import ClusterSelector
from scaler.service_layer.ports import ClusterListing

# Rows per page (Resource Graph allows up to 1000).
PAGE_SIZE = 1000


class ResourceGraphDirectory:
    def __init__(
        self,
        credential: TokenCredential,
        endpoint: str,
        scope: str,
        policies: Sequence[Any] = (),
    ) -> None:
        # A 429 comes back to the tick at once: the tagged clusters wait for the next run.
        self._client = ResourceGraphClient(credential, **client_options(endpoint, scope, policies))

    def find_tagged(
        self, selectors: Sequence[ClusterSelector], subscriptions: Sequence[str] | None
    ) -> list[ClusterListing]:
        if not selectors:
            return []
        query = cluster_query(selectors)
        found: list[ClusterListing] = []
        skip_token: str | None = None
        with translated_errors("finding clusters by tag in Resource Graph"):
            while True:
                request = QueryRequest(
                    query=query,
                    subscriptions=list(subscriptions) if subscriptions else None,
                    options=QueryRequestOptions(
                        skip_token=skip_token, top=PAGE_SIZE, result_format="objectArray"
                    ),
                )
                page = self._client.resources(request)
                for row in page.data or []:
                    listing = _listing(row)
                    if listing is not None:
                        found.append(listing)
                skip_token = page.skip_token
                if not skip_token:
                    return found

    def close(self) -> None:
        self._client.close()


def cluster_query(selectors: Sequence[ClusterSelector]) -> str:
    """The KQL for every selector at once. Tag names and values come from the schedule file,
    so they are always quoted as KQL string literals, never spliced in raw. A selector's
    subscription is checked on the answer (ClusterSelector.matches), not in the query."""
    clauses = " or ".join(f"(tags[{_kql(s.name)}] =~ {_kql(s.value)})" for s in selectors)
    return (
        "resources\n"
        "| where type =~ 'microsoft.containerservice/managedclusters'\n"
        f"| where {clauses}\n"
        "| project id, subscriptionId, resourceGroup, name, tags\n"
        "| order by id asc"
    )


def _kql(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _listing(row: object) -> ClusterListing | None:
    if not isinstance(row, dict):
        return None
    subscription = row.get("subscriptionId")
    cluster = cluster_ref(str(row.get("id") or ""), str(subscription or ""))
    if cluster is None or not subscription:
        return None
    tags = row.get("tags") if isinstance(row.get("tags"), dict) else {}
    return ClusterListing(cluster, {str(k): str(v) for k, v in (tags or {}).items()})
