"""`aks-scaler status` and `send --wait [--until-ready]` end to end against Azurite and the AKS
emulator: status explains every pool from one ARM read; --wait finds the intent's outcome in the
app's state table (scale-results keeps it for its consumer) and exits with a code per outcome.
The app runs in the local Functions host stand-in, so the CLI waits while the app works."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import function_app
from local.functions_host import LocalFunctionsHost, QueueSettings
from scaler.cli import main, wait
from scaler.settings import INTENTS_QUEUE
from tests.app_under_test import SUB, App

NOT_ALLOWED = "ClusterNotAllowed: cluster rg-other/aks-x is not in SCALER_ALLOWED_CLUSTERS"


@pytest.fixture(autouse=True)
def not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wait, "STATE_POLL_SECONDS", 0.2)
    monkeypatch.setattr(wait, "ARM_POLL_SECONDS", 0.2)


@pytest.fixture
def host(app: App) -> Iterator[LocalFunctionsHost]:
    """The app, running: every queue trigger polled as the Functions host would."""
    with app.stack.queue_service() as queues:
        settings = QueueSettings(max_polling_seconds=0.2, visibility_timeout_seconds=2)
        running = LocalFunctionsHost(function_app.app, queues, settings)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def write(tmp_path: Path, document: dict[str, object], name: str = "intent.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


# --- status ------------------------------------------------------------------------------------


@pytest.fixture
def window(
    app: App, tmp_path: Path, settings_override: Callable[..., None]
) -> tuple[datetime, datetime]:
    """A schedule with batch at 3 nodes in a window around now (2 outside); its bounds."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(minutes=30), now + timedelta(minutes=90)
    path = tmp_path / "schedule.toml"
    path.write_text(
        f"""
timezone = "UTC"
[[clusters]]
resource_group = "rg-demo"
cluster = "aks-demo"
[clusters.pools.batch]
outside = 2
windows = [{{ days = "daily", start = "{start:%H:%M}", end = "{end:%H:%M}", state = 3 }}]
"""
    )
    settings_override(SCALER_SCHEDULE_FILE=str(path))
    return start, end


def test_status_explains_each_pool_from_one_arm_read(
    app: App, window: tuple[datetime, datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = window
    before = datetime.now(UTC)
    for number, intent in enumerate(
        (
            {"id": "lease-a", "pools": {"batch": 4}, "lease": "PT2H", "reason": "pipeline A"},
            {"id": "lease-b", "pools": {"batch": 3}, "lease": "PT1H", "reason": "pipeline B"},
            {
                "id": "freeze-web",
                "pools": {"web": {"min": 2, "max": 6}},
                "hold": "PT30M",
                "reason": "release freeze",
            },
        )
    ):
        app.deliver(json.dumps(intent), message_id=f"m-{number}")
    app.settle()
    after = datetime.now(UTC)
    app.emulator.wait_until_settled()
    app.results()
    app.emulator.clear_requests()

    assert main(["status", "rg-demo/aks-demo", "--json"]) == 0
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    # One ARM read for the whole cluster, and nothing written.
    assert [(r["method"], r["kind"]) for r in app.arm_requests()] == [("GET", "ListAgentPools")]
    assert cluster["cluster"] == "rg-demo/aks-demo" and cluster["error"] is None
    assert cluster["schedule"] == "schedule.toml"
    pools = {p["pool"]: p for p in cluster["pools"]}
    assert list(pools) == ["system", "batch", "web", "spot", "gpu"]  # every pool ARM has

    batch = pools["batch"]
    # The window asks 3; the leases (4 + 3) raise the floor to 7.
    assert batch["current"]["count"] == 7 and batch["desired"] == {"count": 7}
    assert batch["operation_in_progress"] is False
    assert (batch["action"], batch["result"]) == ("none", "unchanged")
    why = batch["why"]
    assert why["source"] == "schedule"
    window_text = f"window daily {start:%H:%M}-{end:%H:%M}"
    assert why["detail"] == f"{window_text}; 2 lease(s) ask at least 7 node(s)"
    assert datetime.fromisoformat(why["until"]) == end  # the window's end
    leases = {lease["id"]: lease for lease in why["leases"]}
    assert {i: (lease["count"], lease["reason"]) for i, lease in leases.items()} == {
        "lease-a": (4, "pipeline A"),
        "lease-b": (3, "pipeline B"),
    }
    for lease_id, hours in (("lease-a", 2), ("lease-b", 1)):
        expiry = datetime.fromisoformat(leases[lease_id]["until"])
        assert before + timedelta(hours=hours) <= expiry <= after + timedelta(hours=hours)
    assert batch["schedule"] == {
        "state": {"count": 3},
        "reason": window_text,
        "next_transition": end.isoformat(),
        "next_state": {"count": 2},
    }

    web = pools["web"]
    assert web["desired"] == {"min": 2, "max": 6}
    assert (web["current"]["min"], web["current"]["max"]) == (2, 6)
    assert web["why"]["source"] == "hold" and web["why"]["id"] == "freeze-web"
    assert web["why"]["reason"] == "release freeze" and web["why"]["leases"] == []
    hold_end = datetime.fromisoformat(web["why"]["until"])
    assert before + timedelta(minutes=30) <= hold_end <= after + timedelta(minutes=30)
    assert web["schedule"] is None  # the schedule does not name web

    system = pools["system"]
    assert system["desired"] is None and system["why"]["source"] == "none"
    assert system["current"]["count"] == 3 and system["action"] is None

    # For people: the same, as a table.
    app.emulator.clear_requests()
    assert main(["status", "rg-demo/aks-demo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("rg-demo/aks-demo (schedule schedule.toml)\n")
    assert "lease lease-a (pipeline A): 4 until" in text
    assert "lease lease-b (pipeline B): 3 until" in text
    assert "hold by intent freeze-web (release freeze)" in text
    assert f"{end:%Y-%m-%d %H:%M}:00Z (in 1h 29m) → 2 nodes" in text or (
        f"{end:%Y-%m-%d %H:%M}:00Z (in 1h 30m) → 2 nodes" in text
    )
    assert "- (left alone)" in text
    assert len(app.lists()) == 1 and app.emulator.writes() == []


def test_status_shows_an_operation_in_progress(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    app.emulator.force_pool("rg-demo", "aks-demo", "batch", provisioningState="Scaling")
    assert main(["status", "--json"]) == 0  # no TARGET: the default cluster first
    cluster = json.loads(capsys.readouterr().out)["clusters"][0]
    assert cluster["cluster"] == "rg-demo/aks-demo"
    (batch,) = [p for p in cluster["pools"] if p["pool"] == "batch"]
    assert batch["operation_in_progress"] is True
    assert batch["current"]["provisioning_state"] == "Scaling"
    assert main(["status"]) == 0
    assert "Scaling: operation in progress" in capsys.readouterr().out


def test_status_of_every_known_cluster_reads_each_once(
    app: App, settings_override: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    # rg-demo/* names no cluster; rg-demo/aks-second does; the schedule names rg-none/aks-none,
    # which the allowlist refuses: shown as refused, never read.
    settings_override(SCALER_ALLOWED_CLUSTERS="rg-demo/*, rg-demo/aks-second")
    assert main(["status", "--json"]) == 0
    clusters = json.loads(capsys.readouterr().out)["clusters"]
    assert [c["cluster"] for c in clusters] == [
        "rg-demo/aks-demo",
        "rg-none/aks-none",
        "rg-demo/aks-second",
    ]
    assert clusters[1]["error"]["code"] == "ClusterNotAllowed" and clusters[1]["pools"] == []
    assert [p["pool"] for p in clusters[2]["pools"]] == ["system", "batch"]
    assert len(app.lists()) == 2


def test_status_refuses_a_target_outside_the_allowlist(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", f"{SUB}/rg-other/aks-x"]) == 1
    assert capsys.readouterr().err == f"error: {NOT_ALLOWED}\n"
    assert main(["status", "rg-other/aks-x", "--json"]) == 1
    assert capsys.readouterr().out == ""
    assert main(["status", "not a cluster"]) == 1
    assert "must look like resourceGroup/cluster" in capsys.readouterr().err
    assert app.arm_requests() == []


# --- send --wait ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("host")
def test_send_wait_prints_the_outcome_and_leaves_scale_results_alone(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"id": "wait-1", "pools": {"batch": 4}})
    assert main(["send", "--wait", "--timeout", "PT30S", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sent intent wait-1 to scale-intents (message ")
    assert lines[1] == "intent wait-1: applied"
    assert lines[2] == '  batch: started, desired {"count": 4} (intent wait-1)'
    # The outcome is still on scale-results for whoever consumes it.
    (published,) = app.take("scale-results", timeout=5)
    assert published["intent_id"] == "wait-1" and published["outcome"] == "applied"

    path = write(tmp_path, {"id": "wait-2", "pools": {"batch": 4}}, name="again.json")
    assert main(["send", "--wait", "--json", "--timeout", "30", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["intent_id"] == "wait-2" and document["status"] == "done"
    assert document["outcome"]["outcome"] == "unchanged"
    assert document["outcome"]["message_id"] == document["message_id"]


@pytest.mark.usefixtures("host")
def test_send_wait_exits_4_on_a_rejected_intent(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"id": "wait-system", "pools": {"system": 0}})
    assert main(["send", "--wait", "--until-ready", "--timeout", "PT30S", path]) == 4
    out = capsys.readouterr().out
    assert "intent wait-system: rejected: SystemPoolMinimum: " in out
    assert app.emulator.writes() == []


@pytest.mark.usefixtures("host")
def test_send_wait_exits_4_when_the_id_belongs_to_another_intent(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "--wait", write(tmp_path, {"id": "taken", "pools": {"batch": 3}})]) == 0
    capsys.readouterr()
    other = write(tmp_path, {"id": "taken", "pools": {"batch": 5}}, name="other.json")
    assert main(["send", "--wait", "--json", "--timeout", "PT30S", other]) == 4
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "rejected" and document["outcome"] is None
    assert app.pool("batch")["count"] == 3


def test_send_wait_times_out_with_exit_6(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody processes the queue: no outcome within the timeout."""
    path = write(tmp_path, {"id": "nobody-home", "pools": {"batch": 4}})
    started = time.monotonic()
    assert main(["send", "--wait", "--json", "--timeout", "PT1S", path]) == 6
    assert 1 <= time.monotonic() - started < 10
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert (document["status"], document["outcome"]) == ("timed_out", None)
    assert captured.err.endswith(
        "error: timed out after 1 s waiting for the outcome of intent nobody-home "
        "(not recorded yet)\n"
    )
    (queued,) = app.take(INTENTS_QUEUE)  # it was sent
    assert queued["id"] == "nobody-home"


def test_send_wait_refuses_a_dry_run_and_sends_nothing(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"pools": {"batch": 4}, "dry_run": True})
    assert main(["send", "--wait", path]) == 2
    assert "a dry run records none" in capsys.readouterr().err
    assert main(["send", "--until-ready", path]) == 2
    assert app.take(INTENTS_QUEUE) == []


@pytest.mark.usefixtures("host")
def test_send_until_ready_returns_only_once_the_pool_is_succeeded(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app.emulator.set_operation_seconds(3)
    path = write(tmp_path, {"id": "ready-1", "pools": {"batch": 5}})
    assert main(["send", "--wait", "--until-ready", "--timeout", "PT60S", path]) == 0
    returned = time.time()
    pool = app.pool("batch")
    assert (pool["count"], pool["provisioningState"]) == (5, "Succeeded")
    (put,) = app.emulator.writes()
    assert returned >= put["time"] + 3  # not before the operation had finished
    # The CLI read the pools while the operation ran, and said so.
    reads_after = [r for r in app.lists() if r["seq"] > put["seq"]]
    assert len(reads_after) >= 2
    captured = capsys.readouterr()
    assert "batch: 5 nodes, Scaling (operation in progress); waiting for 5 nodes" in captured.err
    assert captured.out.splitlines()[-1] == "ready: batch: 5 nodes, Succeeded"

    path = write(tmp_path, {"id": "ready-2", "pools": {"batch": 6}}, name="json.json")
    assert main(["send", "--wait", "--until-ready", "--json", "--timeout", "PT60S", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "done" and document["ready"] is True
    assert document["pools"]["batch"]["count"] == 6
    assert document["pools"]["batch"]["provisioning_state"] == "Succeeded"


@pytest.mark.usefixtures("host")
def test_send_until_ready_times_out_while_the_operation_runs(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app.emulator.set_operation_seconds(60)
    path = write(tmp_path, {"id": "slow-1", "pools": {"batch": 5}})
    assert main(["send", "--wait", "--until-ready", "--json", "--timeout", "PT4S", path]) == 6
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["outcome"]["outcome"] == "applied"  # the outcome came; readiness did not
    assert (document["status"], document["ready"]) == ("timed_out", False)
    assert document["pools"]["batch"]["provisioning_state"] == "Scaling"
    assert "waiting for the pools of intent slow-1 to be ready" in captured.err
