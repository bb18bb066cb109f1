"""Run a stage's activities concurrently, reacting to each result as it lands.

Why not `call_activity_with_retry` inside `task_any`: on the Functions host's out-of-proc
protocol the host walks top-level actions in order and allocates the retry interceptor's timer ids
itself, while history is replayed. A `task_any` completes at its first child, so on a later replay
the host invokes the next stage's actions *before* a sibling's retry timer and numbers them
differently from the recorded history: a NonDeterministicOrchestrationException on Azure (the
devhost reproduces it). Here every timer and every attempt is an action the orchestrator yields
itself, so sequence numbers follow the action order on every replay.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

MAX_ATTEMPTS = 3
FIRST_RETRY_DELAY = timedelta(seconds=5)


class DeadlineExceeded(Exception):
    pass


class ActivityCrashed(Exception):
    """An activity raised on every attempt (the host's failure text is the message)."""


@dataclass(frozen=True)
class Job:
    key: Hashable
    activity: str
    payload: Any


def run_stage(
    context: df.DurableOrchestrationContext,
    jobs: list[Job],
    deadline_at: datetime,
    on_result: Callable[[Job, Any], None],
) -> Generator[Any, Any, None]:
    """Run `jobs` concurrently; `on_result(job, output)` as each succeeds (it may raise to stop).

    A crashed attempt is retried after a durable timer (5 s, then 10 s); a third crash, or the
    deadline passing, raises. Every new wait also waits on a fresh deadline timer, so the host
    always has a timer that ends the stage on time; all timers still pending at the end are
    cancelled so the instance can complete.
    """
    attempts: dict[Hashable, int] = {}
    running: dict[Any, Job] = {}  # activity task -> job
    backoffs: dict[Any, Job] = {}  # retry timer -> job
    guards: list[Any] = []  # deadline timers

    def start(job: Job) -> None:
        attempts[job.key] = attempts.get(job.key, 0) + 1
        running[context.call_activity(job.activity, job.payload)] = job
        guards.append(context.create_timer(deadline_at))

    for job in jobs:
        attempts[job.key] = 0
    for job in jobs:
        attempts[job.key] += 1
        running[context.call_activity(job.activity, job.payload)] = job
    guards.append(context.create_timer(deadline_at))

    try:
        while running or backoffs:
            winner = yield context.task_any([*running, *backoffs, *guards])
            if winner in backoffs:
                start(backoffs.pop(winner))
                continue
            if winner not in running:
                raise DeadlineExceeded()
            job = running.pop(winner)
            if winner.state is not TaskState.FAILED:
                on_result(job, winner.result)
                continue
            retry_at = context.current_utc_datetime + FIRST_RETRY_DELAY * 2 ** (attempts[job.key] - 1)
            if attempts[job.key] >= MAX_ATTEMPTS or retry_at >= deadline_at:
                raise ActivityCrashed(str(winner.result))
            backoffs[context.create_timer(retry_at)] = job
    finally:
        # Generator close (GeneratorExit) never reaches here mid-wait in practice: the SDK keeps the
        # generator alive for the whole invocation; this runs on normal exit and on exceptions.
        for timer in [*guards, *backoffs]:
            if not timer.is_completed:
                timer.cancel()
