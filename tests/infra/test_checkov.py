"""checkov over infra/ (Bicep): zero failed checks, and every skip justified inline.

checkov pins many of its own dependencies, so it lives in its own virtual environment,
.venv-checkov/, which the project's test script builds from requirements-checkov.txt. The test
fails (it does not skip) when that environment is missing, so CI cannot pass without the scan.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV_VENV = ROOT / ".venv-checkov"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
REQUIREMENTS = ROOT / "requirements-checkov.txt"

SKIP_COMMENT = re.compile(r"checkov:skip=")
# One skip per line: `// checkov:skip=CKV_AZURE_35: why this does not apply here`.
JUSTIFIED_SKIP = re.compile(r"^\s*// checkov:skip=(CKV2?_[A-Z]+_\d+): (\S.{19,})$")


def pinned_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^checkov==([\w.]+)\s*$", line.strip())
        if match:
            return match.group(1)
    raise AssertionError(f"{REQUIREMENTS.name} must pin checkov with checkov==<version>")


def run_checkov() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV} is missing. Run ./scripts/test, which creates .venv-checkov from "
            f"{REQUIREMENTS.name} (checkov needs its own virtual environment)."
        )
    env = {
        **os.environ,
        # No network: no Prisma Cloud guidelines, no version check.
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_SKIP_VERSION_CHECK": "TRUE",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
    assert result.returncode in (0, 1), (
        f"checkov exited {result.returncode}:\n{result.stderr[-4000:]}"
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    reports = report if isinstance(report, list) else [report]
    (bicep,) = [r for r in reports if r.get("check_type") == "bicep"]
    assert isinstance(bicep, dict)
    return bicep


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_checkov()


def test_checkov_is_the_pinned_version() -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing. Run ./scripts/test to create .venv-checkov.")
    version = subprocess.run(
        [str(CHECKOV), "--version"], capture_output=True, text=True, timeout=120
    ).stdout.strip()
    assert version == pinned_version(), (
        f".venv-checkov has checkov {version}, {REQUIREMENTS.name} pins {pinned_version()}; "
        "re-run ./scripts/test (or delete .venv-checkov) to rebuild it."
    )


def test_checkov_finds_no_failed_checks(report: dict[str, Any]) -> None:
    summary = report["summary"]
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['check_name']} — {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in results["failed_checks"]
    ]
    assert summary["failed"] == 0, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, (
        f"checkov could not parse: {results.get('parsing_errors')}"
    )
    assert summary["resource_count"] > 0 and summary["passed"] > 0, summary


def test_every_skip_is_inline_and_justified(report: dict[str, Any]) -> None:
    for path in sorted(INFRA.rglob("*.bicep")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SKIP_COMMENT.search(line):
                assert JUSTIFIED_SKIP.match(line), (
                    f"{path.relative_to(ROOT)}:{number}: write skips as "
                    "`// checkov:skip=CKV_AZURE_NN: <one-line reason>`"
                )
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 20, (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )


def test_no_skip_is_left_without_a_finding(report: dict[str, Any]) -> None:
    """A skip that suppresses nothing hides the next real finding; remove it instead."""
    used = {(c["check_id"], c["file_path"]) for c in report["results"]["skipped_checks"]}
    for path in sorted(INFRA.rglob("*.bicep")):
        relative = "/" + str(path.relative_to(INFRA))
        for line in path.read_text().splitlines():
            match = JUSTIFIED_SKIP.match(line)
            if match:
                assert (match.group(1), relative) in used, (
                    f"{relative}: {match.group(1)} is skipped but never reported"
                )
