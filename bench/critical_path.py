"""Benchmark (not a test): module wall time on the real stack ÷ its critical path; a sequential baseline.

    .venv/bin/python bench/critical_path.py [--concurrency 1,20] [--baseline-modules 2] [--seed 1]
        [--activity-slots 100] [--deepseek-concurrency 100]

Starts, in a temporary folder: an embedded PostgreSQL (migrated with clients.db.migrate), `python -m
sandbox` with research latencies 300–1500 ms per source request and AI latencies 2000–4000 ms per call,
and `python -m devhost start` on a copy of this app whose host.json has maxConcurrentActivityFunctions
= --activity-slots (0 keeps the repository's value; everything else as in the repository's host.json).

For each concurrency level C it creates C modules with distinct titles (so neither the research cache
nor the lesson cache serves them), puts C generation messages on the devhost's local Service Bus queue
at once, and waits until every module is `completed` in PostgreSQL. Per module:

  wall           = lessons_module.generation_completed_at − the message's enqueue time
  critical path  = slowest research call (latency_ms in the research_source activity outputs, from the
                   orchestration history) + plan AI call (latency_ms of the stored plan) + slowest lesson
                   AI call (generation_metadata.latency_ms of the lessons) + the final write (the slowest
                   complete_run execution of the level, from the devhost log's `Duration=` lines: the log
                   line names no instance, and the history span would include waiting for a slot)
  ratio          = wall ÷ critical path  (targets: ≤ 1.10 for one module, ≤ 1.30 for 20 at once)

Then the overhead is split by stage from the history timestamps (queue → ExecutionStarted, begin_run,
each stage's span minus its slowest call, the gaps between stages).

The baseline does the same calls one after another in this process, as the seed did (one module: each
research source in turn, the plan, each lesson in turn, then one write), through the same clients
(clients.research.search_source, clients.ai.AIChain, clients.db) against the same sandbox.
The AI latency_ms that the chain records includes waiting for a per-provider concurrency slot; the
default DEEPSEEK_MAX_CONCURRENCY (8) would make that wait part of the "call" at 20 modules, so it is
raised to --deepseek-concurrency here (pass 0 to keep the app's default and see the throttle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import AI, RESEARCH, Stack, StackConfig, code_version, wait_for

TOPICS = ("Python asyncio", "PostgreSQL indexing", "React hooks", "Rust ownership", "Docker networking")
RESEARCH_LATENCY = "300-1500"
AI_LATENCY = "2000-4000"
TASK_SCHEDULED, TASK_COMPLETED, EXECUTION_STARTED = 4, 5, 0
WRITE_LINE = re.compile(r"Executed 'Functions\.complete_run' \(Succeeded, Duration=(\d+)ms\)")


def latency_specs() -> list[str]:
    return [f"{s}={RESEARCH_LATENCY}" for s in RESEARCH] + [f"{p}={AI_LATENCY}" for p in AI]


def parse_ts(text: str) -> float:
    # DTFx timestamps carry 7 fractional digits; Python parses 6.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


@dataclass
class Module:
    module_id: str
    title: str
    enqueued_at: float
    completed_at: float
    lessons: int
    research_ms: float  # slowest research source call
    plan_ms: float
    lesson_ms: float  # slowest lesson AI call
    write_ms: float  # the final write: slowest complete_run execution of this level (devhost log)
    # overhead breakdown (ms) from the history
    to_start_ms: float
    begin_ms: float
    research_stage_ms: float
    plan_stage_ms: float
    lesson_stage_ms: float
    save_stage_ms: float
    between_ms: float

    @property
    def wall_ms(self) -> float:
        return (self.completed_at - self.enqueued_at) * 1000

    @property
    def critical_ms(self) -> float:
        return self.research_ms + self.plan_ms + self.lesson_ms + self.write_ms

    @property
    def ratio(self) -> float:
        return self.wall_ms / self.critical_ms


def analyse(stack: Stack, module_id: str, title: str, enqueued_at: float, write_ms: float) -> Module:
    history = stack.history(f"module-{module_id}")
    scheduled = {e["EventId"]: e for e in history if e["EventType"] == TASK_SCHEDULED}
    completed = {e["TaskScheduledId"]: e for e in history if e["EventType"] == TASK_COMPLETED}
    started = next(parse_ts(e["Timestamp"]) for e in history if e["EventType"] == EXECUTION_STARTED)

    def spans(name: str) -> list[tuple[float, float, dict[str, Any]]]:
        found = []
        for event_id, event in scheduled.items():
            if event["Name"] == name and event_id in completed:
                done = completed[event_id]
                found.append((parse_ts(event["Timestamp"]), parse_ts(done["Timestamp"]), done))
        if not found:
            raise RuntimeError(f"module {module_id}: no completed {name} in its history")
        return found

    def stage(name: str) -> tuple[float, float]:
        found = spans(name)
        return min(s for s, _, _ in found), max(e for _, e, _ in found)

    research = [json.loads(done["Result"])["latency_ms"] for _, _, done in spans("research_source")]
    (begin_s, begin_e), (res_s, res_e) = stage("begin_run"), stage("research_source")
    (plan_s, plan_e), (les_s, les_e), (save_s, save_e) = (
        stage("plan_lessons"),
        stage("generate_lesson"),
        stage("complete_run"),
    )
    rows = stack.sql(
        """SELECT m.generation_completed_at AS done, p.plan -> 'meta' ->> 'latency_ms' AS plan_ms,
                  (SELECT max((l.generation_metadata ->> 'latency_ms')::int) FROM lessons_lessoncontent l
                    WHERE l.module_id = m.id) AS lesson_ms,
                  (SELECT count(*) FROM lessons_lessoncontent l WHERE l.module_id = m.id) AS lessons
           FROM lessons_module m JOIN lo_generation_runs r ON r.module_id = m.id
           JOIN lo_run_plans p ON p.run_id = r.run_id WHERE m.id = $1""",
        uuid.UUID(module_id),
    )
    row = rows[0]
    plan_ms, lesson_ms = float(row["plan_ms"]), float(row["lesson_ms"])
    return Module(
        module_id=module_id,
        title=title,
        enqueued_at=enqueued_at,
        completed_at=row["done"].timestamp(),
        lessons=int(row["lessons"]),
        research_ms=float(max(research)),
        plan_ms=plan_ms,
        lesson_ms=lesson_ms,
        write_ms=write_ms,
        save_stage_ms=(save_e - save_s) * 1000 - write_ms,
        to_start_ms=(started - enqueued_at) * 1000,
        begin_ms=(begin_e - begin_s) * 1000,
        research_stage_ms=(res_e - res_s) * 1000 - max(research),
        plan_stage_ms=(plan_e - plan_s) * 1000 - plan_ms,
        lesson_stage_ms=(les_e - les_s) * 1000 - lesson_ms,
        between_ms=(
            (begin_s - started) + (res_s - begin_e) + (plan_s - res_e) + (les_s - plan_e) + (save_s - les_e)
        )
        * 1000,
    )


def run_concurrent(stack: Stack, count: int, timeout: float) -> tuple[list[Module], dict[str, int], float]:
    stack.reset_sandbox_counts()
    titles = [f"{TOPICS[i % len(TOPICS)]} {uuid.uuid4().hex[:6]}" for i in range(count)]
    ids = [stack.create_module(title) for title in titles]
    log_start = len(stack.host_log.read_text(errors="replace"))
    first = time.time()
    enqueued = [stack.enqueue(module_id) for module_id in ids]

    def all_done() -> bool:
        rows = stack.sql(
            "SELECT generation_status FROM lessons_module WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
        failed = [r for r in rows if r["generation_status"] == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} module(s) failed; devhost log: {stack.host_log}")
        return all(r["generation_status"] == "completed" for r in rows)

    wait_for(all_done, timeout=timeout, what=f"{count} modules to complete", interval=0.1)
    last = max(
        r["generation_completed_at"].timestamp()
        for r in stack.sql(
            "SELECT generation_completed_at FROM lessons_module WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
    )
    # The history's complete_run span includes waiting for an activity slot; the host log's Duration is
    # the write itself (the log line names no instance, so every module gets the slowest write).
    writes = [int(ms) for ms in WRITE_LINE.findall(stack.host_log.read_text(errors="replace")[log_start:])]
    write_ms = float(max(writes))
    modules = [analyse(stack, i, t, e, write_ms) for i, t, e in zip(ids, titles, enqueued, strict=True)]
    return modules, stack.sandbox_requests(), last - first


# -- the seed's way: one call after another ----------------------------------------------------------


@dataclass
class Baseline:
    title: str
    wall_ms: float
    calls: int
    lessons: int


async def sequential_module(stack: Stack, module_id: str, title: str) -> Baseline:
    from clients.ai import AIChain
    from clients.db import (
        LessonRow,
        RunKey,
        close_pools,
        complete_run,
        get_pool,
        mark_in_progress,
        request_generation,
    )
    from clients.http import close_session
    from clients.research import ResearchConfig, rank_items, search_source
    from domain.lessons import ModuleBrief

    env = stack.app_env
    pool = await get_pool(stack.database_url)
    try:
        started = time.perf_counter()
        outcome = await request_generation(
            pool,
            module_id,
            uuid.uuid4().hex,
            instance_id=f"seq-{module_id}",
            difficulty=None,
            learning_style=None,
        )
        run = RunKey(module_id=module_id, run_id=outcome.run.run_id)
        await mark_in_progress(pool, run)
        config = ResearchConfig.from_env(env)
        items = []
        for source in RESEARCH:
            found, _outcome = await search_source(source, title, config=config)
            items.extend(found)
        research = rank_items(title, items)
        brief = ModuleBrief.from_mapping({"module_id": module_id, "title": title, "difficulty": "beginner"})
        chain = AIChain.from_env(env)
        plan = await chain.plan_lessons(brief, research)
        rows = []
        for spec in plan.plan.lessons:
            result = await chain.generate_lesson(brief, spec, research)
            rows.append(
                LessonRow(
                    lesson_number=spec.number,
                    title=result.lesson.title,
                    content=result.lesson.content_markdown,
                    source_attribution=[],
                    generation_metadata=result.meta.to_dict(),
                )
            )
        await complete_run(pool, run, rows)
        wall = (time.perf_counter() - started) * 1000
    finally:
        await close_pools()
        await close_session()
    return Baseline(title, wall, len(RESEARCH) + 1 + len(rows), len(rows))


def run_baseline(stack: Stack, count: int) -> list[Baseline]:
    results = []
    for i in range(count):
        title = f"{TOPICS[i % len(TOPICS)]} seq {uuid.uuid4().hex[:6]}"
        module_id = stack.create_module(title)
        results.append(asyncio.run(sequential_module(stack, module_id, title)))
    return results


# -- report --------------------------------------------------------------------------------------------


def summary_line(label: str, values: list[float], fmt: str = "{:.2f}") -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"{label:<26} median {fmt.format(statistics.median(values))}  p90 {fmt.format(p90)}  "
        f"max {fmt.format(max(values))}  min {fmt.format(min(values))}"
    )


def report(
    count: int,
    modules: list[Module],
    requests: dict[str, int],
    span_s: float,
    baseline: list[Baseline],
    target: float,
) -> None:
    print(f"\n== {count} concurrent module(s): all done {span_s:.1f} s after the first enqueue ==")
    print(
        f"{'module':<30} | {'wall s':>6} | {'crit s':>6} | {'ratio':>5} | {'research':>8} | {'plan':>5} | "
        f"{'lesson':>6} | {'write':>5} | lessons"
    )
    for m in sorted(modules, key=lambda m: m.ratio):
        print(
            f"{m.title[:30]:<30} | {m.wall_ms / 1000:>6.2f} | {m.critical_ms / 1000:>6.2f} | "
            f"{m.ratio:>5.2f} | "
            f"{m.research_ms / 1000:>8.2f} | {m.plan_ms / 1000:>5.2f} | {m.lesson_ms / 1000:>6.2f} | "
            f"{m.write_ms / 1000:>5.3f} | {m.lessons}"
        )
    ratios = [m.ratio for m in modules]
    verdict = "met" if max(ratios) <= target else "MISSED"
    print(
        summary_line("ratio wall/critical", ratios) + f"   target ≤ {target:.2f} for every module: {verdict}"
    )
    print(summary_line("overhead wall−crit (ms)", [m.wall_ms - m.critical_ms for m in modules], "{:.0f}"))
    print("where the overhead goes (median ms over modules):")
    parts = {
        "queue → ExecutionStarted": [m.to_start_ms for m in modules],
        "begin_run activity": [m.begin_ms for m in modules],
        "episodes between stages": [m.between_ms for m in modules],
        "research stage − slowest call": [m.research_stage_ms for m in modules],
        "plan stage − plan call": [m.plan_stage_ms for m in modules],
        "lesson stage − slowest call": [m.lesson_stage_ms for m in modules],
        "save stage − slowest write": [m.save_stage_ms for m in modules],
    }
    for name, values in parts.items():
        print(f"  {name:<32} {statistics.median(values):>7.0f}   (max {max(values):.0f})")
    print(f"sandbox requests: {json.dumps(requests)}")
    if baseline:
        base = statistics.mean(b.wall_ms for b in baseline)
        walls = [m.wall_ms for m in modules]
        print(
            f"speed-up per module vs sequential baseline ({base / 1000:.2f} s): "
            f"median {base / statistics.median(walls):.2f}×, worst module {base / max(walls):.2f}×; "
            f"throughput vs running the baseline {count}× in a row: {count * base / 1000 / span_s:.1f}×"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,20", help="comma-separated module counts run at once")
    parser.add_argument("--baseline-modules", type=int, default=2, help="modules run the sequential way")
    parser.add_argument("--seed", type=int, default=1, help="sandbox latency seed")
    parser.add_argument(
        "--activity-slots",
        type=int,
        default=100,
        help="host.json maxConcurrentActivityFunctions (20 modules × 5 lessons; 0: the repository's value)",
    )
    parser.add_argument(
        "--deepseek-concurrency",
        type=int,
        default=100,
        help="DEEPSEEK_MAX_CONCURRENCY (0: the app's default)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    settings = (
        {"DEEPSEEK_MAX_CONCURRENCY": str(args.deepseek_concurrency)} if args.deepseek_concurrency else {}
    )
    slots = {"maxConcurrentActivityFunctions": args.activity_slots} if args.activity_slots else {}
    config = StackConfig(
        latency=latency_specs(),
        seed=args.seed,
        durable_task=slots,
        app_settings=settings,
    )
    print(
        f"critical path: Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); sandbox latency research "
        f"{RESEARCH_LATENCY} ms/request, AI {AI_LATENCY} ms/call, seed {args.seed}; code {code_version()}"
    )
    stack = Stack.start(config)
    try:
        durable = stack.host_json["extensions"]["durableTask"]
        print(
            f"devhost host.json durableTask: maxConcurrentActivityFunctions="
            f"{durable.get('maxConcurrentActivityFunctions')}, maxConcurrentOrchestratorFunctions="
            f"{durable.get('maxConcurrentOrchestratorFunctions')}; app settings {settings or 'defaults'}"
        )
        stack.reset_sandbox_counts()
        baseline = run_baseline(stack, args.baseline_modules)
        if baseline:
            print(f"\n== sequential baseline (the seed's way), {len(baseline)} module(s) ==")
            for b in baseline:
                print(
                    f"{b.title[:30]:<30} | wall {b.wall_ms / 1000:6.2f} s | {b.calls} calls | "
                    f"{b.lessons} lessons"
                )
            print(f"sandbox requests: {json.dumps(stack.sandbox_requests())}")
        for count in levels:
            modules, requests, span = run_concurrent(stack, count, args.timeout)
            report(count, modules, requests, span, baseline, 1.10 if count == 1 else 1.30)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
