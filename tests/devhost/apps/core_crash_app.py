"""An app for the crash test: waves of slow activities that log every run to a marker file."""

from __future__ import annotations

import os
import time
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

MARKER_ENV = "DEVHOST_TEST_MARKER"
WAVES = 4
WAVE_SIZE = 5


def _mark(line: str) -> None:
    # One write per line in append mode: lines survive SIGKILL (the kernel already has them).
    with open(os.environ[MARKER_ENV], "a", encoding="utf-8") as marker:
        marker.write(f"{line} {os.getpid()}\n")


@app.activity_trigger(input_name="key")
def Work(key: str) -> str:
    _mark(f"start {key}")
    time.sleep(0.05)
    _mark(f"done {key}")
    return key


@app.orchestration_trigger(context_name="context")
def CrashWaves(context: df.DurableOrchestrationContext) -> Any:
    results = []
    for wave in range(WAVES):
        keys = [f"w{wave}-{i}" for i in range(WAVE_SIZE)]
        results += yield context.task_all([context.call_activity("Work", key) for key in keys])
    return results
