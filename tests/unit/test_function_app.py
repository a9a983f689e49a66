"""function_app.py's bindings against the settings that must exist for the host to bind them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import function_app
from local.functions_host import registered_functions, trigger_of
from scaler.settings import INTENTS_QUEUE, SETTINGS, STORAGE_CONNECTION

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_app_registers_the_queue_and_timer_triggers() -> None:
    triggers = {name: trigger_of(f) for name, f in registered_functions(function_app.app).items()}
    assert triggers["scale_intents"]["type"] == "queueTrigger"
    assert triggers["scale_intents"]["queueName"] == INTENTS_QUEUE
    assert triggers["scale_intents"]["connection"] == STORAGE_CONNECTION
    assert triggers["scale_schedule"]["type"] == "timerTrigger"


def test_every_setting_a_binding_names_is_documented_and_in_the_local_example() -> None:
    bindings = "".join(
        raw for f in registered_functions(function_app.app).values() for raw in f.get_raw_bindings()
    )
    referenced = set(re.findall(r"%([A-Za-z0-9_]+)%", bindings))
    assert referenced == {"SCALER_TIMER_SCHEDULE"}
    example = json.loads((REPO_ROOT / "local.settings.example.json").read_text())["Values"]
    assert referenced <= set(example)
    assert referenced <= {spec.name for spec in SETTINGS}
