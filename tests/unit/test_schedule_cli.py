"""`aks-scaler schedule check|preview` (scaler/cli/schedule.py), called through `scaler.cli.main`."""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scaler.cli import main
from scaler.domain.pools import PoolState
from scaler.service_layer.ports import GatewayError
from scaler.settings import SETTINGS
from tests.fakes import pool as fake_pool

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's defaults, a fixed clock, a wide plain terminal, and the repository as cwd."""
    for spec in SETTINGS:
        monkeypatch.delenv(spec.name, raising=False)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr("scaler.cli.schedule.utc_now", lambda: NOW)
    monkeypatch.chdir(REPO_ROOT)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- check ---------------------------------------------------------------------------------------


def test_check_accepts_the_shipped_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "check", "schedule.toml"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        "schedule.toml: valid\n"
        "  rg-demo/aks-demo (Europe/Amsterdam): pools batch, web, gpu; 2 exceptions\n"
    )
    assert captured.err == ""


def test_check_warns_about_rules_that_have_lapsed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("scaler.cli.schedule.utc_now", lambda: datetime(2027, 2, 1, tzinfo=UTC))
    assert main(["schedule", "check", "schedule.toml"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: schedule.toml: clusters[0].exceptions[0]: its last date (2026-12-31) has "
        "passed; it no longer applies",
        "warning: schedule.toml: clusters[0].exceptions[1]: until 2027-01-15 has passed; the "
        "rule no longer applies",
    ]


def test_check_json_is_the_summary_as_a_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("scaler.cli.schedule.utc_now", lambda: datetime(2027, 2, 1, tzinfo=UTC))
    assert main(["schedule", "check", "--json", "schedule.toml"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "file": "schedule.toml",
        "valid": True,
        "clusters": [
            {
                "cluster": "rg-demo/aks-demo",
                "timezone": "Europe/Amsterdam",
                "pools": ["batch", "web", "gpu"],
                "exceptions": 2,
                "holidays": [],
            }
        ],
        "selections": [],
        "states": [],
        "profiles": [],
        "warnings": [
            "schedule.toml: clusters[0].exceptions[0]: its last date (2026-12-31) has passed; "
            "it no longer applies",
            "schedule.toml: clusters[0].exceptions[1]: until 2027-01-15 has passed; the rule no "
            "longer applies",
        ],
    }
    assert len(captured.err.splitlines()) == 2  # and the warnings for people, on stderr


def test_check_json_of_a_broken_schedule_prints_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'timezone = "UTC"\n')
    assert main(["schedule", "check", "--json", path]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {path}: clusters: is required: add at least one [[clusters]] table\n"
    )


def test_check_does_not_wrap_when_stdout_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS")
    pools = "".join(f"[clusters.pools.pool{n:02d}]\noutside = 1\n" for n in range(20))
    path = write(
        tmp_path,
        f'timezone = "UTC"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n{pools}',
    )
    assert main(["schedule", "check", path]) == 0
    assert capsys.readouterr().out == (
        f"{path}: valid\n"
        f"  rg/aks (UTC): pools {', '.join(f'pool{n:02d}' for n in range(20))}; 0 exceptions\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'timezone = "Europe/Amsterdam"\n[[clusters]\n',
            "not valid TOML: Expected ']]' at the end of an array declaration (at line 2, "
            "column 11)",
        ),
        (
            'timezone = "Europe/Amsterdam"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
            '[clusters.pools.batch]\nwindows = [{ days = "Mon-Fri", start = "07:00", end = "19:00",'
            ' state = 6 }, { days = "Mon", start = "18:00", end = "20:00", state = 2 }]\n',
            "clusters[0].pools.batch.windows[1]: overlaps windows[0] (Mon 18:00–19:00)",
        ),
        (
            'timezone = "Europe/Amsterdm"\n',
            "timezone: 'Europe/Amsterdm' is not an IANA time zone (e.g. \"Europe/Amsterdam\", "
            '"UTC")',
        ),
    ],
)
def test_check_exits_1_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, text)
    assert main(["schedule", "check", path]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {path}: {message}\n"
    assert captured.out == ""


def test_check_uses_scaler_max_count(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCALER_MAX_COUNT", "5")
    assert main(["schedule", "check", "schedule.toml"]) == 1
    assert capsys.readouterr().err == (
        "error: schedule.toml: clusters[0].pools.batch.windows[0].state: 6 is above the limit of "
        "5 (SCALER_MAX_COUNT)\n"
    )


def test_check_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (REPO_ROOT / "schedule.toml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["schedule", "check", "-"]) == 0
    assert capsys.readouterr().out.startswith("<stdin>: valid\n")


def test_check_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "check", "/nonexistent/schedule.toml"]) == 1
    assert capsys.readouterr().err == (
        "error: cannot read /nonexistent/schedule.toml: No such file or directory\n"
    )


def test_check_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('# café\ntimezone = "UTC"\n'.encode("latin-1"))
    assert main(["schedule", "check", str(path)]) == 1
    assert capsys.readouterr().err == f"error: {path}: not UTF-8 text (bad byte at 5)\n"


# --- preview --json --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (
            "2026-11-23T08:30:00+01:00",  # Monday, business hours
            {
                "rg-demo/aks-demo": {
                    "batch": {"count": 6},
                    "web": {"min": 3, "max": 20},
                    "gpu": {"count": 0},
                }
            },
        ),
        (
            "2026-11-23T18:30:00Z",  # 19:30 in Amsterdam
            {
                "rg-demo/aks-demo": {
                    "batch": {"power": "Stopped"},
                    "web": {"min": 1, "max": 5},
                    "gpu": {"count": 0},
                }
            },
        ),
        ("2026-12-24T10:00:00+01:00", {}),  # every pool: keep
        (
            "2027-01-15T07:00:00+01:00",  # Friday; the gpu rule has lapsed
            {"rg-demo/aks-demo": {"batch": {"count": 6}, "web": {"min": 1, "max": 5}}},
        ),
    ],
)
def test_preview_json_at_an_instant(
    capsys: pytest.CaptureFixture[str], at: str, expected: dict[str, object]
) -> None:
    assert main(["schedule", "preview", "schedule.toml", "--at", at, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_preview_json_output_is_exactly_the_intent_pool_forms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["schedule", "preview", "schedule.toml", "--at", "2026-11-28T12:00Z", "--json"]) == 0
    )
    assert capsys.readouterr().out == (
        "{\n"
        '  "rg-demo/aks-demo": {\n'
        '    "batch": {\n'
        '      "power": "Stopped"\n'
        "    },\n"
        '    "web": {\n'
        '      "min": 1,\n'
        '      "max": 5\n'
        "    },\n"
        '    "gpu": {\n'
        '      "count": 0\n'
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_preview_json_defaults_to_now(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "preview", "schedule.toml", "--json"]) == 0  # Monday 13:00 CET
    assert json.loads(capsys.readouterr().out)["rg-demo/aks-demo"]["batch"] == {"count": 6}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--at", "2026-11-23T08:30:00"], "has no time zone; add Z or an offset like +01:00"),
        (["--at", "tomorrow"], "'tomorrow' is not an ISO-8601 timestamp"),
        (["--json", "--days", "3"], "argument --days: not allowed with argument --json"),
        (["--days", "0"], "argument --days: must be a whole number from 1 to 31"),
    ],
)
def test_preview_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schedule", "preview", "schedule.toml", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_preview_of_a_broken_schedule_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'timezone = "UTC"\n')
    assert main(["schedule", "preview", path, "--json"]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: clusters: is required: add at least one [[clusters]] table\n"
    )


# --- preview: the timeline ----------------------------------------------------------------------------


def timeline(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["schedule", "preview", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_preview_draws_a_week_with_one_row_per_pool(capsys: pytest.CaptureFixture[str]) -> None:
    lines = timeline(capsys, "schedule.toml", "--at", "2026-12-21T09:00:00+01:00", "--days", "7")
    assert "rg-demo/aks-demo · Europe/Amsterdam · Mon 2026-12-21 – Sun 2026-12-27" in lines[0]
    rows = [m[1] for line in lines if (m := re.match(r"│ (\w+) +│", line))]
    assert rows == ["batch", "web", "gpu"]
    days = [m[1] for line in lines if (m := re.search(r"│ (\w{3} \d\d) ", line))]
    assert days == ["Mon 21", "Tue 22", "Wed 23", "Thu 24", "Fri 25", "Sat 26", "Sun 27"] * 3
    text = "\n".join(lines)
    # batch: stopped until 07:00, 6 nodes until 19:00, stopped again; left alone on the 24th
    assert "│ batch │ Mon 21 " + "·" * 14 + "█" * 24 + "·" * 10 in text
    assert "│       │ Thu 24 " + "╌" * 48 in text
    assert "│       │ Sat 26 " + "·" * 48 in text
    assert "· stopped   █ 6 nodes   ╌ left alone (keep)" in text
    assert (
        "│       │ rules: outside windows; window Mon-Fri 07:00-19:00           │\n"
        "│       │        exception 2026-12-24                                  │"
    ) in text
    assert "at Mon 21 09:00: 6 nodes (window Mon-Fri 07:00-19:00)" in text
    # web: 1-5 at night and at weekends, 3-20 08:00-18:00
    assert "│ web   │ Mon 21 " + "█" * 16 + "▓" * 20 + "█" * 12 in text
    assert "│       │ █ autoscale 1–5   ▓ autoscale 3–20   " in text
    assert "at Mon 21 09:00: 0 nodes (until 2027-01-15)" in text
    assert "one character = 30 minutes, local time (Europe/Amsterdam)" in text


def test_preview_shows_the_clock_skipping_an_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        'timezone = "America/New_York"\n[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
        '[clusters.pools.night]\noutside = 1\nwindows = [{ days = "Sun", start = "02:00", '
        'end = "04:00", state = 5 }]\n',
    )
    text = "\n".join(timeline(capsys, path, "--at", "2026-03-08T12:00:00Z", "--days", "1"))
    assert "rg/aks · America/New_York · Sun 2026-03-08 – Sun 2026-03-08" in text
    assert "│ night │ Sun 08 " + "█" * 4 + "××" + "▓" * 2 + "█" * 40 in text
    assert "█ 1 node   × clock skipped (DST)   ▓ 5 nodes" in text


def test_preview_fits_an_80_column_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lines = timeline(capsys, "schedule.toml", "--at", "2026-12-21T09:00:00+01:00")
    assert max(len(line) for line in lines) <= 80
    assert "│ batch │ Mon 21 " + "·" * 14 + "█" * 24 + "·" * 10 in "\n".join(lines)


# --- calendars: holidays, day rules, named states and profiles -------------------------------------

CALENDAR = (
    'timezone = "Europe/Amsterdam"\n'
    'holidays = { country = "NL" }\n'
    '[states]\noffice = { min = 3, max = 20 }\nnight = { power = "Stopped" }\n'
    '[profiles.office-hours]\noutside = "night"\n'
    'windows = [{ days = "Mon-Fri", start = "08:00", end = "18:00", state = "office" }]\n'
    '[[clusters]]\nresource_group = "rg"\ncluster = "aks"\n'
    '[clusters.pools.batch]\noutside = "night"\n'
    'windows = [{ days = "Mon#1", start = "07:00", end = "19:00", state = 6 }]\n'
    '[[clusters.exceptions]]\non = "holidays"\npools = "*"\nstate = "keep"\n'
)


def test_check_lists_holidays_states_and_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CALENDAR)
    assert main(["schedule", "check", path]) == 0
    assert capsys.readouterr().out == (
        f"{path}: valid\n"
        "  rg/aks (Europe/Amsterdam): pools batch; 1 exception; holidays NL\n"
        "  states: office, night\n"
        "  profiles (tag scaler-schedule=<name>): office-hours\n"
    )
    assert main(["schedule", "check", "--json", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["clusters"][0]["holidays"] == ["NL"]
    assert (document["states"], document["profiles"]) == (["office", "night"], ["office-hours"])


def test_preview_marks_holidays_and_shows_nth_weekdays_and_named_states(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CALENDAR)
    text = "\n".join(timeline(capsys, path, "--at", "2026-12-25T09:00:00+01:00", "--days", "11"))
    # Christmas and Boxing Day, New Year's Day: marked, named, and left alone
    assert "│ batch │ Fri 25*" + "╌" * 48 in text
    assert "│       │ Sat 26*" + "╌" * 48 in text
    assert "│       │ Sun 27 " + "·" * 48 in text
    assert "│       │ Fri 01*" + "╌" * 48 in text
    # the first Monday of January: 6 nodes 07:00-19:00
    assert "│       │ Mon 04 " + "·" * 14 + "█" * 24 + "·" * 10 in text
    assert "╌ left alone (keep)   · night (stopped)   █ 6 nodes" in text
    assert "holiday 2026-12-25 Christmas Day" in text
    assert "window Mon#1 07:00-19:00" in text
    assert "at Fri 25 09:00: left alone (keep) (holiday 2026-12-25 Christmas Day)" in text
    assert "* public holiday (NL): Fri 25 Christmas Day, Sat 26 Second Day of Christmas" in text
    assert "profiles (a pool tagged scaler-schedule=<name> follows one): office-hours" in text


def test_preview_of_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CALENDAR)
    argv = (path, "--profile", "office-hours", "--at", "2026-12-24T09:00:00+01:00", "--days", "2")
    text = "\n".join(timeline(capsys, *argv))
    assert "profile office-hours · Europe/Amsterdam · Thu 2026-12-24 – Fri 2026-12-25" in text
    assert "│ tagged pool   │ Thu 24 " + "·" * 16 + "█" * 20 + "·" * 12 in text
    assert "│ (profile      │ Fri 25*" + "·" * 16 + "█" * 20 + "·" * 12 in text
    assert "│ office-hours) │ · night (stopped)   █ office (autoscale 3–20)" in text
    assert "office (autoscale 3–20)" in text
    # in the cluster, its exceptions apply: Christmas is left alone
    text = "\n".join(timeline(capsys, *argv, "--cluster", "rg/aks"))
    assert "Fri 25*" + "╌" * 48 in text
    assert "window Mon-Fri 08:00-18:00 (profile office-hours)" in text


def test_preview_json_of_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CALENDAR)
    at = ["--at", "2026-12-24T09:00:00+01:00", "--json"]
    assert main(["schedule", "preview", path, "--profile", "office-hours", *at]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "profile": "office-hours",
        "cluster": None,
        "timezone": "Europe/Amsterdam",
        "state": {"min": 3, "max": 20},
        "named": "office",
        "reason": "window Mon-Fri 08:00-18:00 (profile office-hours)",
    }


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["--profile", "nope"], "error: the schedule has no profile 'nope' (profiles: office-hours)\n", 1),
        (["--profile", "office-hours", "--cluster", "rg/x"], "error: the schedule has no cluster 'rg/x' (clusters: rg/aks)\n", 1),
        (["--cluster", "aks"], "error: --cluster 'aks' must look like resourceGroup/cluster\n", 2),
        (["--baseline", "6"], "error: --baseline goes with --savings\n", 2),
    ],
)  # fmt: skip
def test_preview_of_an_unknown_profile_or_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str, code: int
) -> None:
    path = write(tmp_path, CALENDAR)
    assert main(["schedule", "preview", path, *argv]) == code
    assert capsys.readouterr().err == message


# --- preview --savings ---------------------------------------------------------------------------

DST_WEEK = ["--savings", "--at", "2026-10-19T00:00:00+02:00"]


def test_preview_savings_json_has_exactly_these_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"Standard_D8ds_v5": 0.452, "currency": "EUR"}')
    argv = [*DST_WEEK, "--json", "--prices", str(prices), "--vm-size", "batch=Standard_D8ds_v5"]
    argv += ["--price", "web=0.2", "--baseline", "gpu=1"]
    assert main(["schedule", "preview", "schedule.toml", *argv]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["method"].startswith("saved = baseline nodes × hours in the week − Σ")
    (cluster,) = document.pop("clusters")
    pools = {pool["pool"]: pool for pool in cluster.pop("pools")}
    # Mon 19 October 00:00 CEST to Mon 26 October 00:00 CET: 169 hours.
    assert cluster == {
        "cluster": "rg-demo/aks-demo",
        "timezone": "Europe/Amsterdam",
        "week_start": "2026-10-19T00:00:00+02:00",
        "week_end": "2026-10-26T00:00:00+01:00",
        "hours_in_week": 169,
        "total": {
            "baseline_node_hours": 1690,  # 1014 + 507 + 169
            "scheduled_node_hours": 629,  # 360 + 269 + 0
            "saved_node_hours": 1061,
            "saved_money": 343.208,  # 295.608 + 47.6 (gpu is not priced)
            "counted_pools": 3,
            "priced_pools": 2,
        },
    }
    assert document == {
        "method": document["method"],
        "autoscale": "min",
        "currency": "EUR",
        "total": cluster["total"],
    }
    # batch: 6 nodes (its window) × 169 = 1014; the window asks 5 × 12 h × 6 = 360; stopped
    # otherwise. Saved 654 node-hours × 0.452 = 295.608.
    assert pools["batch"] == {
        "pool": "batch",
        "profile": None,
        "baseline": {"nodes": 6, "from": "largest window Mon-Fri 07:00-19:00"},
        "hours_in_week": 169,
        "baseline_node_hours": 1014,
        "scheduled_node_hours": 360,
        "saved_node_hours": 654,
        "vm_size": "Standard_D8ds_v5",
        "price_per_hour": 0.452,
        "saved_money": 295.608,
    }
    # web: 3 (min of 3-20) × 169 = 507; 5 × 10 h × 3 + 119 h × 1 = 269; 238 × 0.2 = 47.6.
    assert (pools["web"]["saved_node_hours"], pools["web"]["saved_money"]) == (238, 47.6)
    assert pools["web"]["baseline"]["from"] == (
        "largest window Mon-Fri 08:00-18:00 (autoscale 3-20 at min)"
    )
    # gpu: no window; --baseline gpu=1; held at 0 by the exception all week: saved 169.
    assert pools["gpu"]["baseline"] == {"nodes": 1, "from": "--baseline 1"}
    assert (pools["gpu"]["scheduled_node_hours"], pools["gpu"]["saved_money"]) == (0, None)


def test_preview_savings_table_says_how_it_is_computed(capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n".join(timeline(capsys, "schedule.toml", *DST_WEEK))
    words = " ".join(text.split())  # the title and the explanation wrap at the terminal's width
    assert (
        "rg-demo/aks-demo · savings per week · Mon 2026-10-19 00:00 – Mon 2026-10-26 00:00 "
        "Europe/Amsterdam (169 h)" in words
    )
    assert "  baseline of batch: 6 = largest window Mon-Fri 07:00-19:00" in text
    assert (
        "  baseline of web: 3 = largest window Mon-Fri 08:00-18:00 (autoscale 3-20 at min)" in text
    )
    assert re.search(r"│ batch +│ 6 nodes +│ +1,014 │ +360 │ +654 │ +64% │", text)
    assert re.search(r"│ gpu +│ none: give --baseline +│ +- │", text)
    assert re.search(r"│ total +│ +│ +1,521 │ +629 │ +892 │ +59% │", text)
    assert "how: saved = baseline nodes × hours in the week" in words
    assert "autoscale counts its min, --autoscale max or mid to change" in words


def test_preview_savings_defaults_to_this_week_from_monday(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schedule", "preview", "schedule.toml", "--savings", "--json"]) == 0
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    assert cluster["week_start"] == "2026-11-23T00:00:00+01:00"  # NOW is Monday 23 November


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vm-size", "batch=Standard_D8ds_v5"], "--vm-size goes with --prices"),
        (["--price", "web"], "--price 'web' must look like POOL=VALUE"),
        (["--price", "web=free"], "--price 'web=free': the price must be a number of 0 or more"),
        (["--baseline", "lots"], "--baseline: 'lots' is neither a node count nor a named state"),
        (["--autoscale", "avg"], "argument --autoscale: invalid choice: 'avg'"),
    ],
)
def test_preview_savings_refusals(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        code = main(["schedule", "preview", "schedule.toml", "--savings", *argv])
    except SystemExit as exited:
        code = int(exited.code or 0)
    assert code in (1, 2)
    assert message in capsys.readouterr().err


def test_preview_savings_of_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CALENDAR)
    argv = ["--profile", "office-hours", "--savings", "--at", "2026-11-23T00:00:00+01:00"]
    assert main(["schedule", "preview", path, *argv, "--json"]) == 0
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    (pool,) = cluster["pools"]
    # office (3 at min) Mon-Fri 08-18: 5 × 10 × 3 = 150; stopped otherwise; 3 × 168 = 504.
    assert (pool["profile"], pool["scheduled_node_hours"], pool["saved_node_hours"]) == (
        "office-hours",
        150,
        354,
    )


# --- preview --cluster: pools with the profile their tag gives them ------------------------------


def tagged_pools(settings: object, cluster: object) -> list[PoolState]:
    return [
        replace(fake_pool("batch"), vm_size="Standard_D8ds_v5"),
        replace(
            fake_pool("web"), tags={"scaler-schedule": "office-hours"}, vm_size="Standard_D4ds_v5"
        ),
        replace(fake_pool("spot"), tags={"scaler-schedule": "nope"}),
        replace(fake_pool("gpu"), tags={"scaler": "off"}),
        replace(fake_pool("system", mode="System")),
    ]


def test_preview_cluster_shows_each_pool_with_the_profile_from_its_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg/aks")
    monkeypatch.setattr("scaler.cli.schedule.read_cluster_pools", tagged_pools)
    path = write(tmp_path, CALENDAR)
    argv = [path, "--cluster", "rg/aks", "--at", "2026-11-23T09:00:00+01:00", "--days", "1"]
    lines = timeline(capsys, *argv)
    assert lines[:6] == [
        "rg/aks: 5 pools read from Azure",
        "  batch: as the file says",
        "  web: follows profile office-hours (tag scaler-schedule=office-hours)",
        "  spot: tagged scaler-schedule=nope, a profile the file does not define: not scheduled",
        "  gpu: excluded by its tag scaler=off: the scaler never writes it",
        "  system: not in the schedule (left alone)",
    ]
    text = "\n".join(lines)
    assert "│ (profile      │" in text and "office-hours) │" in text
    assert "window Mon-Fri 08:00-18:00 (profile office-hours)" in text
    assert (
        main(["schedule", "preview", *argv[:3], "--at", "2026-11-23T09:00:00+01:00", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "rg/aks": {"batch": {"power": "Stopped"}, "web": {"min": 3, "max": 20}}
    }


def test_preview_cluster_savings_prices_by_the_vm_sizes_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg/aks")
    monkeypatch.setattr("scaler.cli.schedule.read_cluster_pools", tagged_pools)
    prices = tmp_path / "prices.toml"
    prices.write_text("Standard_D4ds_v5 = 0.25\n")
    argv = ["--cluster", "rg/aks", "--savings", "--at", "2026-11-23T00:00:00+01:00", "--json"]
    assert (
        main(["schedule", "preview", write(tmp_path, CALENDAR), *argv, "--prices", str(prices)])
        == 0
    )
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    web = next(p for p in cluster["pools"] if p["pool"] == "web")
    # the profile: 3 × 168 = 504 − 150 = 354 node-hours × 0.25 = 88.5
    assert (web["profile"], web["vm_size"], web["saved_money"]) == (
        "office-hours",
        "Standard_D4ds_v5",
        88.5,
    )


def test_preview_cluster_says_when_it_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(settings: object, cluster: object) -> list[PoolState]:
        raise GatewayError("AuthorizationFailed", "no read access", transient=False)

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg/aks")
    monkeypatch.setattr("scaler.cli.schedule.read_cluster_pools", unreachable)
    path = write(tmp_path, CALENDAR)
    assert main(["schedule", "preview", path, "--cluster", "rg/aks", "--days", "1"]) == 3
    captured = capsys.readouterr()
    assert captured.err == (
        "warning: could not read rg/aks (AuthorizationFailed: no read access); tags not applied\n"
    )
    assert captured.out.startswith(
        "rg/aks: not read, pools shown as the file has them (tags not applied)\n"
    )
    assert "│ batch │" in captured.out
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    assert main(["schedule", "preview", path, "--cluster", "rg/aks", "--days", "1"]) == 3
    assert "cannot read rg/aks: set AZURE_SUBSCRIPTION_ID" in capsys.readouterr().err
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("SCALER_ALLOWED_CLUSTERS", "rg/other")
    assert main(["schedule", "preview", path, "--cluster", "rg/aks", "--days", "1"]) == 3
    assert capsys.readouterr().err == (
        "warning: ClusterNotAllowed: cluster rg/aks is not in SCALER_ALLOWED_CLUSTERS; not "
        "read, tags not applied\n"
    )


# --- entries that select clusters by tag -------------------------------------------------------

SELECTING = """timezone = "UTC"
[[clusters]]
select = { tag = "team=[bold]data[/]" }
subscription_id = "00000000-0000-0000-0000-00000000000c"
[clusters.pools.batch]
outside = 3
"""


def test_check_and_preview_show_entries_that_select_by_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SELECTING)
    label = "clusters tagged team=[bold]data[/] in 00000000-0000-0000-0000-00000000000c"
    assert main(["schedule", "check", path]) == 0
    assert f"  {label} (UTC): pools batch; 0 exceptions\n" in capsys.readouterr().out
    assert main(["schedule", "check", "--json", path]) == 0
    (selection,) = json.loads(capsys.readouterr().out)["selections"]
    assert selection["tag"] == "team=[bold]data[/]" and selection["pools"] == ["batch"]
    assert main(["schedule", "preview", "--json", path]) == 0
    assert json.loads(capsys.readouterr().out) == {label: {"batch": {"count": 3}}}
    assert main(["schedule", "preview", "--days", "1", path]) == 0
    assert "team=[bold]data[/]" in capsys.readouterr().out  # shown as written, never as markup
