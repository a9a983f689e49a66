"""`python -m scaler` against Azurite and the emulator: validate, send, plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaler.cli import main
from scaler.settings import INTENTS_QUEUE
from tests.app_under_test import App

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "intent.json"
    path.write_text(text)
    return str(path)


def test_validate_prints_the_normalised_intent(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", write(tmp_path, '{"batch": 3}')]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["id"] and printed["pools"] == {"batch": {"count": 3}}
    assert printed["cluster"] == "aks-demo"


def test_validate_exits_1_naming_the_field(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"pools": {"web": {"min": 4, "max": 1}}}')
    assert main(["validate", path]) == 1
    assert f"error: {path}: pools.web: min (4) is greater than max (1)" in capsys.readouterr().err


def test_validate_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/intent.json"]) == 1
    assert (
        "cannot read /nonexistent/intent.json: No such file or directory" in capsys.readouterr().err
    )


def test_send_enqueues_what_the_function_then_applies(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", write(tmp_path, '{"id": "cli-1", "pools": {"batch": 4}}')]) == 0
    assert "sent intent cli-1 to scale-intents" in capsys.readouterr().out
    (queued,) = app.take(INTENTS_QUEUE)
    assert queued["id"] == "cli-1" and queued["pools"] == {"batch": {"count": 4}}
    assert queued["issued_at"]  # stamped at send time, finer than the queue's whole seconds
    app.deliver(json.dumps(queued))
    assert app.only_result()["outcome"] == "applied"


def test_send_refuses_an_invalid_intent_and_enqueues_nothing(app: App, tmp_path: Path) -> None:
    assert main(["send", write(tmp_path, '{"pools": {"batch": -4}}')]) == 1
    assert app.take(INTENTS_QUEUE) == []


def test_send_reports_unreachable_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    code = main(
        [
            "send",
            "--connection-string",
            dead,
            write(
                tmp_path,
                '{"pools": {"batch": 1}, "subscription_id": '
                '"00000000-0000-0000-0000-000000000000", "resource_group": "rg", "cluster": "c"}',
            ),
        ]
    )
    assert code == 3
    assert "could not enqueue the intent" in capsys.readouterr().err


def test_plan_shows_the_change_and_writes_nothing(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"pools": {"batch": 9, "web": {"min": 2, "max": 10}}}')
    assert main(["plan", "--json", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "dry_run"
    assert {p["pool"]: p["outcome"] for p in document["pools"]} == {
        "batch": "would_change",
        "web": "unchanged",
    }
    assert app.emulator.writes() == []
    assert main(["plan", path]) == 0
    assert "would_change" in capsys.readouterr().out


def test_plan_of_a_refused_intent_exits_1(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", write(tmp_path, '{"pools": {"system": 0}}')]) == 1
    assert "SystemPoolMinimum" not in capsys.readouterr().err  # shown in the table, not as a crash
    assert app.emulator.writes() == []


def test_help_explains_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scaler", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("validate", "send", "plan"):
        assert command in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "scaler", "send", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(result.stdout.split())
    assert "--account-url" in text and "Storage Queue Data Message Sender" in text
