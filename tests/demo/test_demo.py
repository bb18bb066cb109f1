"""`python -m demo` end to end, as `make demo` runs it: a real subprocess that starts an embedded
PostgreSQL, the sandbox and the devhost, generates the sample modules and stops everything."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.samples import SAMPLE_MODULES
from demo.stack import REPO, free_port, python_env, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    # Not under pytest's basetemp: the embedded server runs as its own system user when tests run as
    # root, and pytest keeps its basetemp private (0700).
    folder = Path(tempfile.mkdtemp(prefix="lesson-demo-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_demo(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo", "--root", str(root), "--plain", "--timeout", "240"],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=400,
    )


def assert_generated(output: str) -> None:
    for module in SAMPLE_MODULES:
        found = re.search(rf"^{re.escape(module.title)} — completed, (\d) lessons \(module {module.id}\)$",
                          output, re.MULTILINE)
        assert found, output
        assert 3 <= int(found.group(1)) <= 5
    lessons = re.findall(r"^  \d\. .+  \[(\w+)/(\S+), (\d+)\+(\d+) tokens", output, re.MULTILINE)
    assert len(lessons) >= 6, output
    assert {provider for provider, *_ in lessons} <= {"deepseek", "groq", "gemini"}
    assert re.search(r"^       cites \w+ +.+  https?://\S+$", output, re.MULTILINE), output
    assert f"python -m devhost history module-{SAMPLE_MODULES[0].id}" in output


def test_demo_generates_both_modules_then_stops_everything_and_runs_again(root: Path) -> None:
    first = run_demo(root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "initialising the embedded server" in first.stdout
    assert_generated(first.stdout)
    assert "exit code 0" in first.stdout
    # Everything it started is stopped: PostgreSQL removes postmaster.pid on shutdown, the devhost
    # releases its state folder (a second demo could not start its host otherwise).
    assert not (root / "pg" / "postmaster.pid").exists()

    second = run_demo(root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "starting the embedded server" in second.stdout  # the data from the first run is reused
    assert_generated(second.stdout)

    history = subprocess.run(
        [sys.executable, "-m", "devhost", "history", f"module-{SAMPLE_MODULES[0].id}",
         "--state-dir", str(root)],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )
    assert history.returncode == 0, history.stderr
    events = json.loads(history.stdout)
    assert events[0]["EventType"] == 12  # OrchestratorStarted (DTFx numbering)
    assert any(event["EventType"] == 1 for event in events)  # ExecutionCompleted


def test_ctrl_c_stops_the_stack_and_exits_130(root: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--root", str(root), "--plain"],
        cwd=REPO, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []

    def host_started() -> bool:
        assert process.stdout is not None
        lines.append(process.stdout.readline())
        return lines[-1].startswith("devhost ")

    try:
        wait_for(host_started, timeout=120, what="the devhost line")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, "".join(lines) + out
    assert "interrupted: stopping everything" in out
    wait_for(lambda: not (root / "pg" / "postmaster.pid").exists(), timeout=30, what="PostgreSQL to stop")
    # The devhost released its lock: the next demo starts fine on the same state folder.
    again = run_demo(root)
    assert again.returncode == 0, again.stdout + again.stderr


def test_run_stays_up_with_a_usable_env_file_until_interrupted(root: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "run", "--root", str(root), "--port", str(port)],
        cwd=REPO, env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []

    def up() -> bool:
        assert process.stdout is not None
        lines.append(process.stdout.readline())
        assert lines[-1] or process.poll() is None, "".join(lines)
        return lines[-1].startswith("The stack is up")

    try:
        wait_for(up, timeout=120, what="the stack to come up")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/host/status", timeout=30) as answer:
            assert json.loads(answer.read()) == {"state": "Running"}
        env_file = root / "stack.env"
        exported = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                        for line in env_file.read_text().splitlines())
        assert exported["DURABLE_MANAGEMENT_URL"] == f"http://127.0.0.1:{port}"
        assert "AzureServiceBusConnectionString" not in exported
        # The operator CLI with only these settings reaches this stack's database, sandbox and host.
        doctor = subprocess.run([sys.executable, "-m", "lessonctl", "doctor"], cwd=root, env=python_env(
            exported, base={"PATH": os.environ.get("PATH", "")}), capture_output=True, text=True, timeout=120)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "OK database" in doctor.stdout
        module_id, request_id = SAMPLE_MODULES[1].id, f"run-test-{uuid.uuid4()}"  # seeded by `run`
        enqueued = subprocess.run(
            [sys.executable, "-m", "lessonctl", "enqueue", module_id, "--local", "--state-dir", str(root),
             "--request-id", request_id],
            cwd=root, env=python_env(exported), capture_output=True, text=True, timeout=60)
        assert enqueued.returncode == 0, enqueued.stderr
        watched = subprocess.run(
            [sys.executable, "-m", "lessonctl", "status", module_id, "--watch", "--request", request_id,
             "--interval", "0.2", "--timeout", "120"],
            cwd=root, env=python_env(exported), capture_output=True, text=True, timeout=180)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert f"request    {request_id}: completed" in watched.stdout
        assert "progress   stage completed" in watched.stdout
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, "".join(lines) + out
    assert not env_file.exists()
    wait_for(lambda: not (root / "pg" / "postmaster.pid").exists(), timeout=30, what="PostgreSQL to stop")


def test_a_part_that_cannot_start_is_exit_1_with_one_clear_message(root: Path) -> None:
    unreachable = subprocess.run(
        [sys.executable, "-m", "demo", "--root", str(root),
         "--database-url", f"postgresql://nobody@127.0.0.1:{free_port()}/x"],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=120,
    )
    assert unreachable.returncode == 1
    assert "error: lessonctl migrate failed" in unreachable.stdout
    assert "cannot connect to PostgreSQL" in unreachable.stdout

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run(
            [sys.executable, "-m", "demo", "--root", str(root), "--port", str(port)],
            cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=180,
        )
    assert taken.returncode == 1
    assert "error: the devhost exited with code 2" in taken.stdout
    assert "address already in use" in taken.stdout
    wait_for(lambda: not (root / "pg" / "postmaster.pid").exists(), timeout=30, what="PostgreSQL to stop")
