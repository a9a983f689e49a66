"""Cluster tags and the Azure Resource Graph endpoint, over HTTPS and through the real SDKs."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential

from local.aks_emulator.control import EmulatorControl, EmulatorProcess, fleet_seed
from local.aks_emulator.fleet import subscription_id
from local.aks_emulator.resourcegraph import QueryRefused, parse_query
from local.aks_emulator.throttle import Throttler, hhmmss
from tests.emulator.clients import (
    CLIENT_ID,
    GRAPH_PATH,
    OTHER_CLIENT_ID,
    SUB,
    Client,
    aks_client,
    use_emulator_identity,
)

CLUSTERS = "| where type =~ 'microsoft.containerservice/managedclusters'\n"
# The query the app sends (issue 10): clusters carrying one of several tag values.
APP_QUERY = (
    "resources\n"
    + CLUSTERS
    + "| where (tags['scaler-schedule'] =~ 'office-hours') or (tags['team'] =~ 'data')\n"
    "| project id, subscriptionId, resourceGroup, name, tags\n"
    "| order by id asc"
)
QUOTA = "x-ms-user-quota-remaining"
RESETS = "x-ms-user-quota-resets-after"


def tag_query(*clauses: str, project: str = "id, subscriptionId, resourceGroup, name, tags") -> str:
    where = " or ".join(f"({clause})" for clause in clauses)
    return f"resources\n{CLUSTERS}| where {where}\n| project {project}\n| order by id asc"


@pytest.fixture
def graph(
    emulator: EmulatorProcess, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The real `ResourceGraphClient` with a managed-identity credential, as the app builds it."""
    resourcegraph = pytest.importorskip(
        "azure.mgmt.resourcegraph", reason="azure-mgmt-resourcegraph is not installed"
    )
    use_emulator_identity(emulator, monkeypatch)
    return resourcegraph.ResourceGraphClient(
        ManagedIdentityCredential(client_id=CLIENT_ID),
        base_url=emulator.arm_endpoint,
        connection_verify=emulator.ca_bundle,
        retry_total=0,
    )


def sdk_query(graph: Any, query: str, with_headers: bool = False, **options: Any) -> Any:
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    subscriptions = options.pop("subscriptions", None)
    request = QueryRequest(
        query=query, subscriptions=subscriptions, options=QueryRequestOptions(**options)
    )
    if not with_headers:
        return graph.resources(request)
    return graph.resources(
        request, cls=lambda response, result, _: (result, response.http_response.headers)
    )


def tagged_seed(tags_by_cluster: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A fleet of 2 subscriptions x 1 resource group x 3 clusters with these tags."""
    return fleet_seed(
        subscriptions=2,
        resource_groups=1,
        clusters_per_resource_group=3,
        pools_per_cluster=1,
        cluster_tags=tags_by_cluster,
    )


# --- cluster tags --------------------------------------------------------------------------


def test_seed_tags_are_answered_at_the_resource_top_level(
    client: Client,
    control: EmulatorControl,
    emulator: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control.reset(tagged_seed({"aks-s0-g0-c1": {"Team": "data", "cost-center": "42"}}))
    sub = subscription_id(1)
    cluster_path = (
        f"/subscriptions/{sub}/resourceGroups/rg-fleet-s0-g0"
        "/providers/Microsoft.ContainerService/managedClusters"
    )
    tagged = client.request("GET", f"{cluster_path}/aks-s0-g0-c1?api-version=2026-08-01").json()
    assert tagged["tags"] == {"Team": "data", "cost-center": "42"}
    assert "tags" not in tagged["properties"]
    listed = client.request("GET", f"{cluster_path}?api-version=2026-08-01").json()["value"]
    assert [c.get("tags") for c in listed] == [None, {"Team": "data", "cost-center": "42"}, None]

    use_emulator_identity(emulator, monkeypatch)
    aks = aks_client(emulator, sub)
    assert aks.managed_clusters.get("rg-fleet-s0-g0", "aks-s0-g0-c1").tags == tagged["tags"]
    assert aks.managed_clusters.get("rg-fleet-s0-g0", "aks-s0-g0-c0").tags is None


def test_fleet_tags_every_nth_cluster_and_by_name(control: EmulatorControl) -> None:
    control.seed_fleet(
        subscriptions=2,
        resource_groups=2,
        clusters_per_resource_group=3,
        pools_per_cluster=1,
        tags={"scaler-schedule": "office-hours"},
        tag_every=5,
        cluster_tags={"aks-s1-g0-c0": {"team": "data"}, "aks-s0-g0-c0": {}},
    )
    tags = {c["name"]: c["tags"] for c in control.clusters()}
    assert len(tags) == 12
    # Generated clusters 0, 5 and 10 follow the rule; cluster_tags replaces a cluster's tags.
    assert {name: t for name, t in tags.items() if t} == {
        "aks-s0-g1-c2": {"scaler-schedule": "office-hours"},  # n = 5
        "aks-s1-g0-c0": {"team": "data"},  # n = 6
        "aks-s1-g1-c1": {"scaler-schedule": "office-hours"},  # n = 10
    }
    seed = fleet_seed(subscriptions=1, resource_groups=1, clusters_per_resource_group=2, tags={})
    assert all("tags" not in c for c in seed["clusters"])
    for bad in (
        {"tag_every": 0},
        {"tags": {"a": 1}},
        {"tags": {"env": "a", "ENV": "b"}},  # Azure tag names are case-insensitive
        {"cluster_tags": {"aks-nope": {"a": "b"}}},
    ):
        with pytest.raises(RuntimeError, match="400"):
            control.seed_fleet(subscriptions=1, **bad)
        with pytest.raises(ValueError):
            fleet_seed(subscriptions=1, **bad)


def test_set_cluster_tags_replaces_them(client: Client, control: EmulatorControl) -> None:
    before = client.request(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg-demo/providers/Microsoft.ContainerService"
        "/managedClusters/aks-demo?api-version=2026-08-01",
    ).json()
    assert "tags" not in before
    assert control.set_cluster_tags("rg-demo", "aks-demo", {"team": "data", "a": "b"}) == {
        "team": "data",
        "a": "b",
    }
    assert control.set_cluster_tags("RG-DEMO", "aks-demo", {"team": "ops"}, subscription=SUB) == {
        "team": "ops"
    }
    after = client.request(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg-demo/providers/Microsoft.ContainerService"
        "/managedClusters/aks-demo?api-version=2026-08-01",
    ).json()
    assert after["tags"] == {"team": "ops"}  # replaced, not merged
    assert after["eTag"] != before["eTag"]  # a tags update is a write to the cluster
    assert client.names(tag_query("tags['team'] =~ 'ops'")) == ["aks-demo"]
    control.set_cluster_tags("rg-demo", "aks-demo", {})
    assert client.names(tag_query("tags['team'] =~ 'ops'")) == []
    with pytest.raises(RuntimeError, match="404"):
        control.set_cluster_tags("rg-demo", "aks-nope", {"a": "b"})
    with pytest.raises(RuntimeError, match="404"):
        control.set_cluster_tags("rg-demo", "aks-demo", {"a": "b"}, subscription=subscription_id(7))
    with pytest.raises(RuntimeError, match="400"):
        control.set_cluster_tags("rg-demo", "aks-demo", {"a": ["b"]})  # type: ignore[dict-item]


# --- Resource Graph through the SDK --------------------------------------------------------


def test_sdk_selects_by_tag_case_insensitively(graph: Any, control: EmulatorControl) -> None:
    control.reset(
        tagged_seed(
            {
                "aks-s0-g0-c0": {"Scaler-Schedule": "Office-Hours"},  # key and value cased
                "aks-s0-g0-c1": {"team": "DATA"},
                "aks-s0-g0-c2": {"team": "database"},  # =~ is equality, not a prefix
                "aks-s1-g0-c0": {"scaler-schedule": "nights"},
                "aks-s1-g0-c2": {"TEAM": "data", "scaler-schedule": "office-hours"},
            }
        )
    )
    result = sdk_query(graph, APP_QUERY)
    names = [row["name"] for row in result.data]
    assert names == ["aks-s0-g0-c0", "aks-s0-g0-c1", "aks-s1-g0-c2"]
    assert (result.total_records, result.count, result.result_truncated) == (3, 3, "false")
    assert result.skip_token is None and result.facets == []
    first = result.data[0]
    assert first == {
        "id": f"/subscriptions/{subscription_id(1)}/resourceGroups/rg-fleet-s0-g0"
        "/providers/Microsoft.ContainerService/managedClusters/aks-s0-g0-c0",
        "subscriptionId": subscription_id(1),
        "resourceGroup": "rg-fleet-s0-g0",
        "name": "aks-s0-g0-c0",
        "tags": {"Scaler-Schedule": "Office-Hours"},  # tags come back as stored
    }
    # `==` compares values case-sensitively (keys still match whatever their case).
    exact = sdk_query(graph, tag_query("tags['team'] == 'data'"))
    assert [row["name"] for row in exact.data] == ["aks-s1-g0-c2"]
    # `and`, dot access and `order by` without `asc` (KQL: descending).
    both = sdk_query(
        graph,
        f"Resources {CLUSTERS}| where tags.team =~ 'data' and tags['scaler-schedule'] "
        "=~ 'office-hours' or name == 'aks-s0-g0-c2' | project name, id | order by name",
    )
    assert [row["name"] for row in both.data] == ["aks-s1-g0-c2", "aks-s0-g0-c2"]
    assert list(both.data[0]) == ["name", "id"]  # project's order


def test_string_literal_escapes(graph: Any, client: Client, control: EmulatorControl) -> None:
    control.reset(
        tagged_seed(
            {
                "aks-s0-g0-c0": {"owner": "o'brien"},
                "aks-s0-g0-c1": {"path": "c:\\teams\\data"},
                "aks-s0-g0-c2": {"it's": 'say "hi"'},
            }
        )
    )
    assert [
        r["name"] for r in sdk_query(graph, tag_query(r"tags['owner'] =~ 'O\'Brien'")).data
    ] == ["aks-s0-g0-c0"]
    query = tag_query(r"tags['path'] == 'c:\\teams\\data'", r"""tags["it's"] == "say \"hi\"" """)
    assert [r["name"] for r in sdk_query(graph, query).data] == ["aks-s0-g0-c1", "aks-s0-g0-c2"]
    # A quote ends the literal unless escaped; an unknown escape is a parser failure.
    assert client.query(tag_query("tags['owner'] =~ 'o'brien'")).status_code == 400
    refused = client.query(tag_query(r"tags['path'] == 'c:\q'"))
    assert refused.status_code == 400
    details = refused.json()["error"]["details"]
    assert [d["code"] for d in details] == ["InvalidQuery", "ParserFailure"]
    assert details[1]["line"] == 3 and details[1]["characterPositionInLine"] > 0


def test_subscription_filter(graph: Any, client: Client, control: EmulatorControl) -> None:
    control.seed_fleet(
        subscriptions=3,
        resource_groups=1,
        clusters_per_resource_group=2,
        pools_per_cluster=1,
        tags={"team": "data"},
        keep_seed=True,
    )
    everyone = [r["subscriptionId"] for r in sdk_query(graph, APP_QUERY).data]
    assert sorted(set(everyone)) == [subscription_id(i) for i in (1, 2, 3)]  # rg-demo untagged
    control.set_cluster_tags("rg-demo", "aks-second", {"team": "data"})
    only = sdk_query(graph, APP_QUERY, subscriptions=[subscription_id(2), SUB.upper()])
    assert [r["name"] for r in only.data] == ["aks-second", "aks-s1-g0-c0", "aks-s1-g0-c1"]
    assert only.total_records == 3
    assert client.names(APP_QUERY, subscriptions=[]) == client.names(APP_QUERY)  # empty: all
    assert len(client.names(APP_QUERY, managementGroups=["platform"])) == 7  # no hierarchy: all
    assert client.names(APP_QUERY, subscriptions=[subscription_id(9)]) == []


def test_sdk_pages_with_skip_token(graph: Any, control: EmulatorControl) -> None:
    control.seed_fleet(
        subscriptions=3,
        resource_groups=2,
        clusters_per_resource_group=4,
        pools_per_cluster=1,
        tags={"scaler-schedule": "office-hours"},
        tag_every=2,
        keep_seed=True,
    )
    pages, token = [], None
    while True:
        result = sdk_query(graph, APP_QUERY, top=5, skip_token=token)
        pages.append(result)
        token = result.skip_token
        if token is None:
            break
    assert [p.count for p in pages] == [5, 5, 2]
    assert {p.total_records for p in pages} == {12}
    assert {p.result_truncated for p in pages} == {"false"}
    ids = [row["id"] for p in pages for row in p.data]
    assert ids == sorted(ids) and len(set(ids)) == 12
    # Without $top the page is the emulator's list page size.
    control.set_config(list_page_size=7)
    first = sdk_query(graph, APP_QUERY)
    assert (first.count, first.total_records) == (7, 12) and first.skip_token
    rest = sdk_query(graph, APP_QUERY, skip_token=first.skip_token)
    assert rest.count == 5 and rest.skip_token is None
    assert [r["id"] for r in first.data + rest.data] == ids
    # $skip overrides the token's offset; a token only works for its own query and scope.
    assert sdk_query(graph, APP_QUERY, skip=10).count == 2
    scopes: list[tuple[str, list[str] | None]] = [
        (APP_QUERY + " ", None),  # another query
        (APP_QUERY, [subscription_id(1)]),  # another scope
    ]
    for query, subscriptions in scopes:
        with pytest.raises(HttpResponseError) as refused:
            sdk_query(graph, query, skip_token=first.skip_token, subscriptions=subscriptions)
        assert refused.value.status_code == 400
        assert refused.value.error.details[0].code == "InvalidSkipToken"


def test_results_without_id_are_truncated_not_paged(
    client: Client, control: EmulatorControl
) -> None:
    control.seed_fleet(subscriptions=1, resource_groups=1, clusters_per_resource_group=5)
    response = client.query(
        f"resources {CLUSTERS}| project name, tags | order by name asc", options={"$top": 2}
    )
    body = response.json()
    assert (body["totalRecords"], body["count"], body["resultTruncated"]) == (5, 2, "true")
    assert "$skipToken" not in body


def test_table_result_format(client: Client) -> None:
    response = client.query(
        f"resources {CLUSTERS}| project name, resourceGroup, tags | order by name asc",
        options={"resultFormat": "table"},
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["columns"] == [
        {"name": "name", "type": "string"},
        {"name": "resourceGroup", "type": "string"},
        {"name": "tags", "type": "object"},
    ]
    assert data["rows"] == [["aks-demo", "rg-demo", {}], ["aks-second", "rg-demo", {}]]


@pytest.mark.parametrize(
    "query",
    [
        "resources | summarize count()",
        "resourcecontainers | where type =~ 'microsoft.resources/subscriptions'",
        "resources | where tags['team'] =~ 'data'",  # no type filter
        f"resources {CLUSTERS}| where tags['team'] contains 'dat'",
        f"resources {CLUSTERS}| where tags['team'] =~ 'data",  # unterminated
        f"resources {CLUSTERS}| project id, bogus",
        f"resources {CLUSTERS}| project name | order by id asc",  # id projected away
        f"resources {CLUSTERS}| where (tags['team'] =~ 'data'",
        f"resources {CLUSTERS}| where tags =~ 'data'",
        f"resources {CLUSTERS}| limit 5",
    ],
)
def test_queries_the_emulator_does_not_understand_are_400(graph: Any, query: str) -> None:
    with pytest.raises(HttpResponseError) as refused:
        sdk_query(graph, query)
    assert refused.value.status_code == 400
    error = refused.value.error
    assert error.code == "BadRequest"
    assert error.message.startswith("Please provide below info when asking for support")
    assert error.details[0].code == "InvalidQuery"
    assert error.details[1].code in ("ParserFailure", "UnsupportedQuery")


def test_bad_request_bodies(client: Client) -> None:
    for body in (
        {},
        {"query": ""},
        {"query": APP_QUERY, "subscriptions": "not-a-list"},
        {"query": APP_QUERY, "options": {"$top": 0}},
        {"query": APP_QUERY, "options": {"$top": 1001}},
        {"query": APP_QUERY, "options": {"resultFormat": "csv"}},
        {"query": APP_QUERY, "options": {"$skipToken": "garbage"}},
    ):
        response = client.request("POST", GRAPH_PATH, body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "BadRequest"
    assert client.request("GET", GRAPH_PATH).status_code == 405


def test_a_token_is_needed(client: Client, control: EmulatorControl) -> None:
    response = requests.post(
        client.emu.arm_endpoint + GRAPH_PATH,
        json={"query": APP_QUERY},
        verify=client.emu.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 401
    assert control.count(kind="ResourceGraphQuery", status=401) == 1


# --- the quota -----------------------------------------------------------------------------


def test_quota_is_15_per_window_per_principal_with_headers(
    graph: Any, client: Client, control: EmulatorControl, emulator: EmulatorProcess
) -> None:
    remaining = []
    for _ in range(15):
        _, headers = sdk_query(graph, APP_QUERY, with_headers=True)
        remaining.append(int(headers[QUOTA]))
        assert re.fullmatch(r"00:00:0[1-5]", headers[RESETS])
    assert remaining == list(range(14, -1, -1))
    with pytest.raises(HttpResponseError) as refused:
        sdk_query(graph, APP_QUERY)
    response = refused.value.response
    assert response.status_code == 429
    assert refused.value.error.code == "RateLimiting"
    assert refused.value.error.details[0].code == "RateLimiting"
    assert response.headers[QUOTA] == "0"
    assert re.fullmatch(r"00:00:0[1-5]", response.headers[RESETS])
    assert "Retry-After" not in response.headers  # the service names its wait in the quota
    # Another principal has its own quota; Resource Manager's buckets were never touched.
    other = Client(emulator, OTHER_CLIENT_ID)
    assert other.query(APP_QUERY).headers[QUOTA] == "14"
    assert not [b for b in control.throttle()["buckets"] if b["limit"].startswith("arm_")]
    read = client.request(
        "GET",
        f"/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
        "?api-version=2026-08-01",
    )
    assert read.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    stats = control.stats()
    assert stats["by_kind"]["ResourceGraphQuery"] == {
        "total": 17,
        "throttled": 1,
        "by_status": {"200": 16, "429": 1},
    }
    assert stats["throttled_by_bucket"] == {"resource_graph": 1}
    (logged,) = [e for e in control.requests_log() if e["status"] == 429]
    assert (logged["kind"], logged["throttled"], logged["method"]) == (
        "ResourceGraphQuery",
        "resource_graph",
        "POST",
    )
    assert logged["body"]["query"] == APP_QUERY


def test_quota_window_is_time_scaled_and_overridable(
    client: Client, control: EmulatorControl
) -> None:
    control.set_limits({"resource_graph": {"burst": 2, "window_seconds": 5}})
    control.set_throttle_time_scale(10)  # a 5 s window lasts 0.5 s
    limits = control.throttle()["limits"]["resource_graph"]
    assert (limits["burst"], limits["window_seconds"], limits["scope"]) == (2, 5, "principal")
    assert [client.query(APP_QUERY).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.query(APP_QUERY)
    assert refused.headers[RESETS] == "00:00:01"  # whole seconds, rounded up
    assert 0 < int(refused.headers["x-ms-retry-after-ms"]) <= 500
    time.sleep(int(refused.headers["x-ms-retry-after-ms"]) / 1000 + 0.05)
    again = client.query(APP_QUERY)
    assert (again.status_code, again.headers[QUOTA]) == (200, "1")
    with pytest.raises(RuntimeError, match="400"):
        control.set_limits({"resource_graph": {"refill_per_second": 1}})  # a window, not a bucket
    control.set_throttling(False)
    answers = [client.query(APP_QUERY) for _ in range(5)]
    assert {(a.status_code, a.headers[QUOTA]) for a in answers} == {(200, "2")}


def test_quota_window_model() -> None:
    throttle = Throttler()
    verdicts = [throttle.resource_graph("a", 0.0) for _ in range(16)]
    assert [v.allowed for v in verdicts] == [True] * 15 + [False]
    assert verdicts[0].headers == {QUOTA: "14", RESETS: "00:00:05"}
    assert verdicts[15].throttled_by == "resource_graph" and verdicts[15].retry_after == 5
    assert throttle.resource_graph("a", 2.0).headers == {QUOTA: "0", RESETS: "00:00:03"}
    # The whole quota comes back when the window ends (not a token at a time).
    assert throttle.resource_graph("a", 5.0).headers == {QUOTA: "14", RESETS: "00:00:05"}
    assert throttle.resource_graph("b", 5.0).headers[QUOTA] == "14"
    assert (hhmmss(0.2), hhmmss(3725), hhmmss(59.5)) == ("00:00:01", "01:02:05", "00:01:00")


def test_parser_accepts_the_app_query_and_reports_positions() -> None:
    stages = parse_query(APP_QUERY).stages
    assert [stage for stage, _ in stages] == ["where", "where", "project", "order"]
    assert stages[3][1] == [("id", False)]
    with pytest.raises(QueryRefused) as refused:
        parse_query("resources\n| where type =~ 'x'\n| extend a = 1")
    detail = refused.value.details[1]
    assert (detail["line"], detail["characterPositionInLine"], detail["token"]) == (3, 2, "extend")
