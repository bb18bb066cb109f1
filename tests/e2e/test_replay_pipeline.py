"""`devhost replay` on a real module's history: the orchestration is deterministic, and a change is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import REPO, Stack, base_env, start_stack

pytestmark = pytest.mark.slow

APP_PARTS = ("function_app.py", "host.json", "activities", "orchestrations", "starters", "clients", "domain")


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(database_url, tmp_path_factory.mktemp("replay"))


@pytest.fixture(scope="module")
def completed_instance(stack: Stack) -> str:
    module_id = stack.create_module("Python asyncio", "Event loops and tasks")
    stack.enqueue({"module_id": module_id})
    assert stack.wait_for_module(module_id, "completed", "failed")["status"] == "completed"
    return f"module-{module_id}"


def replay(stack: Stack, instance_id: str, app_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "replay", instance_id, "--app-dir", str(app_dir),
         "--state-dir", str(stack.host.state_dir)],
        cwd=app_dir, capture_output=True, text=True, timeout=120,
        env={**base_env(), "PYTHONPATH": str(REPO), **stack.env},
    )


def copy_app(target: Path) -> Path:
    target.mkdir(parents=True)
    for part in APP_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target / part)
    return target


def test_the_recorded_history_of_a_module_replays_cleanly(stack: Stack, completed_instance: str) -> None:
    done = replay(stack, completed_instance, REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deterministic" in done.stdout


def test_dropping_a_research_source_is_reported_as_non_deterministic(
    stack: Stack, completed_instance: str, tmp_path: Path
) -> None:
    changed = copy_app(tmp_path / "app")
    pipeline = changed / "domain" / "pipeline.py"
    text = pipeline.read_text()
    original = '("github", "stackoverflow", "youtube", "devto", "docs")'
    assert original in text
    # Reordering sources would go unnoticed (same activity name at each id, as on the real host);
    # dropping one shifts every later sequence number.
    pipeline.write_text(text.replace(original, '("github", "stackoverflow", "devto", "docs")'))
    done = replay(stack, completed_instance, changed)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "non-deterministic" in done.stdout
    assert "expected TaskScheduled 'research_source' (EventId 5)" in done.stdout
