"""The product end to end: queue message → devhost → orchestration → PostgreSQL, sandbox upstreams."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, start_stack, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(database_url, tmp_path_factory.mktemp("stack"))


def test_a_queued_module_gets_3_to_5_cited_lessons_and_usage_rows(stack: Stack) -> None:
    module_id = stack.create_module("Python asyncio", "Event loops, tasks and structured concurrency")
    stack.enqueue({"module_id": module_id, "difficulty": "intermediate", "learning_style": "hands-on",
                   "user_profile": {"name": "Ada Lovelace"}})
    state = stack.wait_for_module(module_id, "completed", "failed")
    assert state["status"] == "completed", state
    assert state["progress"]["stage"] == "completed"
    assert 3 <= state["lessons"] <= 5
    assert state["progress"]["lessons"] == {"done": state["lessons"], "total": state["lessons"]}
    assert set(state["progress"]["research"]) == {"github", "stackoverflow", "youtube", "devto", "docs"}

    lessons = stack.lessons(module_id)
    assert [row["lesson_number"] for row in lessons] == list(range(1, len(lessons) + 1))
    for row in lessons:
        attribution = json.loads(row["source_attribution"]) if isinstance(row["source_attribution"], str) \
            else row["source_attribution"]
        assert attribution, f"lesson {row['lesson_number']} cites no research"
        assert all(item["url"].startswith("http") for item in attribution)
        assert all(item["url"] in row["content"] for item in attribution)
        assert "<script" not in row["content"].lower()
    usage = stack.sql("SELECT provider, tokens_in, tokens_out FROM lo_ai_usage WHERE module_id = $1",
                      uuid.UUID(module_id))
    assert len(usage) == 1 + len(lessons)  # the plan and each lesson
    assert all(row["tokens_in"] > 0 and row["tokens_out"] > 0 for row in usage)
    # One structured line per activity, fields in the message (what Application Insights receives).
    log = stack.host.stderr()
    assert f"activity generate_lesson: ok | activity=generate_lesson module_id={module_id}" in log
    assert "provider=deepseek" in log and "tokens_in=" in log
    assert f"activity complete_run: completed | activity=complete_run module_id={module_id}" in log
    # Personal data never reaches an AI provider: the prompt stand-ins record the last request body.
    assert "Ada Lovelace" not in json.dumps([dict(r) for r in stack.sql("SELECT * FROM lo_run_plans")],
                                            default=str)


def test_ten_copies_of_one_message_make_one_run(stack: Stack) -> None:
    module_id = stack.create_module("Rust ownership")
    body = {"module_id": module_id, "request_id": "dup-1"}
    for _ in range(10):
        stack.enqueue(body)
    state = stack.wait_for_module(module_id, "completed", "failed")
    assert state["status"] == "completed", state
    runs = stack.sql("SELECT run_id FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id))
    assert len(runs) == 1


def test_malformed_message_and_unknown_module_are_dead_lettered_with_their_reason(stack: Stack) -> None:
    module_id = stack.create_module("Docker networking")
    stack.enqueue({"module_id": module_id, "difficulty": "wizard"}, message_id="bad-difficulty")
    stack.enqueue("{not json", message_id="not-json")
    stack.enqueue({"module_id": str(uuid.uuid4())}, message_id="unknown-module")


    letters = wait_until(
        lambda: (found := {d["message_id"]: d for d in stack.dead_letters()}) and len(found) >= 3 and found,
        timeout=120, what="three dead letters",
    )
    assert "difficulty" in letters["bad-difficulty"]["error"]
    assert "not JSON" in letters["not-json"]["error"]
    assert "unknown module" in letters["unknown-module"]["error"]
    assert all(d["reason"] == "MaxDeliveryCountExceeded" for d in letters.values())
    state = stack.generation(module_id)
    assert state["status"] == "failed"
    assert "difficulty" in state["error"]


def test_status_api_404_for_an_unknown_module_and_400_for_a_bad_id(stack: Stack) -> None:
    assert stack.api("GET", str(uuid.uuid4())).status == 404
    assert stack.api("GET", "not-a-uuid").status == 400
    assert stack.api("POST", str(uuid.uuid4()), {}).status == 404


def test_post_starts_and_a_second_post_joins_the_running_run(stack: Stack) -> None:
    module_id = stack.create_module("PostgreSQL indexing")
    first = stack.api("POST", module_id, {"difficulty": "advanced"})
    second = stack.api("POST", module_id, {})
    assert first.status == 202, first.body
    assert second.status == 202, second.body
    assert first.json()["instance_id"] == second.json()["instance_id"] == f"module-{module_id}"
    assert "runtime/webhooks" not in first.body.decode()
    state = stack.wait_for_module(module_id, "completed", "failed")
    assert state["status"] == "completed", state
    runs = stack.sql("SELECT run_id FROM lo_generation_runs WHERE module_id = $1", uuid.UUID(module_id))
    assert len(runs) == 1


