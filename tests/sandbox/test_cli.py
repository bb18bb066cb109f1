"""python -m sandbox as a real subprocess: ready line, CLI faults, env output, clean SIGTERM exit."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_PREFIX = "sandbox ready on http://127.0.0.1:"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_ready(process: subprocess.Popen[str], deadline_s: float = 30.0) -> str:
    """The base URL from the ready line; polls the pipe so a silent sandbox fails at the deadline."""
    assert process.stdout is not None
    deadline = time.monotonic() + deadline_s
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            break
        line = process.stdout.readline()
        if line.startswith(READY_PREFIX):
            return line.strip().removeprefix("sandbox ready on ")
        if not line:
            raise AssertionError(f"sandbox exited early: {process.stderr.read() if process.stderr else ''}")
    raise AssertionError("no ready line before the deadline")


@pytest.fixture
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = start("--port", "0", "--seed", "5", "--fault", "github=429:1", "--latency", "docs=1-2")
    try:
        yield process, wait_ready(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "sandbox-test", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_ctrl_c_exits_zero(sandbox_process: tuple[subprocess.Popen[str], str]) -> None:
    process, base = sandbox_process
    assert get(f"{base}/_sandbox/requests")[0] == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0


@pytest.mark.slow
def test_serves_until_sigterm_and_exits_zero(sandbox_process: tuple[subprocess.Popen[str], str]) -> None:
    process, base = sandbox_process

    status, body = get(f"{base}/github/search/repositories?q=react")
    assert status == 403 and b"rate limit" in body  # --fault github=429:1 from the command line
    status, body = get(f"{base}/mdn/api/v1/search?q=fetch")
    assert status == 200 and json.loads(body)["metadata"]["size"] == 10
    status, body = get(f"{base}/_sandbox/requests")
    snapshot = json.loads(body)
    assert snapshot["requests"]["github"] == 1 and snapshot["faults_served"]["github"] == 1
    assert snapshot["latency"] == {"docs": [1, 2]} and snapshot["seed"] == 5

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_env_prints_every_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "env", "--port", "7123"],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    )
    env = dict(line.split("=", 1) for line in done.stdout.splitlines())

    base = "http://127.0.0.1:7123"
    assert env["GITHUB_API_URL"] == f"{base}/github"
    assert env["STACKEXCHANGE_API_URL"] == f"{base}/stackexchange/2.3"
    assert env["YOUTUBE_API_URL"] == f"{base}/youtube/v3"
    assert env["DEVTO_API_URL"] == f"{base}/devto/api"
    assert env["DOCS_SEARCH_URL"] == f"{base}/mdn/api/v1/search"
    for key in (
        "GITHUB_TOKEN",
        "STACKEXCHANGE_KEY",
        "YOUTUBE_API_KEY",
        "DEEPSEEK_API_KEY",
        "GROQ_API_KEY",
        "GEMINI_API_KEY",
        "OPENAI_API_KEY",
        "DEEPSEEK_MODEL",
        "GROQ_MODEL",
        "GEMINI_MODEL",
        "OPENAI_MODEL",
    ):
        assert env.get(key), key
    assert env["AI_PROVIDERS"] == "deepseek,groq,gemini"
    for name in ("DEEPSEEK_BASE_URL", "GROQ_BASE_URL", "GEMINI_BASE_URL", "OPENAI_BASE_URL"):
        assert env[name].startswith(f"{base}/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "github=boom:1"], "unknown fault kind 'boom'"),
        (["--latency", "reddit=1-5"], "unknown upstream 'reddit'"),
        (["--port", "70000"], "is not a TCP port"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", *args], cwd=REPO, text=True, capture_output=True, timeout=60
    )
    assert done.returncode == 2 and message in done.stderr
