"""Crash safety: a restarted engine resumes from the store; committed activities never re-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.clock import VirtualClock
from devhost.protocol import EventType
from devhost.store import Store
from devhost.testing import DurableTestHost
from tests.devhost.apps import core_app, core_crash_app

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_gates() -> Iterator[None]:
    core_app.GATES.clear()
    yield
    for gate in core_app.GATES.values():
        gate.set()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


def has_event(host: DurableTestHost, instance_id: str, kind: EventType) -> bool:
    return any(e["EventType"] == kind for e in host.history(instance_id))


async def test_waiting_instance_survives_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with DurableTestHost(core_app.app, tmp_path, clock=clock) as host:
        instance_id = await host.start("EventOrTimeout")
        await wait_until(lambda: has_event(host, instance_id, EventType.TIMER_CREATED))
    async with DurableTestHost(core_app.app, tmp_path, clock=clock) as host:
        await host.raise_event(instance_id, "Approval", "yes")
        status = await host.wait_for(instance_id, ["Completed"])
        assert host.output(status) == {"approved": '"yes"'}


async def test_timer_fires_after_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with DurableTestHost(core_app.app, tmp_path, clock=clock) as host:
        instance_id = await host.start("HourTimer")
        await wait_until(lambda: has_event(host, instance_id, EventType.TIMER_CREATED))
    async with DurableTestHost(core_app.app, tmp_path, clock=clock) as host:
        status = await host.wait_done(instance_id)
        assert status.runtime_status == "Completed"


async def test_activity_in_flight_at_stop_runs_again(tmp_path: Path) -> None:
    async with DurableTestHost(core_app.app, tmp_path) as host:
        instance_id = await host.start("WaitAfterWork", "held")
        await wait_until(lambda: host.activity_calls("WaitGate") == ["held"])
    # The work item was never completed: the next engine dispatches it again.
    async with DurableTestHost(core_app.app, tmp_path) as host:
        await wait_until(lambda: host.activity_calls("WaitGate") == ["held"])
        core_app.GATES["held"].set()
        await wait_until(lambda: has_event(host, instance_id, EventType.TASK_COMPLETED))
        await host.raise_event(instance_id, "Go", 1)
        status = await host.wait_done(instance_id)
        assert host.output(status) == "1"


async def test_completed_activity_is_not_rerun_after_restart(tmp_path: Path) -> None:
    async with DurableTestHost(core_app.app, tmp_path) as host:
        instance_id = await host.start("WaitAfterWork", "once")
        core_app.GATES.setdefault("once", asyncio.Event()).set()
        await wait_until(lambda: has_event(host, instance_id, EventType.TASK_COMPLETED))
    async with DurableTestHost(core_app.app, tmp_path) as host:
        await host.raise_event(instance_id, "Go", 2)
        status = await host.wait_done(instance_id)
        assert host.output(status) == "2"
        assert host.activity_calls("WaitGate") == []


def committed_keys(state_dir: Path) -> set[str]:
    """Activity results the killed process had committed (in history or as pending messages)."""
    store = Store(state_dir)
    try:
        events = [json.loads(t) for t in store.load_history("crash-1")]
        events += [json.loads(m.event_text) for m in store.pending_messages("crash-1", 2**62)]
    finally:
        store.close()
    return {json.loads(e["Result"]) for e in events if e["EventType"] == EventType.TASK_COMPLETED}


def marker_lines(marker: Path) -> list[tuple[str, str, int]]:
    if not marker.exists():
        return []
    lines = [line.split() for line in marker.read_text(encoding="utf-8").splitlines()]
    return [(kind, key, int(pid)) for kind, key, pid in lines]


@pytest.mark.slow
def test_sigkill_mid_orchestration_then_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    marker = tmp_path / "marker.txt"
    env = {**os.environ, core_crash_app.MARKER_ENV: str(marker), "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "tests.devhost.apps.core_runner", str(state_dir)]

    first = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(1 for kind, _, _ in marker_lines(marker) if kind == "done") < 7:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    committed = committed_keys(state_dir)
    assert committed, "nothing was committed before the kill"
    total = core_crash_app.WAVES * core_crash_app.WAVE_SIZE
    assert len(committed) < total, "the kill came too late to test anything"

    second = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.startswith("Completed")

    runs = marker_lines(marker)
    pids = list(dict.fromkeys(pid for _, _, pid in runs))
    assert pids[0] == first.pid and len(pids) == 2
    restarted_pid = pids[1]
    started_again = {key for kind, key, pid in runs if kind == "start" and pid == restarted_pid}
    # A committed result is never recomputed; everything else ran (again) in the second process.
    assert not committed & started_again
    all_keys = {f"w{w}-{i}" for w in range(core_crash_app.WAVES) for i in range(core_crash_app.WAVE_SIZE)}
    assert all_keys - committed == started_again
    output = json.loads(second.stdout.split(" ", 1)[1])
    assert sorted(output) == sorted(all_keys)


async def test_work_of_a_terminated_instance_is_not_rerun_and_its_timers_are_dropped(tmp_path: Path) -> None:
    async with DurableTestHost(core_app.app, tmp_path) as host:
        waiting = await host.start("WaitAfterWork", "never")
        await wait_until(lambda: host.activity_calls("WaitGate") == ["never"])
        timed = await host.start("EventOrTimeout")
        await wait_until(lambda: has_event(host, timed, EventType.TIMER_CREATED))
        assert host.engine.store.next_due_after(0) is not None
        for instance_id in (waiting, timed):
            await host.engine.terminate(instance_id, "stop")
            await host.wait_for(instance_id, ["Terminated"])
        assert host.engine.store.next_due_after(0) is None
    async with DurableTestHost(core_app.app, tmp_path) as host:
        assert host.engine.store.work_items() == []
        status = await host.wait_for(waiting, ["Terminated"])
        assert status.output_text == "stop" and host.activity_calls("WaitGate") == []
