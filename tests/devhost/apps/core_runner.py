"""Run the crash-test app in its own process until its instance finishes.

    python -m tests.devhost.apps.core_runner STATE_DIR

Starts instance ``crash-1`` of ``CrashWaves`` unless the state directory already has it, then
waits for a terminal status and prints it. Used by the SIGKILL test.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from devhost.engine import Engine
from devhost.registry import FunctionRegistry
from devhost.status import TERMINAL_STATUSES
from tests.devhost.apps.core_crash_app import app

INSTANCE_ID = "crash-1"


async def run(state_dir: Path) -> int:
    engine = Engine(FunctionRegistry.from_app(app), state_dir, max_concurrent_activities=3)
    await engine.start()
    try:
        if engine.get_status(INSTANCE_ID) is None:
            await engine.start_new("CrashWaves", INSTANCE_ID, None)
        status = await engine.wait_for_status(INSTANCE_ID, TERMINAL_STATUSES, timeout=120)
        print(status.runtime_status, status.output_text, flush=True)
        return 0 if status.runtime_status == "Completed" else 1
    finally:
        await engine.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(run(Path(sys.argv[1]))))
