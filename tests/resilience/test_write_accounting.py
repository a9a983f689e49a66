"""Every accepted ARM write is reported by some outcome, pinned down deterministically.

The load suites (test_faults, test_concurrency) account for every write statistically; this is
the one sequence they showed that loses a write's report, scripted so it happens every time:

1. an intent for two pools; the cluster read fails (500): the intent is `deferred`, and that
   first deferral is published;
2. the retry writes `batch` (accepted) and `spot` fails (500): the intent is deferred again,
   and this second deferral is not published ("later retries are in the logs");
3. the next retry writes `spot`: the final outcome is `applied`, with `batch` reported as
   `unchanged` (it already was, by the write of step 2).

No published outcome reports the `batch` write of step 2 as `started`.
"""

from __future__ import annotations

import json

from tests.app_under_test import App

INTENT = {"id": "two-pools", "cluster": "aks-demo", "pools": {"batch": 5, "spot": 3}}


def test_a_write_made_by_a_retry_that_is_deferred_again_is_reported(
    app: App, settings_override
) -> None:
    settings_override(SCALER_RETRY_BASE_SECONDS="1", SCALER_RETRY_MAX_SECONDS="1")
    app.emulator.set_throttling(False)
    app.emulator.set_faults(
        [
            {"kind": "500", "method": "GET", "times": 1},
            {"kind": "500", "method": "PUT", "path_contains": "/agentPools/spot", "times": 1},
        ]
    )
    app.deliver(json.dumps(INTENT))
    app.settle(timeout=20, quiet=2.5)
    outcomes = app.results()

    writes = [w for w in app.emulator.writes() if w["status"] == 200 and not w["fault"]]
    assert sorted(w["path"].rsplit("/", 1)[-1] for w in writes) == ["batch", "spot"]
    # The second deferral is published too: its pass wrote batch (every write is reported).
    assert [o["outcome"] for o in outcomes] == ["deferred", "deferred", "applied"]
    reported = sorted(p["pool"] for o in outcomes for p in o["pools"] if p["outcome"] == "started")
    assert reported == ["batch", "spot"], json.dumps(outcomes, indent=1)[:3000]
