"""Benchmark (not a test): lesson and plan cache hit rates and AI calls saved on a repeated-topics workload.

    .venv/bin/python bench/cache.py [--requests 100] [--topics 20] [--zipf 1.0] [--seed 7] [--wave 5]

The real pipeline: an embedded PostgreSQL, `python -m sandbox` and `python -m devhost start` on this app
(bench/_stack.py). A seeded Zipf mix (weight of the k-th topic ∝ 1/k^s) draws --requests module
requests over --topics titles; each request is a new module row with that title (another learner's
module on the same topic), sent as a generation message on the devhost's local Service Bus queue.
Requests arrive in waves of --wave modules at once; a wave starts when the previous one has completed
(requests for the same topic inside one wave run concurrently and cannot serve each other).

Upstream latencies are kept small (research 50–150 ms, AI 200–400 ms): they do not change which
lessons hit the cache, only how long the run takes.

Reported:
  lesson cache hit rate   lessons served from lo_lesson_cache (generation_metadata.cache_hit) ÷ lessons
  AI calls                sandbox AI requests counted by GET /_sandbox/requests, against what the same
                          workload costs without caches (one plan + one call per lesson each)
  plan cache              plans served from lo_plan_cache (lo_ai_usage rows with cache_hit and no lesson)
  research                research requests, against 7 per uncached module (GitHub and Stack Exchange
                          make two each): the research cache also serves repeats within its TTL
  best possible           hits if every lesson of a topic already completed earlier were served
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import AI, RESEARCH, Stack, StackConfig, code_version, wait_for

TOPICS = (
    "Python asyncio",
    "PostgreSQL indexing",
    "React hooks",
    "Rust ownership",
    "Docker networking",
    "Kubernetes deployments",
    "Git branching",
    "TypeScript generics",
    "SQL window functions",
    "Go concurrency",
    "Linux file permissions",
    "HTTP caching",
    "GraphQL schemas",
    "Redis data types",
    "Terraform modules",
    "Django ORM",
    "CSS grid layout",
    "Java streams",
    "Bash scripting",
    "Unit testing with pytest",
)
RESEARCH_REQUESTS_PER_MODULE = 7  # github 2, stackexchange 2, youtube, devto, docs 1 each (sandbox counts)


def zipf_mix(requests: int, topics: int, exponent: float, seed: int) -> list[str]:
    names = list(TOPICS[:topics])
    weights = [1 / (rank**exponent) for rank in range(1, topics + 1)]
    return random.Random(seed).choices(names, weights=weights, k=requests)


def run_wave(stack: Stack, titles: list[str], timeout: float) -> list[str]:
    ids = [stack.create_module(title) for title in titles]
    for module_id in ids:
        stack.enqueue(module_id)

    def done() -> bool:
        rows = stack.sql(
            "SELECT generation_status, generation_error FROM lessons_module WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in ids],
        )
        failed = [r["generation_error"] for r in rows if r["generation_status"] == "failed"]
        if failed:
            raise RuntimeError(f"a module failed: {failed[0]} (devhost log {stack.host_log})")
        return all(r["generation_status"] == "completed" for r in rows)

    wait_for(done, timeout=timeout, what=f"a wave of {len(ids)} modules", interval=0.05)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--topics", type=int, default=20, choices=range(1, len(TOPICS) + 1), metavar="N")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent s (weight ∝ 1/k^s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the topic draw (and the sandbox)")
    parser.add_argument("--wave", type=int, default=5, help="requests sent at once")
    args = parser.parse_args()

    mix = zipf_mix(args.requests, args.topics, args.zipf, args.seed)
    latency = [f"{s}=50-150" for s in RESEARCH] + [f"{p}=200-400" for p in AI]
    print(
        f"lesson cache: Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); {args.requests} requests "
        f"over {args.topics} topics, Zipf s={args.zipf:g}, seed {args.seed}, waves of {args.wave}; "
        f"code {code_version()}"
    )
    counts = {t: mix.count(t) for t in dict.fromkeys(mix)}
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    print(
        f"distinct topics drawn: {len(counts)}; most requested: " + ", ".join(f"{t} ×{n}" for t, n in top[:5])
    )
    stack = Stack.start(StackConfig(latency=latency, seed=args.seed))
    try:
        stack.reset_sandbox_counts()
        started = time.perf_counter()
        ids: list[str] = []
        completed_topics: set[str] = set()
        repeat_ids: set[str] = set()  # modules whose topic had completed in an earlier wave
        for first in range(0, len(mix), args.wave):
            wave = mix[first : first + args.wave]
            wave_ids = run_wave(stack, wave, timeout=600)
            repeat_ids.update(i for i, title in zip(wave_ids, wave, strict=True) if title in completed_topics)
            ids += wave_ids
            completed_topics.update(wave)
        elapsed = time.perf_counter() - started
        requests = stack.sandbox_requests()
        rows = stack.sql(
            """SELECT m.id::text AS module_id, (l.generation_metadata ->> 'cache_hit')::boolean AS hit
               FROM lessons_lessoncontent l JOIN lessons_module m ON m.id = l.module_id
               WHERE m.id = ANY($1::uuid[])""",
            [uuid.UUID(i) for i in ids],
        )
        stored_hits = stack.sql(
            "SELECT coalesce(sum(hits), 0) AS hits, count(*) AS entries FROM lo_lesson_cache"
        )
        plan_hits = stack.sql("SELECT coalesce(sum(hits), 0) AS hits, count(*) AS entries FROM lo_plan_cache")
    finally:
        stack.close()

    lessons = len(rows)
    hits = sum(1 for r in rows if r["hit"])
    per_request = lessons / len(ids)
    ai_calls = sum(requests[p] for p in (*AI, "openai"))
    plans = len(ids)
    without_cache = plans + lessons
    research_calls = sum(requests[s] for s in RESEARCH)
    saved = without_cache - ai_calls
    print(
        f"\n{len(ids)} modules completed in {elapsed:.1f} s; {lessons} lessons ({per_request:.1f} per module)"
    )
    print(f"{'measure':<34} | {'value':>10}")
    print(f"{'lesson cache hits / lessons':<34} | {hits:>4} / {lessons:<4} = {hits / lessons:.1%}")
    repeat_lessons = [r for r in rows if r["module_id"] in repeat_ids]
    repeat_hits = sum(1 for r in repeat_lessons if r["hit"])
    print(
        f"{'best possible (topic done earlier)':<34} | {len(repeat_lessons):>4} / {lessons:<4} = "
        f"{len(repeat_lessons) / lessons:.1%} of lessons ({len(repeat_ids)} of {len(ids)} requests)"
    )
    print(
        f"{'  served of those / same-wave hits':<34} | {repeat_hits:>4} / {len(repeat_lessons):<4}, "
        f"{hits - repeat_hits} hits between requests of one wave"
    )
    print(
        f"{'lo_lesson_cache entries / hits':<34} | {stored_hits[0]['entries']:>4} / {stored_hits[0]['hits']}"
    )
    print(f"{'AI calls made (sandbox)':<34} | {ai_calls:>10}   {dict((p, requests[p]) for p in AI)}")
    print(
        f"{'AI calls without caches':<34} | {without_cache:>10}   ({plans} plans + {lessons} lessons)"
    )
    print(
        f"{'AI calls saved':<34} | {saved:>10} = {saved / without_cache:.1%}"
        " of all AI calls"
    )
    print(
        f"{'plan cache hits / plans':<34} | {plan_hits[0]['hits']:>4} / {plans:<4} "
        f"({plan_hits[0]['entries']} distinct plans)"
    )
    uncached_research = RESEARCH_REQUESTS_PER_MODULE * len(ids)
    print(
        f"{'research requests (sandbox)':<34} | {research_calls:>10}   vs {uncached_research} uncached "
        f"({1 - research_calls / uncached_research:.0%} served by the research cache)"
    )
    target = "met" if hits / lessons >= 0.80 else "MISSED"
    print(f"seed's claim ≥ 80 % of lessons from cache: {target} ({hits / lessons:.1%})")


if __name__ == "__main__":
    main()
