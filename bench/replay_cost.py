"""Benchmark (not a test): orchestrator CPU time per module at 5, 20 and 80 lessons (replay cost).

    .venv/bin/python bench/replay_cost.py [--lessons 5,20,80] [--mode instant,staggered] [--profile N]

Runs the real `generate_module_lessons` orchestration (orchestrations/generate_module.py, registered
under its real name on a DFApp) on the in-process devhost engine (devhost.testing.DurableTestHost,
virtual clock, temporary SQLite state). Every activity is replaced by an instant fake result; the fake
`plan_lessons` returns N lessons (the real LessonPlan schema allows 3–5, so only the activity output is
faked). Two delivery patterns:

  instant    every activity returns at once; the engine batches completions that arrive together into
             one episode, so there are few episodes (the best case for replay).
  staggered  lesson N's fake result is delayed by N × --stagger-ms of real time, so completions arrive
             one by one and (nearly) every lesson completion is an episode of its own: what real AI
             latencies produce, and the worst case for replay.

Measured with time.thread_time (CPU time of the thread that runs the episode, so waits do not count):
  episode CPU  the SDK handle (`Orchestrator.create(fn)` → handle(request JSON) → reply JSON): parse
               the request with the whole history, rebuild the context, replay the generator, encode the
               actions — summed over all episodes of the instance;
  user CPU     the part spent inside the generator function itself (our code plus the context.* calls it
               makes), timed around each generator resume.
`--profile N` runs one staggered instance with N lessons under cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import azure.durable_functions as df

from bench._stack import code_version
from devhost.registry import FunctionRegistry
from devhost.testing import DurableTestHost
from domain.pipeline import ORCHESTRATOR, RESEARCH_SOURCES, Activity, RunInput
from orchestrations.generate_module import generate_module_lessons

DEFAULT_SIZES = (5, 20, 80)


@dataclass
class Meter:
    episodes: int = 0
    episode_ns: int = 0
    user_ns: int = 0
    request_chars: int = 0
    per_episode: list[tuple[int, int]] = field(default_factory=list)  # (request chars, episode ns)
    profiler: cProfile.Profile | None = None  # enabled around each episode (episodes run on pool threads)


def timed_generator(fn: Callable[..., Generator[Any, Any, Any]], meter: Meter) -> Callable[..., Any]:
    """`fn` as a generator function whose own resumes are timed (thread CPU time)."""

    @functools.wraps(fn)
    def orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        started = time.thread_time_ns()
        inner = fn(context)
        meter.user_ns += time.thread_time_ns() - started
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time_ns()
            try:
                item = inner.send(value) if error is None else inner.throw(error)
            except StopIteration as stop:
                meter.user_ns += time.thread_time_ns() - started
                return stop.value
            meter.user_ns += time.thread_time_ns() - started
            try:
                value, error = (yield item), None
            except Exception as exc:  # the SDK throws a failed task's exception into the generator
                value, error = None, exc

    return orchestrator


def timed_handle(handle: Callable[[str], str], meter: Meter) -> Callable[[str], str]:
    def run(request: str) -> str:
        if meter.profiler is not None:
            meter.profiler.enable()
        started = time.thread_time_ns()
        reply = handle(request)
        spent = time.thread_time_ns() - started
        if meter.profiler is not None:
            meter.profiler.disable()
        meter.episodes += 1
        meter.episode_ns += spent
        meter.request_chars += len(request)
        meter.per_episode.append((len(request), spent))
        return reply

    return run


def build_app(meter: Meter) -> df.DFApp:
    app = df.DFApp()
    app.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)(
        timed_generator(generate_module_lessons, meter)
    )
    return app


def fake_activities(lessons: int, stagger_s: float) -> dict[str, Any]:
    async def generate(payload: dict[str, Any]) -> dict[str, Any]:
        number = int(payload["number"])
        if stagger_s:
            await asyncio.sleep(number * stagger_s)
        return {"ok": True, "number": number, "provider": "fake", "cache_hit": False}

    def research(payload: dict[str, Any]) -> dict[str, Any]:
        index = RESEARCH_SOURCES.index(payload["source"])
        ids = list(range(index * 8 + 1, index * 8 + 9))
        return {"source": payload["source"], "status": "ok", "error": None, "item_ids": ids, "latency_ms": 1}

    plan = {
        "ok": True,
        "lessons": [{"number": n, "title": f"Lesson {n}"} for n in range(1, lessons + 1)],
        "provider": "fake",
    }
    fakes: dict[str, Any] = {
        Activity.BEGIN_RUN: {"current": True},
        Activity.RESEARCH_SOURCE: research,
        Activity.PLAN_LESSONS: plan,
        Activity.GENERATE_LESSON: generate,
        Activity.COMPLETE_RUN: lambda payload: {"status": "completed", "lessons": len(payload["numbers"])},
        Activity.FAIL_RUN: {"status": "failed"},
    }
    # Activities added to the pipeline later (e.g. the completion webhook) answer a neutral result.
    for name in vars(Activity).values():
        if isinstance(name, str) and not name.startswith("_") and name not in fakes:
            fakes[name] = {"delivered": False, "attempts": 0, "error": "fake activity"}
    return fakes


@dataclass(frozen=True)
class Result:
    mode: str
    lessons: int
    episodes: int
    history_events: int
    episode_ms: float
    user_ms: float
    request_mib: float
    wall_s: float
    last_episode_ms: float

    @property
    def per_lesson_ms(self) -> float:
        return self.episode_ms / self.lessons


async def run_one(
    lessons: int, mode: str, stagger_ms: float, profiler: cProfile.Profile | None = None
) -> Result:
    meter = Meter(profiler=profiler)
    stagger_s = stagger_ms / 1000 if mode == "staggered" else 0.0
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as work:
        host = DurableTestHost(
            build_app(meter),
            Path(work),
            activity_overrides=fake_activities(lessons, stagger_s),
            max_concurrent_activities=max(100, lessons + 10),
        )
        registry: FunctionRegistry = host.engine.registry
        orchestrator = registry.orchestrators[ORCHESTRATOR]
        wrapped = timed_handle(orchestrator.handle, meter)
        registry.orchestrators[ORCHESTRATOR] = replace(
            orchestrator, entry=replace(orchestrator.entry, user_function=wrapped)
        )
        async with host:
            run = RunInput(module_id="m-1", run_id="r-1", request_id="q-1", deadline_minutes=30)
            started = time.perf_counter()
            instance_id = await host.start(ORCHESTRATOR, run.to_dict(), instance_id="module-m-1")
            # Not wait_done: that lets the virtual clock jump to the 30-minute deadline timer while
            # staggered activities are still sleeping in real time.
            status = await host.wait_for(instance_id, ["Completed", "Failed", "Terminated"], timeout=600)
            wall = time.perf_counter() - started
            output = host.output(status)
            if status.runtime_status != "Completed" or output.get("lessons") != lessons:
                raise RuntimeError(f"{lessons} lessons ({mode}) ended {status.runtime_status}: {output}")
            events = len(host.history(instance_id))
    return Result(
        mode=mode,
        lessons=lessons,
        episodes=meter.episodes,
        history_events=events,
        episode_ms=meter.episode_ns / 1e6,
        user_ms=meter.user_ns / 1e6,
        request_mib=meter.request_chars / 2**20,
        wall_s=wall,
        last_episode_ms=meter.per_episode[-1][1] / 1e6,
    )


def profile(lessons: int, stagger_ms: float) -> None:
    profiler = cProfile.Profile()
    result = asyncio.run(run_one(lessons, "staggered", stagger_ms, profiler))
    print(
        f"N={lessons} staggered: {result.episodes} episodes, {result.episode_ms:.0f} ms episode CPU "
        "under cProfile; the profile covers the SDK handle calls only"
    )
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    # The SDK warns on the root logger that an auth level means nothing to an app without HTTP functions.
    logging.getLogger().setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lessons", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated N")
    parser.add_argument("--mode", default="instant,staggered", help="instant and/or staggered")
    parser.add_argument("--stagger-ms", type=float, default=25.0, help="delay step between lesson results")
    parser.add_argument("--repeat", type=int, default=3, help="runs per (mode, N); the median is shown")
    parser.add_argument("--profile", type=int, metavar="N", help="profile one staggered run of N lessons")
    args = parser.parse_args()
    if args.profile is not None:
        profile(args.profile, args.stagger_ms)
        return
    sizes = [int(n) for n in args.lessons.split(",") if n.strip()]
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    print(
        f"replay cost: Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), "
        f"azure-functions-durable {_sdk_version()}; median of {args.repeat} runs; code {code_version()}"
    )
    print(
        f"{'mode':<9} | {'N':>3} | {'episodes':>8} | {'history':>7} | {'episode CPU ms':>14} | "
        f"{'per lesson ms':>13} | {'user CPU ms':>11} | {'SDK share':>9} | {'request MiB':>11} | "
        f"{'last episode ms':>15}"
    )
    for mode in modes:
        results: list[Result] = []
        for lessons in sizes:
            runs = sorted(
                (asyncio.run(run_one(lessons, mode, args.stagger_ms)) for _ in range(args.repeat)),
                key=lambda r: r.episode_ms,
            )
            r = runs[len(runs) // 2]
            results.append(r)
            print(
                f"{mode:<9} | {r.lessons:>3} | {r.episodes:>8} | {r.history_events:>7} | "
                f"{r.episode_ms:>14.1f} | {r.per_lesson_ms:>13.2f} | {r.user_ms:>11.1f} | "
                f"{1 - r.user_ms / r.episode_ms:>9.0%} | {r.request_mib:>11.2f} | {r.last_episode_ms:>15.2f}"
            )
        if len(results) >= 2:
            first, last = results[0], results[-1]
            size_ratio = last.lessons / first.lessons
            print(
                f"{mode}: N ×{size_ratio:g} → episode CPU ×{last.episode_ms / first.episode_ms:.1f} "
                f"(linear would be ×{size_ratio:g}, quadratic ×{size_ratio**2:g}); "
                f"per lesson {first.per_lesson_ms:.2f} → {last.per_lesson_ms:.2f} ms"
            )


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("azure-functions-durable")


if __name__ == "__main__":
    main()
