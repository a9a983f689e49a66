"""`aks-scaler validate | send | plan` (scaler/cli/intents.py): `validate` offline with the app's
settings in the environment; `send` and `plan` against Azurite and the emulator."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scaler.cli import main
from scaler.settings import INTENTS_QUEUE, SETTINGS
from tests.app_under_test import App

REPO_ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-000000000000"
OTHER_CLUSTER = '{"resource_group":"rg-other","cluster":"aks-x","pools":{"batch":3}}'
NOT_ALLOWED = "ClusterNotAllowed: cluster rg-other/aks-x is not in SCALER_ALLOWED_CLUSTERS"


@pytest.fixture(autouse=True)
def not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output goes to a capture, as to a pipe: no terminal, no COLUMNS, no forced colour."""
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's settings for the local stack's default cluster, and nothing else."""
    for spec in SETTINGS:
        monkeypatch.delenv(spec.name, raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("SCALER_RESOURCE_GROUP", "rg-demo")
    monkeypatch.setenv("SCALER_CLUSTER", "aks-demo")


def write(tmp_path: Path, text: str, name: str = "intent.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- validate (offline) -------------------------------------------------------------------------


@pytest.mark.usefixtures("offline")
def test_validate_says_valid_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"batch": 3}')
    assert main(["validate", path]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{path}: valid\n  rg-demo/aks-demo: batch → 3 nodes\n"
    assert captured.err == ""


@pytest.mark.usefixtures("offline")
def test_validate_summary_names_every_pool_form_and_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    path = write(
        tmp_path,
        json.dumps(
            {
                "pools": {"batch": {"power": "Stopped"}, "web": {"min": 2, "max": 10}, "gpu": 1},
                "expires_at": "2099-01-01T00:00:00Z",
                "hold_until": until.isoformat(),
            }
        ),
    )
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == (
        f"{path}: valid\n"
        "  rg-demo/aks-demo: batch → stopped, web → autoscale 2-10, gpu → 1 node\n"
        f"  expires 2099-01-01T00:00:00+00:00; holds the pools until {until.isoformat()}\n"
    )
    assert main(["validate", write(tmp_path, '{"pools": {"batch": 0}, "dry_run": true}')]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "  dry run"


@pytest.mark.usefixtures("offline")
def test_validate_never_prints_a_generated_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"pools": {"batch": 3}}')
    assert main(["validate", path]) == 0
    first = capsys.readouterr().out
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == first  # the same answer every run
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", first)
    assert main(["validate", "--json", path]) == 0
    generated = json.loads(capsys.readouterr().out).get("id")
    assert not generated or generated not in first


@pytest.mark.usefixtures("offline")
def test_validate_json_prints_the_normalised_intent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"id": "nightly-42", "pools": {"batch": 3}, "reason": "nightly run"}')
    assert main(["validate", "--json", path]) == 0
    assert capsys.readouterr().out == (
        "{\n"
        '  "id": "nightly-42",\n'
        f'  "subscription_id": "{SUB}",\n'
        '  "resource_group": "rg-demo",\n'
        '  "cluster": "aks-demo",\n'
        '  "pools": {\n'
        '    "batch": {\n'
        '      "count": 3\n'
        "    }\n"
        "  },\n"
        '  "reason": "nightly run"\n'
        "}\n"
    )


@pytest.mark.usefixtures("offline")
def test_validate_applies_the_allowlist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, OTHER_CLUSTER)
    assert main(["validate", path]) == 1  # empty allowlist: the default cluster only
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"error: {path}: {NOT_ALLOWED}\n")
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg-demo/*")
    assert main(["validate", "--json", path]) == 1
    assert capsys.readouterr().err == f"error: {path}: {NOT_ALLOWED}\n"
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg-demo/*, RG-OTHER/*")  # ASCII case-blind
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == f"{path}: valid\n  rg-other/aks-x: batch → 3 nodes\n"


@pytest.mark.usefixtures("offline")
def test_validate_exits_1_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '{"pools": {"web": {"min": 4, "max": 1}}}')
    assert main(["validate", path]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {path}: pools.web: min (4) is greater than max (1)\n"
    assert captured.out == ""


@pytest.mark.usefixtures("offline")
def test_validate_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"pools": {"batch": -4}}')))
    assert main(["validate", "-"]) == 1
    assert capsys.readouterr().err.startswith("error: <stdin>: pools.batch: ")


@pytest.mark.usefixtures("offline")
def test_validate_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/intent.json"]) == 1
    assert capsys.readouterr().err == (
        "error: cannot read /nonexistent/intent.json: No such file or directory\n"
    )


@pytest.mark.usefixtures("offline")
def test_validate_reports_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCALER_MAX_COUNT", "lots")
    assert main(["validate", write(tmp_path, '{"batch": 3}')]) == 1
    assert capsys.readouterr().err == (
        "error: SCALER_MAX_COUNT must be a whole number, not 'lots'\n"
    )


@pytest.mark.usefixtures("offline")
def test_output_is_not_wrapped_when_stdout_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pools = {f"pool{n:02d}": n for n in range(12)}
    path = write(tmp_path, json.dumps({"pools": pools}))
    expected = (
        f"{path}: valid\n  rg-demo/aks-demo: "
        + ", ".join(f"pool{n:02d} → {n} node{'' if n == 1 else 's'}" for n in range(12))
        + "\n"
    )
    assert len(expected.splitlines()[1]) > 200
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == expected
    # The same from a real process whose stdout is a pipe.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "scaler", "validate", path],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == expected


@pytest.mark.usefixtures("offline")
def test_columns_still_sets_a_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    path = write(tmp_path, '{"pools": {"batch": 3, "web": 4, "gpu": 0}}', name="i.json")
    assert main(["validate", path]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 40


# --- send ----------------------------------------------------------------------------------------


def test_send_enqueues_what_the_function_then_applies(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", write(tmp_path, '{"id": "cli-1", "pools": {"batch": 4}}')]) == 0
    printed = capsys.readouterr().out
    assert re.fullmatch(r"sent intent cli-1 to scale-intents \(message [0-9a-f-]{36}\)\n", printed)
    (queued,) = app.take(INTENTS_QUEUE)
    assert queued["id"] == "cli-1" and queued["pools"] == {"batch": {"count": 4}}
    assert queued["issued_at"]  # stamped at send time, finer than the queue's whole seconds
    app.deliver(json.dumps(queued))
    app.settle()
    assert app.only_result()["outcome"] == "applied"


def test_send_line_is_whole_however_long_the_id(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    intent_id = "release-2026-11-23." + "x" * 100
    assert (
        main(["send", write(tmp_path, json.dumps({"id": intent_id, "pools": {"batch": 4}}))]) == 0
    )
    printed = capsys.readouterr().out
    assert re.fullmatch(
        rf"sent intent {intent_id} to scale-intents \(message [0-9a-f-]{{36}}\)\n", printed
    )
    app.take(INTENTS_QUEUE)


def test_send_json_is_what_a_script_needs(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "--json", write(tmp_path, '{"pools": {"batch": 4}}')]) == 0
    printed = json.loads(capsys.readouterr().out)
    (queued,) = app.take(INTENTS_QUEUE)
    assert printed == {
        "intent_id": queued["id"],
        "queue": INTENTS_QUEUE,
        "message_id": printed["message_id"],
    }
    assert re.fullmatch(r"[0-9a-f-]{36}", printed["message_id"])


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
                f'"{SUB}", "resource_group": "rg", "cluster": "c"}}',
            ),
        ]
    )
    assert code == 3
    assert "could not enqueue the intent" in capsys.readouterr().err


# --- plan ----------------------------------------------------------------------------------------


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


def test_plan_table_keeps_the_resource_id_whole(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '{"pools": {"batch": 9, "web": {"min": 2, "max": 10}, "gpu": {"power": "Stopped"}}}',
    )
    assert main(["plan", path]) == 0
    assert capsys.readouterr().out == (
        f"/subscriptions/{SUB}/resourceGroups/rg-demo/providers/"
        "Microsoft.ContainerService/managedClusters/aks-demo: dry_run\n"
        "┏━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━┓\n"
        "┃ pool  ┃ now                     ┃ requested             ┃ desired               ┃ why                ┃ action ┃ result       ┃\n"
        "┡━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━┩\n"
        '│ batch │ 2 nodes                 │ {"count": 9}          │ {"count": 9}          │ intent this-intent │ scale  │ would_change │\n'
        '│ web   │ autoscale 2-10, 4 nodes │ {"min": 2, "max": 10} │ {"min": 2, "max": 10} │ intent this-intent │ none   │ unchanged    │\n'
        '│ gpu   │ stopped                 │ {"power": "Stopped"}  │ {"power": "Stopped"}  │ intent this-intent │ none   │ unchanged    │\n'
        "└───────┴─────────────────────────┴───────────────────────┴───────────────────────┴────────────────────┴────────┴──────────────┘\n"
    )


def test_plan_shows_what_leases_make_of_a_pool(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app.deliver(json.dumps({"id": "pipeline-a", "pools": {"batch": 4}, "lease": "PT2H"}))
    app.settle()
    app.results()
    path = write(tmp_path, '{"id": "pipeline-b", "pools": {"batch": 3}, "lease": "PT1H"}')
    assert main(["plan", "--json", path]) == 0
    (batch,) = json.loads(capsys.readouterr().out)["pools"]
    # 2 nodes before the first lease; leases of 4 and 3 add up to at least 7.
    assert batch["desired"] == {"count": 7}
    assert {lease["id"]: lease["count"] for lease in batch["why"]["leases"]} == {
        "pipeline-a": 4,
        "pipeline-b": 3,
    }
    assert main(["plan", path]) == 0
    assert "lease pipeline-a: 4 until" in capsys.readouterr().out


def test_plan_of_a_refused_intent_exits_1(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", write(tmp_path, '{"pools": {"system": 0}}')]) == 1
    assert "SystemPoolMinimum" not in capsys.readouterr().err  # shown in the table, not as a crash
    assert app.emulator.writes() == []


def test_validate_and_plan_refuse_the_same_cluster(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, OTHER_CLUSTER)
    assert main(["validate", path]) == 1
    assert capsys.readouterr().err == f"error: {path}: {NOT_ALLOWED}\n"
    assert main(["plan", "--json", path]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "rejected"
    assert f"{document['error']['code']}: {document['error']['message']}" == NOT_ALLOWED
    assert main(["plan", path]) == 1
    assert capsys.readouterr().out == (
        f"/subscriptions/{SUB}/resourceGroups/rg-other/providers/"
        f"Microsoft.ContainerService/managedClusters/aks-x: rejected\n{NOT_ALLOWED}\n"
    )
    assert app.emulator.writes() == []


# --- help ----------------------------------------------------------------------------------------


def test_help_explains_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scaler", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("usage: python -m scaler ")
    for command in ("validate", "send", "plan", "schedule"):
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
    assert "--json" in text


@pytest.mark.usefixtures("offline")
def test_a_terminal_still_gets_lines_that_fit(tmp_path: Path) -> None:
    """The same command on a 40-column terminal wraps at 40."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    write(tmp_path, '{"pools": {"batch": 3, "web": 4, "gpu": 0}}', name="i.json")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "scaler", "validate", "i.json"],
        cwd=tmp_path,
        env={**env, "NO_COLOR": "1", "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        check=True,
    )
    os.close(follower)
    printed = os.read(leader, 65536).decode()
    os.close(leader)
    assert result.stderr == b""
    lines = printed.replace("\r\n", "\n").splitlines()
    assert max(len(line) for line in lines) <= 40
    assert lines == [
        "i.json: valid",
        "  rg-demo/aks-demo: batch → 3 nodes, web",
        "→ 4 nodes, gpu → 0 nodes",
    ]
