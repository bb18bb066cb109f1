"""`history` and `replay` over a history the devhost Engine really recorded (subprocess CLI runs).

The recording runs the replay_pipeline example app on the in-process Engine with a virtual clock
(retry and pause timers fire at once). The edited copies of that app (same orchestrator name) must
then be reported at their first differing step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.app import load_app, unload_app
from devhost.clock import VirtualClock
from devhost.engine import Engine
from devhost.registry import FunctionRegistry
from tests.devhost.test_replay_history import table_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "apps"
PIPELINE = APPS / "replay_pipeline"
APPROVAL = APPS / "replay_approval"
INSTANCE = "pipeline-asyncio"
FINAL = ["Completed", "Failed", "Terminated"]


@dataclass(frozen=True)
class Recording:
    state_dir: Path
    history: list[dict[str, Any]]
    child_ids: list[str]


async def _record(state_dir: Path) -> Recording:
    loaded = load_app(PIPELINE)
    engine = Engine(
        FunctionRegistry.from_functions(loaded.functions), state_dir, clock=VirtualClock(auto_advance=True)
    )
    await engine.start()
    try:
        instance_id = await engine.start_new(
            "Pipeline", INSTANCE, json.dumps(json.dumps({"topic": "asyncio"}))
        )
        status = await engine.wait_for_status(instance_id, FINAL, timeout=60)
        assert status.runtime_status == "Completed", status
        history = engine.get_history(instance_id)
    finally:
        await engine.stop()
    child_ids = [e["InstanceId"] for e in history if e["EventType"] == 7]
    return Recording(state_dir, history, child_ids)


async def _wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


def _waiting_for_event(engine: Engine, instance_id: str) -> bool:
    history = engine.get_history(instance_id)
    return any(e["EventType"] == 5 for e in history) and history[-1]["EventType"] == 13


async def _record_approvals(state_dir: Path) -> Path:
    """An approval suspended, sent its event, resumed; one terminated while waiting; a continued countdown."""
    loaded = load_app(APPROVAL)
    engine = Engine(
        FunctionRegistry.from_functions(loaded.functions), state_dir, clock=VirtualClock(auto_advance=True)
    )
    await engine.start()
    try:
        approved = await engine.start_new("Approval", "approve-1", json.dumps(json.dumps("release notes")))
        await _wait_until(lambda: _waiting_for_event(engine, approved))
        await engine.suspend(approved, "on hold")
        await engine.wait_for_status(approved, ["Suspended"], timeout=10)
        await engine.raise_event(approved, "Approve", json.dumps("yes"))
        await engine.resume(approved, "go on")
        assert (await engine.wait_for_status(approved, FINAL, timeout=10)).runtime_status == "Completed"

        dropped = await engine.start_new("Approval", "approve-2", json.dumps(json.dumps("old notes")))
        await _wait_until(lambda: _waiting_for_event(engine, dropped))
        await engine.terminate(dropped, "not needed")
        assert (await engine.wait_for_status(dropped, FINAL, timeout=10)).runtime_status == "Terminated"

        counted = await engine.start_new("Countdown", "countdown", json.dumps(json.dumps(2)))
        status = await engine.wait_for_status(counted, FINAL, timeout=10)
        assert status.runtime_status == "Completed" and status.output_text == '"liftoff"', status
    finally:
        await engine.stop()
    return state_dir


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    with _restored_process_state():
        yield asyncio.run(_record(tmp_path_factory.mktemp("devhost-state")))


@pytest.fixture(scope="module")
def approval_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with _restored_process_state():
        yield asyncio.run(_record_approvals(tmp_path_factory.mktemp("devhost-approvals")))


@contextlib.contextmanager
def _restored_process_state() -> Iterator[None]:
    # load_app sets app settings in os.environ and puts the app folder on sys.path, as a host would.
    saved_env = dict(os.environ)
    saved_path = list(sys.path)
    try:
        yield
    finally:
        unload_app()
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path


def devhost(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def replay(recording: Recording, app: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return devhost("replay", *extra, "--app-dir", str(APPS / app), "--state-dir", str(recording.state_dir))


def test_recorded_history_has_the_expected_shape(recording: Recording) -> None:
    names = [(e["EventType"], e.get("Name")) for e in recording.history if e["EventType"] in (4, 7, 10)]
    assert names == [
        (4, "Research"), (4, "Research"), (4, "Research"),
        (4, "Plan"), (10, None), (4, "Plan"), (10, None),
        (7, "WritePart"), (7, "WritePart"),
    ]  # fmt: skip


def test_history_command_prints_the_full_history(recording: Recording) -> None:
    done = devhost("history", INSTANCE, "--state-dir", str(recording.state_dir))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == recording.history


def test_history_of_unknown_instance_exits_2(recording: Recording) -> None:
    done = devhost("history", "no-such-instance", "--state-dir", str(recording.state_dir))

    assert done.returncode == 2
    assert "no instance 'no-such-instance'" in done.stderr


def test_unchanged_app_replays_the_stored_history(recording: Recording) -> None:
    done = replay(recording, "replay_pipeline", INSTANCE)

    episodes = sum(1 for e in recording.history if e["EventType"] == 12)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == (
        f"replayed {episodes} episodes, {len(recording.history)} events of instance {INSTANCE}: deterministic"
    )


def test_sub_orchestration_instances_replay_too(recording: Recording) -> None:
    done = replay(recording, "replay_pipeline", recording.child_ids[1])

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("replayed 2 episodes")


@pytest.mark.parametrize(
    ("app", "actual"),
    [
        ("replay_pipeline_renamed", "code now schedules CallActivity 'Outline'"),
        ("replay_pipeline_extra", "code now schedules CallActivity 'Audit'"),
        ("replay_pipeline_reordered", "code now schedules CreateTimer firing at "),
    ],
)
def test_edited_app_is_reported_at_the_first_differing_step(
    recording: Recording, app: str, actual: str
) -> None:
    plan_position = next(i for i, e in enumerate(recording.history) if e.get("Name") == "Plan")

    done = replay(recording, app, INSTANCE)

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    episodes = sum(1 for e in recording.history if e["EventType"] == 12)
    assert lines[0] == (
        f"non-deterministic: instance {INSTANCE} (orchestrator 'Pipeline') "
        f"departs from its history in episode 2 of {episodes}"
    )
    assert lines[1].startswith(f"  episode 2, history position {plan_position}, EventId 3: ")
    assert f"expected TaskScheduled 'Plan' (EventId 3), {actual}" in done.stdout
    assert done.stderr == ""


def test_exported_azure_storage_rows_replay(recording: Recording, tmp_path: Path) -> None:
    rows = tmp_path / "PipelineHubHistory.json"
    rows.write_text(json.dumps({"value": _rows_for(recording.history)}))

    clean = devhost("replay", "--history", str(rows), "--app-dir", str(PIPELINE))
    changed = devhost("replay", "--history", str(rows), "--app-dir", str(APPS / "replay_pipeline_renamed"))

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"events of instance {INSTANCE}: deterministic" in clean.stdout
    assert changed.returncode == 1
    assert (
        "expected TaskScheduled 'Plan' (EventId 3), code now schedules CallActivity 'Outline'"
        in changed.stdout
    )


def _rows_for(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    rows = table_rows(history, execution_id=execution_id)
    for row in rows:
        row["PartitionKey"] = INSTANCE
    assert all(isinstance(row.get("EventType", "TaskScheduled"), str) for row in rows)
    return rows


def test_unknown_instance_in_the_store_exits_2(recording: Recording) -> None:
    done = replay(recording, "replay_pipeline", "missing-instance")

    assert done.returncode == 2
    assert done.stderr.startswith("error: no instance 'missing-instance'")


@pytest.mark.parametrize("instance_id", ["approve-1", "approve-2", "countdown"])
def test_suspended_terminated_and_continued_instances_replay(approval_state: Path, instance_id: str) -> None:
    done = devhost("replay", instance_id, "--app-dir", str(APPROVAL), "--state-dir", str(approval_state))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith(f"events of instance {instance_id}: deterministic\n")


def test_suspension_and_termination_are_in_the_recorded_histories(approval_state: Path) -> None:
    suspended = json.loads(devhost("history", "approve-1", "--state-dir", str(approval_state)).stdout)
    terminated = json.loads(devhost("history", "approve-2", "--state-dir", str(approval_state)).stdout)

    assert {19, 20, 15} <= {e["EventType"] for e in suspended}  # suspended, resumed, event raised
    assert 3 in {e["EventType"] for e in terminated}  # ExecutionTerminated


def test_history_output_replays_as_a_history_file(recording: Recording, tmp_path: Path) -> None:
    saved = tmp_path / "pipeline-history.json"
    saved.write_text(devhost("history", INSTANCE, "--state-dir", str(recording.state_dir)).stdout)

    clean = devhost("replay", "--history", str(saved), "--app-dir", str(PIPELINE))
    changed = devhost("replay", "--history", str(saved), "--app-dir", str(APPS / "replay_pipeline_extra"))

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert changed.returncode == 1
    assert "code now schedules CallActivity 'Audit'" in changed.stdout
