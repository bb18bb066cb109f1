"""Run plans and lesson drafts: first write wins, fenced, completed from drafts in one transaction."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from clients.db import (
    LessonRow,
    MissingLessonDrafts,
    RunKey,
    WriteResult,
    complete_run_from_drafts,
    load_lesson_drafts,
    load_plan,
    mark_in_progress,
    request_generation,
    save_lesson_draft,
    save_plan,
)
from tests.clients.db.conftest import module_status, new_module


def draft(number: int, text: str = "v1") -> LessonRow:
    return LessonRow(
        number, f"Lesson {number} {text}", f"# {text}", [f"https://s/{number}"], {"provider": "groq"}
    )


async def started_run(pool: asyncpg.Pool) -> RunKey:
    module_id = await new_module(pool)
    run = (await request_generation(pool, module_id, "r", instance_id="i")).run.key
    await mark_in_progress(pool, run)
    return run


async def test_first_plan_wins_for_concurrent_duplicate_activities(pool: asyncpg.Pool) -> None:
    run = await started_run(pool)
    plans = [{"lessons": [{"number": n} for n in range(1, k + 1)]} for k in (3, 4, 5)]
    stored = await asyncio.gather(*(save_plan(pool, run, plan) for plan in plans))
    assert stored[0] == stored[1] == stored[2] and stored[0] in plans
    assert await load_plan(pool, run.run_id) == stored[0]
    assert await load_plan(pool, str(uuid.uuid4())) is None


async def test_drafts_first_write_wins_and_complete_reads_them(pool: asyncpg.Pool) -> None:
    run = await started_run(pool)
    assert await save_lesson_draft(pool, run, draft(1)) is WriteResult.APPLIED
    assert await save_lesson_draft(pool, run, draft(1, "retry")) is WriteResult.ALREADY_DONE
    await save_lesson_draft(pool, run, draft(2))
    await save_lesson_draft(pool, run, draft(3))
    assert [d.title for d in await load_lesson_drafts(pool, run.run_id, [1, 3])] == [
        "Lesson 1 v1",
        "Lesson 3 v1",
    ]

    assert await complete_run_from_drafts(pool, run, [1, 2, 3]) is WriteResult.APPLIED
    assert await complete_run_from_drafts(pool, run, [1, 2, 3]) is WriteResult.ALREADY_DONE
    rows = await pool.fetch(
        "SELECT lesson_number, title FROM lessons_lessoncontent WHERE module_id = $1 ORDER BY 1",
        uuid.UUID(run.module_id),
    )
    assert [(r["lesson_number"], r["title"]) for r in rows] == [(n, f"Lesson {n} v1") for n in (1, 2, 3)]


async def test_missing_draft_fails_the_completion_and_writes_nothing(pool: asyncpg.Pool) -> None:
    run = await started_run(pool)
    await save_lesson_draft(pool, run, draft(1))
    with pytest.raises(MissingLessonDrafts) as caught:
        await complete_run_from_drafts(pool, run, [1, 2, 3])
    assert caught.value.numbers == [2, 3]
    assert (await module_status(pool, run.module_id))["generation_status"] == "in_progress"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM lessons_lessoncontent WHERE module_id = $1", uuid.UUID(run.module_id)
        )
        == 0
    )


async def test_superseded_run_cannot_store_plan_or_drafts(pool: asyncpg.Pool) -> None:
    run = await started_run(pool)
    await pool.execute(
        "UPDATE lessons_module SET generation_status = 'failed' WHERE id = $1", uuid.UUID(run.module_id)
    )
    await request_generation(pool, run.module_id, "newer", instance_id="i")
    assert await save_plan(pool, run, {"lessons": []}) is None
    assert await save_lesson_draft(pool, run, draft(1)) is WriteResult.FENCED
    assert await complete_run_from_drafts(pool, run, [1]) is WriteResult.FENCED
    assert await load_lesson_drafts(pool, run.run_id) == []


async def test_forged_or_malformed_run_key_is_fenced(pool: asyncpg.Pool) -> None:
    run = await started_run(pool)
    assert (
        await save_lesson_draft(pool, RunKey(run.module_id, str(uuid.uuid4())), draft(1))
        is WriteResult.FENCED
    )
    assert await save_lesson_draft(pool, RunKey("nope", "nope"), draft(1)) is WriteResult.FENCED
    with pytest.raises(ValueError):
        await save_lesson_draft(pool, run, LessonRow(0, "t", "c", [], {}))
