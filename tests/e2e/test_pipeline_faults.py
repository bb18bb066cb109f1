"""Failures and recovery end to end: upstreams down, duplicates while running, a killed host, the cache."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import Stack, start_stack, wait_until

pytestmark = pytest.mark.slow

AI = ("deepseek", "groq", "gemini")


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(database_url, tmp_path_factory.mktemp("faults"))


@pytest.fixture(autouse=True)
def healthy_upstreams(stack: Stack) -> Iterator[None]:
    yield
    for source in ("github", "stackoverflow", "youtube", "devto", "docs", *AI):
        stack.fault(source, None)
        stack.latency(source, 0, 0)


def metadata(row: Any) -> dict[str, Any]:
    value = row["generation_metadata"]
    return json.loads(value) if isinstance(value, str) else value


def test_one_research_source_down_still_completes_and_says_which(stack: Stack) -> None:
    stack.fault("github", "error")
    module_id = stack.create_module("Kubernetes operators")
    stack.enqueue({"module_id": module_id})
    state = stack.wait_for_module(module_id, "completed", "failed")
    assert state["status"] == "completed", state
    assert state["progress"]["research"]["github"] == "failed"
    assert state["progress"]["research"]["stackoverflow"] == "done"
    for row in stack.lessons(module_id):
        sources = row["source_attribution"]
        sources = json.loads(sources) if isinstance(sources, str) else sources
        assert all(item["source"] != "github" for item in sources)


def test_first_ai_provider_down_falls_back_and_records_it(stack: Stack) -> None:
    stack.fault("deepseek", "429")
    module_id = stack.create_module("GraphQL schema design")
    stack.enqueue({"module_id": module_id})
    state = stack.wait_for_module(module_id, "completed", "failed", timeout=180)
    assert state["status"] == "completed", state
    lessons = stack.lessons(module_id)
    assert lessons
    for row in lessons:
        meta = metadata(row)
        assert meta["provider"] == "groq"
        assert any("deepseek" in reason for reason in meta["fallbacks"]), meta


def test_all_ai_providers_down_fails_the_module_with_no_lessons(stack: Stack) -> None:
    for provider in AI:
        stack.fault(provider, "error")
    module_id = stack.create_module("WebAssembly toolchains")
    stack.enqueue({"module_id": module_id})
    state = stack.wait_for_module(module_id, "completed", "failed", timeout=240)
    assert state["status"] == "failed", state
    assert "no AI provider could generate" in state["error"]
    assert state["lessons"] == 0
    assert stack.lessons(module_id) == []
    assert state["progress"]["stage"] == "failed"


def test_requests_while_running_join_one_run_and_the_status_walks_every_stage(stack: Stack) -> None:
    for provider in AI:
        stack.latency(provider, 600, 800)
    module_id = stack.create_module("Terraform modules")
    for n in range(3):
        stack.enqueue({"module_id": module_id, "request_id": f"distinct-{n}"})
    stages: list[str] = []

    def finished() -> bool:
        state = stack.generation(module_id)
        if not stages or stages[-1] != state["progress"]["stage"]:
            stages.append(state["progress"]["stage"])
        return state["status"] in ("completed", "failed")

    wait_until(finished, timeout=180, what="the module to finish")
    assert stages[-1] == "completed", stages
    order = ["queued", "researching", "planning", "generating", "saving", "completed"]
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in stages)
    assert {"planning", "generating"} <= set(stages), stages
    runs = stack.sql("SELECT run_id FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id))
    assert len(runs) == 1
    requests = stack.sql("SELECT outcome FROM lo_generation_requests WHERE module_id = $1",
                         uuid.UUID(module_id))
    assert sorted(r["outcome"] for r in requests) == ["joined", "joined", "new_run"]


def test_a_request_after_completion_regenerates_and_replaces_the_lessons(stack: Stack) -> None:
    module_id = stack.create_module("Go generics")
    stack.enqueue({"module_id": module_id, "request_id": "first"})
    stack.wait_for_module(module_id, "completed", "failed")
    before = {row["lesson_number"]: row["id"] for row in stack.lessons(module_id)}
    stack.enqueue({"module_id": module_id, "request_id": "second"})
    wait_until(lambda: len(stack.sql("SELECT 1 FROM lo_generation_runs WHERE module_id = $1 AND "
                                     "status = 'completed'", uuid.UUID(module_id))) == 2,
               timeout=120, what="the second run to complete")
    after = stack.lessons(module_id)
    assert [row["lesson_number"] for row in after] == sorted(before)
    assert {row["lesson_number"]: row["id"] for row in after} == before  # replaced in place, no duplicates
    assert stack.generation(module_id)["status"] == "completed"


def test_an_identical_module_is_served_from_the_plan_and_lesson_caches_without_ai_calls(stack: Stack) -> None:
    first = stack.create_module("Svelte stores", "Reactive state", "beginner")
    stack.enqueue({"module_id": first})
    stack.wait_for_module(first, "completed", "failed")
    calls_before = sum(stack.sandbox_requests()[p] for p in AI)
    second = stack.create_module("Svelte stores", "Reactive state", "beginner")
    stack.enqueue({"module_id": second})
    state = stack.wait_for_module(second, "completed", "failed")
    assert state["status"] == "completed"
    assert sum(stack.sandbox_requests()[p] for p in AI) - calls_before == 0
    assert all(metadata(row)["cache_hit"] for row in stack.lessons(second))
    usage = stack.sql("SELECT cache_hit, tokens_in FROM lo_ai_usage WHERE module_id = $1", uuid.UUID(second))
    assert len(usage) == 1 + state["lessons"] and all(r["cache_hit"] and r["tokens_in"] == 0 for r in usage)
    # Another difficulty is another plan: the caches never serve a different request.
    third = stack.create_module("Svelte stores", "Reactive state", "advanced")
    stack.enqueue({"module_id": third})
    stack.wait_for_module(third, "completed", "failed")
    assert sum(stack.sandbox_requests()[p] for p in AI) - calls_before > 0


def test_concurrent_requests_for_one_new_topic_pay_for_its_plan_and_lessons_once(stack: Stack) -> None:
    for provider in AI:
        stack.latency(provider, 300, 500)
    calls_before = sum(stack.sandbox_requests()[p] for p in AI)
    modules = [stack.create_module("Deno permissions", "Sandboxed by default", "beginner") for _ in range(3)]
    for module_id in modules:
        stack.enqueue({"module_id": module_id})
    states = [stack.wait_for_module(module_id, "completed", "failed", timeout=120) for module_id in modules]
    assert all(state["status"] == "completed" for state in states), states
    lessons = states[0]["lessons"]
    assert all(state["lessons"] == lessons for state in states)
    # One plan and one call per lesson for all three runs: the others waited for the cache entries.
    assert sum(stack.sandbox_requests()[p] for p in AI) - calls_before == 1 + lessons


def test_a_killed_host_resumes_the_run_without_duplicate_lessons(stack: Stack) -> None:
    for provider in AI:
        stack.latency(provider, 800, 1000)
    module_id = stack.create_module("Elixir OTP supervisors")
    stack.enqueue({"module_id": module_id})
    wait_until(lambda: stack.generation(module_id)["progress"]["stage"] == "generating", timeout=120,
               what="the generating stage")
    stack.restart_host(kill=True)
    state = stack.wait_for_module(module_id, "completed", "failed", timeout=180)
    assert state["status"] == "completed", state
    numbers = [row["lesson_number"] for row in stack.lessons(module_id)]
    assert numbers == list(range(1, len(numbers) + 1))
    assert state["lessons"] == len(numbers)


def test_a_module_deleted_mid_run_ends_the_run_without_writing(stack: Stack) -> None:
    for provider in AI:
        stack.latency(provider, 800, 1000)
    module_id = stack.create_module("Haskell monads")
    stack.enqueue({"module_id": module_id})
    wait_until(lambda: stack.generation(module_id)["progress"]["stage"] in ("planning", "generating"),
               timeout=120, what="planning to start")
    stack.sql("DELETE FROM lessons_module WHERE id = $1", uuid.UUID(module_id))
    status = stack.wait_for_instance(f"module-{module_id}", "Completed", "Failed", timeout=120)
    output = status["output"]
    assert output["status"] in ("failed", "superseded"), output
    assert stack.lessons(module_id) == []
