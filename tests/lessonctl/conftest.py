"""Run `python -m lessonctl` as a real subprocess with a controlled environment."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
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


READY_PREFIX = "sandbox ready on "


def start_sandbox(*faults: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A real `python -m sandbox` on a free port, and the settings its `env` command prints."""
    args = [arg for fault in faults for arg in ("--fault", fault)]
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--seed", "1", *args],
        cwd=REPO,
        env={**base_env(), "PYTHONUNBUFFERED": "1"},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base_url = _wait_ready(process)
        port = base_url.rsplit(":", 1)[1]
        printed = subprocess.run(
            [sys.executable, "-m", "sandbox", "env", "--port", port],
            cwd=REPO,
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except BaseException:
        stop_sandbox(process)
        raise
    env = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    return process, env


def _wait_ready(process: subprocess.Popen[str], deadline_s: float = 30.0) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + deadline_s
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            break
        line = process.stdout.readline()
        if line.startswith(READY_PREFIX):
            return line.strip().removeprefix(READY_PREFIX)
        if not line:
            raise AssertionError(f"sandbox exited early: {process.stderr.read() if process.stderr else ''}")
    raise AssertionError("sandbox printed no ready line before the deadline")


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def sandbox_env() -> Iterator[dict[str, str]]:
    process, env = start_sandbox()
    try:
        yield env
    finally:
        stop_sandbox(process)
