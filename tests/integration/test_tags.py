"""Pools their owners steer by Azure tag (issue 12), through function_app.py against Azurite and
the AKS emulator: the tag is read in the same ARM read as the pool, no extra request."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.app_under_test import App

BATCH_SCHEDULE = """
timezone = "UTC"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = 7
"""


def batch_writes(app: App) -> list[dict]:
    return [w for w in app.emulator.writes() if w["path"].endswith("/agentPools/batch")]


def test_a_pool_tagged_off_gets_no_write_from_an_intent_a_lease_or_the_timer(
    app: App, tmp_path: Path, settings_override: Callable[..., None]
) -> None:
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(BATCH_SCHEDULE)
    settings_override(SCALER_SCHEDULE_FILE=str(schedule))
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", tags={"scaler": "off"})
    app.emulator.clear_requests()

    app.deliver(json.dumps({"id": "plain", "pools": {"batch": 5}}), message_id="m-plain")
    app.deliver(
        json.dumps({"id": "lease", "pools": {"batch": 3}, "lease": "PT1H"}), message_id="m-lease"
    )
    app.settle()
    app.tick()
    app.settle()

    assert batch_writes(app) == []
    assert app.pool("batch")["count"] == 2
    outcomes = {o["intent_id"]: o for o in app.results()}
    for intent_id in ("plain", "lease"):
        outcome = outcomes[intent_id]
        assert outcome["outcome"] == "rejected"
        assert outcome["error"]["code"] == "Excluded"
        assert "scaler=off" in outcome["error"]["message"]
        (batch,) = outcome["pools"]
        assert batch["outcome"] == "excluded" and batch["why"]["source"] == "excluded"
    # Every read of the cluster was one list of its pools: the tags came with it.
    assert {r["kind"] for r in app.arm_requests() if r["method"] == "GET"} == {"ListAgentPools"}


def test_removing_the_tag_hands_the_pool_back(app: App) -> None:
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", tags={"scaler": "off"})
    app.deliver(json.dumps({"id": "first", "pools": {"batch": 5}}), message_id="m-1")
    app.settle()
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", tags={})
    app.deliver(json.dumps({"id": "second", "pools": {"batch": 5}}), message_id="m-2")
    app.settle()
    assert [o["outcome"] for o in app.take("scale-results", timeout=2, count=2)] == [
        "rejected",
        "applied",
    ]
    assert app.pool("batch")["count"] == 5


PROFILE_SCHEDULE = """
timezone = "UTC"

[profiles.always-six]
outside = 6

[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.web]
outside = { min = 1, max = 4 }
"""


def test_a_profile_tag_applies_the_profile_and_an_explicit_entry_beats_the_tag(
    app: App, tmp_path: Path, settings_override: Callable[..., None]
) -> None:
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(PROFILE_SCHEDULE)
    settings_override(SCALER_SCHEDULE_FILE=str(schedule))
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", tags={"scaler-schedule": "always-six"})
    # web has its own block in the file: its tag is ignored.
    app.emulator.force_pool("rg-demo", "aks-demo", "web", tags={"scaler-schedule": "always-six"})
    app.emulator.clear_requests()
    app.tick()
    app.emulator.wait_until_settled()
    assert app.pool("batch")["count"] == 6
    web = app.pool("web")
    assert (web["minCount"], web["maxCount"]) == (1, 4)
    (outcome,) = app.results()
    why = {p["pool"]: p["why"] for p in outcome["pools"]}
    assert why["batch"]["source"] == "schedule" and "profile always-six" in why["batch"]["detail"]
    assert "profile" not in why["web"]["detail"]
    assert len(app.lists()) == 1  # the tags came with the one read
