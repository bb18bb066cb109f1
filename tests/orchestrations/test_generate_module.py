"""The module orchestration on the devhost engine (real SDK replay), activities scripted per test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from devhost.registry import FunctionRegistry
from devhost.replay import ReplayReport, history_from_events, replay_history
from devhost.testing import DurableTestHost
from domain.pipeline import ORCHESTRATOR, RESEARCH_SOURCES, Activity, RunInput
from orchestrations.blueprint import bp as orchestrations

pytest_plugins = ["devhost.testing"]

RUN = RunInput(module_id="m-1", run_id="r-1", request_id="q-1", deadline_minutes=30)
IDS = {"module_id": "m-1", "run_id": "r-1"}


def build_app() -> df.DFApp:
    """The orchestration blueprint plus placeholder activities the tests replace."""
    app = df.DFApp()
    app.register_functions(orchestrations)
    for name in vars(Activity).values():
        if isinstance(name, str) and not name.startswith("_") and name.islower():
            _register_placeholder(app, name)
    return app


def _register_placeholder(app: df.DFApp, name: str) -> None:
    def placeholder(payload: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"activity {name} was not scripted by the test")

    placeholder.__name__ = name
    app.activity_trigger(input_name="payload", activity=name)(placeholder)


def happy_activities(**changes: Any) -> dict[str, Any]:
    def research(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["source"] == "youtube":
            return {"status": "skipped", "item_ids": [], "error": "YOUTUBE_API_KEY is not set"}
        return {"status": "ok", "item_ids": [RESEARCH_SOURCES.index(payload["source"]) * 10 + 1]}

    activities: dict[str, Any] = {
        Activity.BEGIN_RUN: {"current": True},
        Activity.RESEARCH_SOURCE: research,
        Activity.PLAN_LESSONS: {"ok": True, "lessons": [{"number": n, "title": f"L{n}"} for n in (1, 2, 3)]},
        Activity.GENERATE_LESSON: lambda p: {"ok": True, "number": p["number"]},
        Activity.COMPLETE_RUN: lambda p: {"status": "completed", "lessons": len(p["numbers"])},
        Activity.FAIL_RUN: {"status": "failed"},
        Activity.NOTIFY_COMPLETION: {"delivered": True, "attempts": 1, "status": 204, "error": None},
    }
    activities.update(changes)
    return activities


async def run(
    factory: Callable[..., DurableTestHost], activities: dict[str, Any]
) -> tuple[Any, DurableTestHost]:
    async with factory(build_app(), activity_overrides=activities) as host:
        instance_id = await host.start(ORCHESTRATOR, RUN.to_dict(), instance_id="module-m-1")
        status = await host.wait_done(instance_id, timeout=10)
        assert status.runtime_status == "Completed", status.output_text
        return host.output(status), host


async def test_happy_path_researches_plans_generates_and_completes_once(durable_host_factory) -> None:
    output, host = await run(durable_host_factory, happy_activities())
    assert output["status"] == "completed"
    assert output["lessons"] == 3
    assert output["research"]["youtube"] == "skipped"
    assert output["research"]["github"] == "done"
    assert sorted(call["source"] for call in host.activity_calls(Activity.RESEARCH_SOURCE)) == sorted(
        RESEARCH_SOURCES
    )
    # Research ids from every answering source reach the planner, in a deterministic order.
    assert host.activity_calls(Activity.PLAN_LESSONS)[0]["item_ids"] == [1, 11, 31, 41]
    assert sorted(c["number"] for c in host.activity_calls(Activity.GENERATE_LESSON)) == [1, 2, 3]
    assert host.activity_calls(Activity.COMPLETE_RUN) == [
        {"module_id": "m-1", "run_id": "r-1", "numbers": [1, 2, 3]}
    ]
    assert host.activity_calls(Activity.FAIL_RUN) == []
    assert host.activity_calls(Activity.NOTIFY_COMPLETION) == [IDS]
    assert output["notification"]["delivered"] is True
    progress = json.loads(host.status("module-m-1").custom_status_text)
    assert progress["stage"] == "completed"
    assert progress["lessons"] == {"done": 3, "total": 3}


async def test_a_lesson_no_provider_can_write_fails_the_module_without_saving(durable_host_factory) -> None:
    def lesson(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["number"] == 2:
            return {"ok": False, "error": "all AI providers failed: deepseek 503, groq 429, gemini 500"}
        return {"ok": True}

    output, host = await run(durable_host_factory, happy_activities(**{Activity.GENERATE_LESSON: lesson}))
    assert output["status"] == "failed"
    assert output["error"] == "lesson 2 failed: all AI providers failed: deepseek 503, groq 429, gemini 500"
    assert host.activity_calls(Activity.COMPLETE_RUN) == []
    assert host.activity_calls(Activity.FAIL_RUN) == [{**IDS, "error": output["error"]}]
    assert host.activity_calls(Activity.NOTIFY_COMPLETION) == [IDS]


async def test_a_crashing_activity_is_retried_by_durable_timers_then_fails_the_module(
    durable_host_factory,
) -> None:
    crash = ConnectionError("database went away")
    output, host = await run(durable_host_factory, happy_activities(**{Activity.PLAN_LESSONS: crash}))
    assert len(host.activity_calls(Activity.PLAN_LESSONS)) == 3
    assert output["status"] == "failed"
    assert output["error"].startswith(
        "activity crashed: Activity function 'plan_lessons' failed: ConnectionError: database went away"
    )
    assert host.activity_calls(Activity.COMPLETE_RUN) == []


async def test_a_crash_that_succeeds_on_retry_does_not_fail_the_module(durable_host_factory) -> None:
    attempts: list[int] = []

    def flaky_plan(payload: dict[str, Any]) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("worker recycled")
        return {"ok": True, "lessons": [{"number": 1, "title": "Only"}]}

    output, _ = await run(durable_host_factory, happy_activities(**{Activity.PLAN_LESSONS: flaky_plan}))
    assert output["status"] == "completed"
    assert len(attempts) == 2


async def test_a_superseded_run_touches_nothing(durable_host_factory) -> None:
    superseded = happy_activities(**{Activity.BEGIN_RUN: {"current": False}})
    output, host = await run(durable_host_factory, superseded)
    assert output["status"] == "superseded"
    assert host.activity_calls(Activity.RESEARCH_SOURCE) == []
    assert host.activity_calls(Activity.FAIL_RUN) == []
    assert host.activity_calls(Activity.NOTIFY_COMPLETION) == []


async def test_the_deadline_fails_a_run_whose_lessons_hang(durable_host_factory) -> None:
    release = asyncio.Event()

    async def hung_lesson(payload: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"ok": True}

    activities = happy_activities(**{Activity.GENERATE_LESSON: hung_lesson})
    async with durable_host_factory(build_app(), activity_overrides=activities) as host:
        instance_id = await host.start(ORCHESTRATOR, RUN.to_dict())
        await _poll(lambda: host.activity_calls(Activity.GENERATE_LESSON))
        await host.advance(timedelta(minutes=RUN.deadline_minutes, seconds=1))
        # The module is failed as soon as the deadline passes; the hung lessons keep the instance
        # Running (as on the real host) until they finish.
        calls = await _poll(lambda: host.activity_calls(Activity.FAIL_RUN))
        assert calls == [{**IDS, "error": "generation exceeded its deadline of 30 minutes"}]
        assert host.status(instance_id).runtime_status == "Running"
        release.set()
        final = await host.wait_done(instance_id, timeout=10)
        assert host.output(final)["status"] == "failed"
        assert host.activity_calls(Activity.COMPLETE_RUN) == []


async def _poll(probe: Callable[[], list[Any]], timeout: float = 10) -> list[Any]:
    loop = asyncio.get_running_loop()
    limit = loop.time() + timeout
    while loop.time() < limit:
        found = probe()
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached before the deadline")


def _replay(app: df.DFApp, events: list[dict[str, Any]]) -> ReplayReport:
    handle = FunctionRegistry.from_app(app).find_orchestrator(ORCHESTRATOR).handle
    return replay_history(history_from_events(events, source="test"), handle)


async def test_a_lesson_retried_after_a_sibling_finished_replays_deterministically(
    durable_host_factory,
) -> None:
    # The pattern that breaks call_activity_with_retry inside task_any on the real host: one lesson
    # finishes, then a sibling crashes and is retried, then the run moves on to saving.
    attempts: list[int] = []
    app = build_app()

    async def lesson(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["number"] == 2:
            attempts.append(1)
            if len(attempts) == 1:
                await _poll(lambda: _lessons_done(host) >= 2)
                raise ConnectionError("worker recycled")
        return {"ok": True}

    async with durable_host_factory(
        app, activity_overrides=happy_activities(**{Activity.GENERATE_LESSON: lesson})
    ) as host:
        instance_id = await host.start(ORCHESTRATOR, RUN.to_dict())
        final = await host.wait_done(instance_id, timeout=10)
        history = host.history(instance_id)
    assert host.output(final)["status"] == "completed", final.output_text
    assert len(attempts) == 2
    report = _replay(app, history)
    assert report.deterministic, report.summary()
    assert report.episodes >= 5


def _lessons_done(host: DurableTestHost) -> int:
    for instance in host.engine.list_instances()[0]:
        if instance.custom_status_text:
            return json.loads(instance.custom_status_text)["lessons"]["done"]
    return 0


async def test_a_crashing_notification_never_changes_the_outcome(durable_host_factory) -> None:
    crash = happy_activities(**{Activity.NOTIFY_COMPLETION: RuntimeError("webhook activity crashed")})
    output, host = await run(durable_host_factory, crash)
    assert output["status"] == "completed"
    assert output["notification"]["delivered"] is False
    assert "webhook activity crashed" in output["notification"]["error"]
    assert host.activity_calls(Activity.FAIL_RUN) == []


async def test_stage_log_lines_are_written_once_despite_replays(durable_host_factory, caplog) -> None:
    caplog.set_level("INFO", logger="lesson_orchestrator.orchestration")
    _, host = await run(durable_host_factory, happy_activities())
    stages = [r.stage for r in caplog.records if r.name == "lesson_orchestrator.orchestration"]
    assert stages == ["researching", "planning", "generating", "saving", "completed"]
    episodes = sum(1 for e in host.history("module-m-1") if e["EventType"] == 12)
    assert episodes > len(stages)  # the orchestrator did replay, more often than it logged
    assert all(r.instance_id == "module-m-1" for r in caplog.records if hasattr(r, "stage"))
