"""Run `python -m lessonctl` as a real subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

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
