"""The module orchestration: research fan-out → plan → lesson fan-out → one final write.

Deterministic by construction: only `context.*` APIs, time from `context.current_utc_datetime`.
Activities report expected failures (a source down, no AI provider left) in their output; an
exception from an activity means it crashed, and only then is it re-run after a durable timer.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from domain.logging_fields import ReplaySafeLogger
from domain.pipeline import RESEARCH_SOURCES, Activity, Progress, RunInput
from orchestrations.stages import DeadlineExceeded, Job, run_stage

logger = logging.getLogger("lesson_orchestrator.orchestration")

# Yielded alone (never inside task_any), the SDK's built-in retry is replay-safe on the host.
CRASH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


class RunFailed(Exception):
    """A failure that ends the run with a readable reason for the module row."""


def generate_module_lessons(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    run = RunInput.from_dict(context.get_input())
    deadline_at = context.current_utc_datetime + timedelta(minutes=run.deadline_minutes)
    progress = Progress(stage="researching")
    ids = {"module_id": run.module_id, "run_id": run.run_id}
    summary: dict[str, Any] = {**ids, "request_id": run.request_id}
    log = ReplaySafeLogger(context, logger, module_id=run.module_id, run_id=run.run_id)

    def job(key: Any, activity: str, **payload: Any) -> Job:
        return Job(key, activity, {**ids, **payload})

    def publish(stage: str | None = None) -> None:
        if stage is not None:
            progress.stage = stage
            log.info(f"run entered stage {stage}", stage=stage)
        context.set_custom_status(progress.to_dict())

    try:
        publish("researching")
        began = yield context.call_activity_with_retry(Activity.BEGIN_RUN, CRASH_RETRY, ids)
        if not began["current"]:
            # A newer request owns the module; this run must not touch it.
            return {**summary, "status": "superseded"}

        item_ids: list[int] = []

        def researched(done: Job, outcome: dict[str, Any]) -> None:
            progress.research[done.key] = _research_state(outcome["status"])
            item_ids.extend(outcome.get("item_ids", []))
            publish()

        research = [job(source, Activity.RESEARCH_SOURCE, source=source) for source in RESEARCH_SOURCES]
        yield from run_stage(context, research, deadline_at, researched)
        summary["research"] = dict(progress.research)

        publish("planning")
        plans: list[dict[str, Any]] = []
        plan_job = job("plan", Activity.PLAN_LESSONS, item_ids=sorted(item_ids))
        yield from run_stage(context, [plan_job], deadline_at, lambda _job, plan: plans.append(plan))
        if not plans[0]["ok"]:
            raise RunFailed(f"lesson plan failed: {plans[0]['error']}")
        numbers = [lesson["number"] for lesson in plans[0]["lessons"]]

        progress.lessons_total = len(numbers)
        publish("generating")

        def generated(done: Job, outcome: dict[str, Any]) -> None:
            if not outcome["ok"]:
                raise RunFailed(f"lesson {done.key} failed: {outcome['error']}")
            progress.lessons_done += 1
            publish()

        lessons = [job(n, Activity.GENERATE_LESSON, number=n) for n in numbers]
        yield from run_stage(context, lessons, deadline_at, generated)

        publish("saving")
        saved: list[dict[str, Any]] = []
        save_job = job("save", Activity.COMPLETE_RUN, numbers=numbers)
        yield from run_stage(context, [save_job], deadline_at, lambda _job, result: saved.append(result))
        publish("completed")
        outcome = {**summary, "status": saved[0]["status"], "lessons": saved[0]["lessons"]}
    except Exception as exc:  # every failure must reach the module row
        error = _failure_text(exc, run.deadline_minutes)
        log.error("run failed", error=error)
        publish("failed")
        yield context.call_activity_with_retry(Activity.FAIL_RUN, CRASH_RETRY, {**ids, "error": error})
        outcome = {**summary, "status": "failed", "error": error}
    if outcome["status"] in ("completed", "failed"):
        outcome["notification"] = yield from _notify(context, ids)
    return outcome


def _notify(context: df.DurableOrchestrationContext, ids: dict[str, str]) -> Generator[Any, Any, Any]:
    """The completion webhook: its own retries live in the activity; nothing here can change the status."""
    try:
        return (yield context.call_activity(Activity.NOTIFY_COMPLETION, ids))
    except Exception as exc:
        return {"delivered": False, "error": _failure_text(exc, 0)}


def _failure_text(exc: Exception, deadline_minutes: int) -> str:
    if isinstance(exc, DeadlineExceeded):
        return f"generation exceeded its deadline of {deadline_minutes} minutes"
    if isinstance(exc, RunFailed):
        return str(exc)
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"activity crashed: {first_line[:500]}"


def _research_state(status: str) -> str:
    return {"ok": "done", "cached": "done", "skipped": "skipped"}.get(status, "failed")
