"""Engine behaviour end to end: real SDK, real SQLite store, virtual clock (no Azure here)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost import protocol
from devhost.engine import Engine
from devhost.protocol import EventType
from devhost.registry import FunctionRegistry
from devhost.status import InstanceAlreadyRunning, InstanceGone, InstanceNotFound, InvalidInstanceState
from devhost.testing import DurableTestHost
from tests.devhost.apps import core_app

# The SDK warns whenever an event arrives before its wait; that is the behaviour under test.
pytestmark = pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")


@pytest.fixture(autouse=True)
def fresh_switches() -> Iterator[None]:
    core_app.GATES.clear()
    core_app.SWITCHES["flip"] = False
    yield
    for gate in core_app.GATES.values():
        gate.set()


def fails_first(times: int) -> Callable[[Any], Any]:
    """An activity override that raises ``times`` times, then echoes its input."""
    calls = {"n": 0}

    def flaky(value: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionError(f"attempt {calls['n']} failed")
        return {"ok": value}

    return flaky


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[DurableTestHost]:
    async with DurableTestHost(
        core_app.app, tmp_path / "state", activity_overrides={"Flaky": fails_first(2)}
    ) as test_host:
        yield test_host


def events(history: list[dict[str, Any]], kind: EventType) -> list[dict[str, Any]]:
    return [e for e in history if e["EventType"] == kind]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


def open_gate(name: str) -> None:
    core_app.GATES.setdefault(name, asyncio.Event()).set()


# ------------------------------------------------------------------------------------ basics


async def test_fan_out_fan_in(host: DurableTestHost) -> None:
    names = [f"n{i}" for i in range(25)]
    instance_id = await host.start("FanOut", names)
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Completed"
    assert host.output(status) == [f"Hello {n}!" for n in names]
    assert sorted(host.activity_calls("Hello")) == sorted(names)
    history = host.history(instance_id)
    assert [e["EventId"] for e in events(history, EventType.TASK_SCHEDULED)] == list(range(25))
    assert events(history, EventType.EXECUTION_COMPLETED)[0]["EventId"] == 25
    assert history[0]["EventType"] == EventType.ORCHESTRATOR_STARTED
    assert history[1]["EventType"] == EventType.EXECUTION_STARTED and history[1]["IsPlayed"] is True
    assert history[-1]["EventType"] == EventType.ORCHESTRATOR_COMPLETED
    # The Python client's double encoding: Input is a JSON string literal of the JSON text (§6.5).
    assert json.loads(json.loads(status.input_text or "")) == names


async def test_retry_succeeds_after_failures_with_timers_on_orchestrator_time(host: DurableTestHost) -> None:
    instance_id = await host.start("RetryFlaky", 7)
    status = await host.wait_done(instance_id)
    assert host.output(status) == {"ok": 7}
    assert host.activity_calls("Flaky") == [7, 7, 7]
    history = host.history(instance_id)
    failures = events(history, EventType.TASK_FAILED)
    assert [f["Reason"] for f in failures] == [
        "Activity function 'Flaky' failed: ConnectionError: attempt 1 failed",
        "Activity function 'Flaky' failed: ConnectionError: attempt 2 failed",
    ]
    ids = [(e["EventType"], e["EventId"]) for e in history if e["EventId"] >= 0]
    assert ids == [(4, 0), (10, 1), (4, 2), (10, 3), (4, 4), (1, 5)]
    # Each retry timer fires 5 s after the OrchestratorStarted of the episode that saw the failure.
    for timer in events(history, EventType.TIMER_CREATED):
        position = history.index(timer)
        started = next(
            e for e in reversed(history[:position]) if e["EventType"] == EventType.ORCHESTRATOR_STARTED
        )
        delta = protocol.parse_timestamp(timer["FireAt"]) - protocol.parse_timestamp(started["Timestamp"])
        assert delta == dt.timedelta(seconds=5)


async def test_exhausted_retry_surfaces_the_last_failure_text(host: DurableTestHost) -> None:
    instance_id = await host.start("RetryExhausted")
    status = await host.wait_done(instance_id)
    history = host.history(instance_id)
    failures = events(history, EventType.TASK_FAILED)
    assert len(failures) == 2 and len(host.activity_calls("AlwaysFails")) == 2
    last = failures[-1]
    assert last["Reason"] == "Activity function 'AlwaysFails' failed: ValueError: nope x"
    assert host.output(status) == f"{last['Reason']} \n {last['Details']}"
    details = json.loads(last["Details"])
    assert details["Message"] == "ValueError: nope x"
    assert "ValueError: nope x" in details["InnerException"]["Message"]
    # attempt 0, retry timer 1, attempt 2, zero-delay dummy timer 3, then completion.
    timers = events(history, EventType.TIMER_CREATED)
    assert [t["EventId"] for t in timers] == [1, 3]
    dummy_position = history.index(timers[1])
    started = next(
        e for e in reversed(history[:dummy_position]) if e["EventType"] == EventType.ORCHESTRATOR_STARTED
    )
    assert protocol.parse_timestamp(timers[1]["FireAt"]) == protocol.parse_timestamp(started["Timestamp"])


async def test_sub_orchestrations_results_failures_and_retries(host: DurableTestHost) -> None:
    instance_id = await host.start("Parent", instance_id="parent-1")
    status = await host.wait_done(instance_id, timeout=10)
    assert status.runtime_status == "Completed", status.output_text
    output = host.output(status)
    assert output["first"] == {"greeting": "Hello A!", "parent": "parent-1"}
    assert output["second"] == {"greeting": "Hello B!", "parent": "parent-1"}
    assert output["failure"].startswith(
        "Orchestrator function 'FailingChild' failed: child broke \n Message: child broke, StackTrace: "
    )
    assert output["retried"] == {"ok": "child"}
    history = host.history(instance_id)
    created = events(history, EventType.SUB_ORCHESTRATION_CREATED)
    execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    # Flaky fails twice: each retried child gets a new default id (3, 5, 7; 4 and 6 are timers).
    assert [c["InstanceId"] for c in created] == [
        f"{execution_id}:0",
        "named-child",
        f"{execution_id}:2",
        f"{execution_id}:3",
        f"{execution_id}:5",
        f"{execution_id}:7",
    ]
    failing_child = host.status(f"{execution_id}:2")
    assert failing_child is not None and failing_child.runtime_status == "Failed"
    assert failing_child.output_text == "Orchestrator function 'FailingChild' failed: child broke"
    first_flaky = host.status(f"{execution_id}:3")
    assert first_flaky is not None and first_flaky.runtime_status == "Failed"
    child_history = host.history("named-child")
    assert child_history[1]["ParentInstance"]["OrchestrationInstance"]["InstanceId"] == "parent-1"
    assert child_history[1]["Input"] == json.dumps('{"name": "B"}')


async def test_hour_long_timer_runs_on_the_virtual_clock(host: DurableTestHost) -> None:
    instance_id = await host.start("HourTimer")
    status = await host.wait_done(instance_id, timeout=5)
    start, end = (dt.datetime.fromisoformat(t) for t in host.output(status))
    assert end - start >= dt.timedelta(hours=1)
    assert host.now - start >= dt.timedelta(hours=1)


async def test_virtual_clock_never_jumps_past_a_newer_earlier_timer(host: DurableTestHost) -> None:
    far = await host.start("LongTimer")  # the timer loop now sleeps until day 3
    await wait_until(lambda: bool(events(host.history(far), EventType.TIMER_CREATED)))
    near = await host.start("HourTimer")
    status = await host.wait_done(near)
    start, end = (dt.datetime.fromisoformat(t) for t in host.output(status))
    assert dt.timedelta(hours=1) <= end - start < dt.timedelta(hours=2)


async def test_ten_day_timer_is_split_in_long_timer_chunks(host: DurableTestHost) -> None:
    instance_id = await host.start("LongTimer")
    status = await host.wait_done(instance_id)
    assert host.output(status) == 10
    timers = events(host.history(instance_id), EventType.TIMER_CREATED)
    # Chunks of 3 days while more than 6 days remain: day 3, day 6, then the final day 10.
    assert len(timers) == 3


async def test_task_any_cancelled_timer_does_not_block_completion(host: DurableTestHost) -> None:
    instance_id = await host.start("EventOrTimeout")
    await wait_until(lambda: bool(events(host.history(instance_id), EventType.TIMER_CREATED)))
    await host.raise_event(instance_id, "Approval", {"by": "ana"})
    # No clock movement: the 30 minute timer never fires, yet the instance completes.
    status = await host.wait_for(instance_id, ["Completed", "Failed"])
    assert host.output(status) == {"approved": '{"by": "ana"}'}  # event data arrives as JSON text (§6.5)


async def test_task_any_timeout_wins_when_no_event(host: DurableTestHost) -> None:
    instance_id = await host.start("EventOrTimeout")
    status = await host.wait_done(instance_id)
    assert host.output(status) == "timed out"


async def test_external_event_raised_before_the_wait_is_buffered(host: DurableTestHost) -> None:
    instance_id = await host.start("WaitAfterWork", "g-before")
    assert host.status(instance_id).runtime_status == "Pending"  # type: ignore[union-attr]
    await host.raise_event(instance_id, "Go", "early")  # accepted while Pending (§9.10)
    await wait_until(lambda: bool(events(host.history(instance_id), EventType.EVENT_RAISED)))
    open_gate("g-before")
    status = await host.wait_done(instance_id)
    assert host.output(status) == json.dumps("early")


async def test_external_event_raised_after_the_wait(host: DurableTestHost) -> None:
    instance_id = await host.start("WaitAfterWork", "g-after")
    open_gate("g-after")
    await wait_until(lambda: bool(events(host.history(instance_id), EventType.TASK_COMPLETED)))
    assert host.status(instance_id).runtime_status == "Running"  # type: ignore[union-attr]
    await host.raise_event(instance_id, "Go", {"n": 1})
    status = await host.wait_done(instance_id)
    assert host.output(status) == '{"n": 1}'


async def test_continue_as_new_restarts_history_with_a_new_execution(host: DurableTestHost) -> None:
    instance_id = await host.start("Counter", 0, instance_id="counter")
    status = await host.wait_done(instance_id)
    assert host.output(status) == {"count": 3, "instance": "counter"}
    assert host.activity_calls("Echo") == [0, 1, 2, 3]
    history = host.history(instance_id)
    assert history[1]["Generation"] == 3 and history[1]["Input"] == json.dumps("3")
    assert history[1]["OrchestrationInstance"]["ExecutionId"] == status.execution_id
    assert len(events(history, EventType.EXECUTION_STARTED)) == 1
    assert [e["EventId"] for e in events(history, EventType.TASK_SCHEDULED)] == [0]


async def test_custom_status_is_replaced_each_episode(host: DurableTestHost) -> None:
    instance_id = await host.start("Status")
    await wait_until(lambda: (host.status(instance_id).custom_status_text or "") == '{"step":2,"note":"é"}')  # type: ignore[union-attr]
    await host.raise_event(instance_id, "Go", 5)
    status = await host.wait_done(instance_id)
    assert host.output(status) == "5" and status.custom_status_text == '{"step":2,"note":"é"}'


async def test_custom_status_over_16_kb_fails_the_instance(host: DurableTestHost) -> None:
    instance_id = await host.start("BigStatus")
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output_text == (
        "Orchestrator function 'BigStatus' failed: The UTF-16 size of the JSON-serialized payload must not "
        "exceed 16 KB. The current payload size is 18 KB."
    )


async def test_orchestrator_exception_fails_with_the_host_text(host: DurableTestHost) -> None:
    instance_id = await host.start("Boom")
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output_text == "Orchestrator function 'Boom' failed: kaboom"
    completed = events(host.history(instance_id), EventType.EXECUTION_COMPLETED)[0]
    assert completed["OrchestrationStatus"] == protocol.OrchestrationStatus.FAILED
    assert completed["Result"] == status.output_text


async def test_unserialisable_activity_result_is_an_activity_failure(host: DurableTestHost) -> None:
    instance_id = await host.start("BadOutput")
    status = await host.wait_done(instance_id)
    assert host.output(status).startswith(
        "Activity function 'Unserialisable' failed: "
        "ValueError: activity trigger output must be json serializable"
    )


async def test_new_uuid_and_time_are_the_same_on_every_replay(host: DurableTestHost) -> None:
    instance_id = await host.start("Deterministic")
    status = await host.wait_done(instance_id)
    final = host.output(status)
    # The activity inputs were computed on first execution; the output on the final replay.
    assert host.activity_calls("Echo") == final
    assert len({m["uuid"] for m in final}) == 3
    times = [m["time"] for m in final]
    assert times == sorted(times) and len(set(times)) == 3
    started = [e["Timestamp"] for e in events(host.history(instance_id), EventType.ORCHESTRATOR_STARTED)]
    assert started == sorted(set(started))  # strictly increasing episode times


async def test_task_any_loser_keeps_the_instance_running(host: DurableTestHost) -> None:
    instance_id = await host.start("RaceWithLoser", "slow")

    # The winner's result was processed in an episode that ended (OrchestratorCompleted after it)...
    def processed_fast() -> bool:
        history = host.history(instance_id)
        done = [i for i, e in enumerate(history) if e["EventType"] == EventType.TASK_COMPLETED]
        return bool(done) and history[-1]["EventType"] == EventType.ORCHESTRATOR_COMPLETED

    await wait_until(processed_fast)
    # ...the SDK said isDone, but the loser activity is an open task: still Running (§4.6).
    assert host.status(instance_id).runtime_status == "Running"  # type: ignore[union-attr]
    assert not events(host.history(instance_id), EventType.EXECUTION_COMPLETED)
    open_gate("slow")
    status = await host.wait_done(instance_id)
    assert host.output(status) == "fast"


async def test_changed_orchestrator_code_fails_as_nondeterministic(host: DurableTestHost) -> None:
    instance_id = await host.start("Flip")
    await wait_until(lambda: bool(host.activity_calls("WaitGate")))
    core_app.SWITCHES["flip"] = True  # a "deployment" while the instance waits
    open_gate("flip")
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output_text is not None
    assert "named 'WaitGate'" in status.output_text and "named 'Hello'" in status.output_text
    assert "Was a change made to the orchestrator code" in status.output_text
    assert host.activity_calls("Hello") == []


@pytest.mark.parametrize("name, text", [("UsesEntity", "call_entity"), ("UsesHttp", "call_http")])
async def test_entities_and_call_http_fail_clearly(host: DurableTestHost, name: str, text: str) -> None:
    instance_id = await host.start(name)
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Failed"
    assert status.output_text is not None and text in status.output_text
    assert status.output_text.startswith(f"Orchestrator function '{name}' failed: ")
    assert status.output_text.endswith("not supported by devhost.")


async def test_unknown_activity_fails_with_the_host_text(host: DurableTestHost) -> None:
    instance_id = await host.start("CallsMissing")
    status = await host.wait_done(instance_id)
    assert status.output_text is not None
    assert status.output_text.startswith(
        "Orchestrator function 'CallsMissing' failed: "
        "The function 'NoSuchActivity' doesn't exist, is disabled, "
        "or is not an activity function. Additional info: The following are the known activity functions: "
    )


async def test_orchestrator_registered_under_its_trigger_name(host: DurableTestHost) -> None:
    instance_id = await host.start("Renamed", {"a": 1})
    status = await host.wait_done(instance_id)
    assert host.output(status) == {"a": 1} and status.name == "Renamed"


# ------------------------------------------------------------------------------------ management


async def test_terminate_running_instance(host: DurableTestHost) -> None:
    instance_id = await host.start("Status")
    await wait_until(lambda: host.status(instance_id).runtime_status == "Running")  # type: ignore[union-attr]
    await host.engine.terminate(instance_id, "operator said so")
    status = await host.wait_done(instance_id)
    assert status.runtime_status == "Terminated" and status.output_text == "operator said so"
    history = host.history(instance_id)
    assert events(history, EventType.EXECUTION_TERMINATED)[0]["Input"] == "operator said so"
    assert events(history, EventType.EXECUTION_COMPLETED)[0]["OrchestrationStatus"] == 5
    with pytest.raises(InstanceGone):
        await host.raise_event(instance_id, "Go", 1)
    with pytest.raises(InstanceGone):
        await host.engine.terminate(instance_id, "again")
    with pytest.raises(InstanceNotFound):
        await host.engine.terminate("nope", "x")


async def test_suspend_buffers_events_until_resume(host: DurableTestHost) -> None:
    instance_id = await host.start("Status")
    await wait_until(lambda: (host.status(instance_id).custom_status_text or "").startswith('{"step":2'))  # type: ignore[union-attr]
    await host.engine.suspend(instance_id, "hold")
    await host.wait_for(instance_id, ["Suspended"])
    assert host.status(instance_id).output_text == "hold"  # type: ignore[union-attr]
    with pytest.raises(InvalidInstanceState):
        await host.engine.suspend(instance_id, "twice")
    await host.raise_event(instance_id, "Go", "while suspended")
    await wait_until(lambda: bool(host.engine.store.pending_messages(instance_id, 2**62)))
    assert host.status(instance_id).runtime_status == "Suspended"  # type: ignore[union-attr]
    await host.engine.resume(instance_id, "go on")
    status = await host.wait_done(instance_id)
    assert host.output(status) == json.dumps("while suspended")  # raised data arrives as JSON text
    kinds = [e["EventType"] for e in host.history(instance_id)]
    assert (
        kinds.index(EventType.EXECUTION_SUSPENDED)
        < kinds.index(EventType.EXECUTION_RESUMED)
        < kinds.index(EventType.EVENT_RAISED)
    )
    with pytest.raises(InstanceGone):
        await host.engine.resume(instance_id, "late")


async def test_resume_of_a_running_instance_is_refused(host: DurableTestHost) -> None:
    instance_id = await host.start("Status")
    with pytest.raises(InvalidInstanceState):
        await host.engine.resume(instance_id, "not suspended")


async def test_start_new_rules_restart_and_purge(host: DurableTestHost) -> None:
    instance_id = await host.start("Status", instance_id="singleton")
    with pytest.raises(InstanceAlreadyRunning, match="already exists"):
        await host.start("Status", instance_id="singleton")
    for bad in ["@x", "a/b", "x" * 257, "tab\there"]:
        with pytest.raises(ValueError):
            await host.start("Status", instance_id=bad)
    with pytest.raises(ValueError, match="doesn't exist"):
        await host.start("NoSuchOrchestrator")
    await host.raise_event(instance_id, "Go", 1)
    first = await host.wait_done(instance_id)
    # A finished instance is replaced: new execution, Generation + 1.
    await host.start("FanOut", ["z"], instance_id="singleton")
    second = await host.wait_done("singleton")
    assert second.execution_id != first.execution_id and host.output(second) == ["Hello z!"]
    assert host.history("singleton")[1]["Generation"] == 1
    restarted = await host.engine.restart("singleton")
    assert restarted != "singleton"
    assert host.output(await host.wait_done(restarted)) == ["Hello z!"]
    same = await host.engine.restart("singleton", new_instance_id=False)
    assert same == "singleton"
    await host.wait_done("singleton")
    with pytest.raises(InstanceNotFound):
        await host.engine.restart("missing")
    assert await host.engine.purge("singleton") == 1
    assert host.status("singleton") is None and host.history("singleton") == []
    assert await host.engine.purge("singleton") == 0


async def test_list_and_purge_by_filters(host: DurableTestHost) -> None:
    ids = [await host.start("FanOut", [str(i)], instance_id=f"batch-{i}") for i in range(5)]
    for instance_id in ids:
        await host.wait_done(instance_id)
    running = await host.start("Status", instance_id="other-running")
    page, token = host.engine.list_instances(prefix="batch-", top=2)
    assert [s.instance_id for s in page] == ["batch-0", "batch-1"] and token
    rest, end = host.engine.list_instances(prefix="batch-", top=10, continuation=token)
    assert [s.instance_id for s in rest] == ["batch-2", "batch-3", "batch-4"] and end is None
    running_only, _ = host.engine.list_instances(statuses=["Running", "Pending"])
    assert [s.instance_id for s in running_only] == [running]
    start = host.now - dt.timedelta(days=1)
    assert await host.engine.purge_by(start, statuses=["Running"]) == 0  # only terminal ones are purged
    assert await host.engine.purge_by(start) == 5
    assert [s.instance_id for s in host.engine.list_instances()[0]] == [running]


async def test_an_activity_past_function_timeout_fails_like_on_the_host(tmp_path: Path) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context", orchestration="Waits")
    def waits(context: df.DurableOrchestrationContext):
        try:
            yield context.call_activity("Hangs", None)
        except Exception as exc:
            return str(exc).splitlines()[0].strip()
        return "finished"

    @app.activity_trigger(input_name="value", activity="Hangs")
    async def hangs(value: object) -> str:
        await asyncio.sleep(30)
        return "too late"

    registry = FunctionRegistry.from_app(app)
    async with Engine(registry, tmp_path / "state", activity_timeout=dt.timedelta(seconds=1)) as engine:
        instance_id = await engine.start_new("Waits")
        status = await engine.wait_for_status(instance_id, ["Completed", "Failed"], 10)
    assert status.runtime_status == "Completed"
    assert json.loads(status.output_text or "") == (
        "Activity function 'Hangs' failed: FunctionTimeoutException: Timeout value of 00:00:01 exceeded by "
        "function 'Functions.Hangs'. Initiating cancellation."
    )
