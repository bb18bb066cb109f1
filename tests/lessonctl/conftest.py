"""Run `python -m lessonctl` as a real subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from demo import stack as demo_stack
from demo.stack import SandboxProcess

REPO = Path(__file__).resolve().parents[2]
SENTINEL_SECRET = "Sentinel-Secret-7f3a9c"


def base_env() -> dict[str, str]:
    """Only what Python needs: no setting leaks in from the developer's shell."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env["PYTHONPATH"] = str(REPO)
    return env


def run_lessonctl(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lessonctl", *args],
        env={**base_env(), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty current folder: no local.settings.json unless a test writes one."""
    return tmp_path


def start_sandbox(*faults: str) -> tuple[SandboxProcess, dict[str, str]]:
    """A real `python -m sandbox` on a free port, and the settings that point the app at it."""
    sandbox = demo_stack.start_sandbox(Path(tempfile.mkdtemp(prefix="lessonctl-sandbox-")), faults=faults,
                                       env=base_env())
    return sandbox, sandbox.env


def stop_sandbox(sandbox: SandboxProcess) -> None:
    sandbox.stop()


@pytest.fixture(scope="module")
def sandbox_env() -> Iterator[dict[str, str]]:
    process, env = start_sandbox()
    try:
        yield env
    finally:
        stop_sandbox(process)
