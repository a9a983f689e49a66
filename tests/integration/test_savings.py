"""Savings and tag profiles through the CLI against Azurite and the AKS emulator: `status
--savings` prices each pool by the VM size of the one ARM read status makes, and `schedule
preview --cluster` reads the cluster to show the profile each pool's tag gives it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scaler.cli import main
from tests.app_under_test import App

# UTC: every week has 168 hours, whatever day the test runs.
SCHEDULE = """
timezone = "UTC"
[profiles.office]
outside = { min = 1, max = 5 }
windows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = { min = 3, max = 20 } }]
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = { power = "Stopped" }
windows = [{ days = "Mon-Fri", start = "07:00", end = "19:00", state = 6 }]
"""


@pytest.fixture(autouse=True)
def not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def schedule(app: App, tmp_path: Path, settings_override: Callable[..., None]) -> str:
    path = tmp_path / "schedule.toml"
    path.write_text(SCHEDULE)
    settings_override(SCALER_SCHEDULE_FILE=str(path))
    app.emulator.force_pool("rg-demo", "aks-demo", "web", tags={"scaler-schedule": "office"})
    app.emulator.clear_requests()
    return str(path)


@pytest.fixture
def prices(tmp_path: Path) -> str:
    path = tmp_path / "prices.json"
    path.write_text('{"Standard_D8ds_v5": 0.452, "Standard_D4ds_v5": 0.226, "currency": "USD"}')
    return str(path)


def test_status_savings_prices_pools_by_the_vm_size_of_its_one_read(
    app: App, schedule: str, prices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["status", "rg-demo/aks-demo", "--savings", "--prices", prices, "--json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    # Still one ARM read for the cluster: the VM sizes and tags came with it.
    assert [(r["method"], r["kind"]) for r in app.arm_requests()] == [("GET", "ListAgentPools")]
    assert document["savings_method"].startswith("saved = baseline nodes × hours in the week")
    (cluster,) = document["clusters"]
    pools = {pool["pool"]: pool for pool in cluster["pools"]}
    # batch: 6 × 168 = 1008; the window asks 5 × 12 h × 6 = 360; saved 648 × 0.452 = 292.896.
    batch = pools["batch"]["savings"]
    assert (batch["vm_size"], batch["saved_node_hours"], batch["saved_money"]) == (
        "Standard_D8ds_v5",
        648,
        292.896,
    )
    # web follows the profile of its tag: 3 × 168 = 504 − (5 × 10 × 3 + 118 × 1 = 268) = 236;
    # 236 × 0.226 = 53.336.
    web = pools["web"]["savings"]
    assert (web["profile"], web["vm_size"], web["saved_node_hours"], web["saved_money"]) == (
        "office",
        "Standard_D4ds_v5",
        236,
        53.336,
    )
    assert pools["web"]["schedule"]["reason"].endswith("(profile office)")
    assert pools["system"]["savings"] is None  # not scheduled
    assert cluster["savings"]["hours_in_week"] == 168
    assert cluster["savings"]["total"] == {
        "baseline_node_hours": 1512,  # 1008 + 504
        "scheduled_node_hours": 628,  # 360 + 268
        "saved_node_hours": 884,
        "saved_money": 346.232,  # 292.896 + 53.336
        "counted_pools": 2,
        "priced_pools": 2,
    }


def test_status_savings_for_people(
    app: App, schedule: str, prices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "rg-demo/aks-demo", "--savings", "--prices", prices]) == 0
    text = capsys.readouterr().out
    assert "saved this week" in text
    assert "648 node-h" in text and "292.90 USD" in text
    assert "saved 884 of 1,512 node-hours a week (58%), 346.23 USD" in text
    assert "how: saved = baseline nodes × hours in the week" in text


def test_preview_cluster_reads_the_tags_from_the_emulator(
    app: App, schedule: str, prices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["schedule", "preview", schedule, "--cluster", "rg-demo/aks-demo", "--days", "1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "rg-demo/aks-demo: 5 pools read from Azure",
        "  system: not in the schedule (left alone)",
        "  batch: as the file says",
        "  web: follows profile office (tag scaler-schedule=office)",
        "  spot: not in the schedule (left alone)",
        "  gpu: not in the schedule (left alone)",
    ]
    assert [(r["method"], r["kind"]) for r in app.arm_requests()] == [("GET", "ListAgentPools")]
    assert main([*argv[:5], "--savings", "--prices", prices, "--json"]) == 0
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    sizes = {pool["pool"]: pool["vm_size"] for pool in cluster["pools"]}
    assert sizes == {"batch": "Standard_D8ds_v5", "web": "Standard_D4ds_v5"}


def test_preview_cluster_says_when_the_cluster_cannot_be_read(
    app: App, schedule: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["schedule", "preview", schedule, "--cluster", "rg-demo/aks-missing", "--days", "1"]
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: could not read rg-demo/aks-missing (")
    assert captured.err.endswith("); tags not applied\n")
    assert captured.out == (
        "rg-demo/aks-missing: not read, pools shown as the file has them (tags not applied)\n"
    )
