"""Why orchestrations/stages.py exists: the host-side numbering of built-in retries inside task_any."""

from __future__ import annotations

import asyncio
from typing import Any

import azure.durable_functions as df

pytest_plugins = ["devhost.testing"]

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1_000, max_number_of_attempts=3)


def naive_app(flaky_attempts: list[int], second_done: asyncio.Event) -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context", orchestration="NaiveLoop")
    def naive_loop(context: df.DurableOrchestrationContext):
        pending = [context.call_activity_with_retry("Work", RETRY, n) for n in (1, 2)]
        while pending:
            winner = yield context.task_any(pending)
            pending.remove(winner)
        yield context.call_activity("Work", 3)
        return "done"

    @app.activity_trigger(input_name="n", activity="Work")
    async def work(n: int) -> int:
        if n == 1:
            flaky_attempts.append(1)
            if len(flaky_attempts) == 1:
                await second_done.wait()
                raise ConnectionError("crash after the sibling finished")
        if n == 2:
            second_done.set()
        return n

    return app


async def test_builtin_retry_inside_a_task_any_loop_is_nondeterministic_on_the_host(
    durable_host_factory,
) -> None:
    # On Azure this is a NonDeterministicOrchestrationException once a retry interleaves with a sibling
    # that already finished; the devhost reproduces the host's numbering and fails the same way.
    attempts: list[int] = []
    app = naive_app(attempts, asyncio.Event())
    async with durable_host_factory(app) as host:
        instance_id = await host.start("NaiveLoop")
        status = await host.wait_done(instance_id, timeout=10)
    assert status.runtime_status == "Failed"
    assert "Was a change made to the orchestrator code" in (status.output_text or "")


def staged_app(flaky_attempts: list[int], second_done: asyncio.Event) -> df.DFApp:
    from orchestrations.stages import Job, run_stage

    app = naive_app(flaky_attempts, second_done)

    @app.orchestration_trigger(context_name="context", orchestration="StagedLoop")
    def staged_loop(context: df.DurableOrchestrationContext):
        results: list[Any] = []
        deadline = context.current_utc_datetime.replace(year=context.current_utc_datetime.year + 1)
        jobs = [Job(n, "Work", n) for n in (1, 2)]
        yield from run_stage(context, jobs, deadline, lambda _job, value: results.append(value))
        results.append((yield context.call_activity("Work", 3)))
        return results

    return app


async def test_run_stage_survives_the_same_interleaving(durable_host_factory) -> None:
    attempts: list[int] = []
    app = staged_app(attempts, asyncio.Event())
    async with durable_host_factory(app) as host:
        instance_id = await host.start("StagedLoop")
        status = await host.wait_done(instance_id, timeout=10)
    assert status.runtime_status == "Completed", status.output_text
    assert host.output(status) == [2, 1, 3]
    assert len(attempts) == 2
