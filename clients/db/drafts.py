"""What a run produces between activities: its lesson plan and one draft per lesson.

Activities may run more than once, even concurrently (at-least-once delivery): the first plan and the
first draft of each lesson win, and every later attempt gets the stored one back, so the lessons that
complete_run_from_drafts writes always match the plan the orchestration saw.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from clients.db.runs import AnyRun, LessonRow, WriteResult, complete_run_with, lock_active_run


class MissingLessonDrafts(LookupError):
    def __init__(self, numbers: Sequence[int]) -> None:
        super().__init__(f"no stored draft for lesson(s) {', '.join(map(str, numbers))}")
        self.numbers = list(numbers)


async def save_plan(pool: asyncpg.Pool, run: AnyRun, plan: Mapping[str, Any]) -> dict[str, Any] | None:
    """Store the run's plan unless one is stored; returns the stored plan (None: fenced, nothing stored)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await lock_active_run(conn, run):
            return None
        await conn.execute(
            "INSERT INTO lo_run_plans (run_id, plan) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING",
            uuid.UUID(run.run_id),
            dict(plan),
        )
        return dict(
            await conn.fetchval("SELECT plan FROM lo_run_plans WHERE run_id = $1", uuid.UUID(run.run_id))
        )


async def load_plan(pool: asyncpg.Pool, run_id: str) -> dict[str, Any] | None:
    plan = await pool.fetchval("SELECT plan FROM lo_run_plans WHERE run_id = $1", uuid.UUID(run_id))
    return dict(plan) if plan is not None else None


async def save_lesson_draft(pool: asyncpg.Pool, run: AnyRun, lesson: LessonRow) -> WriteResult:
    """APPLIED when stored now, ALREADY_DONE when this lesson already has a draft, FENCED otherwise."""
    if lesson.lesson_number < 1 or not lesson.title.strip() or not lesson.content.strip():
        raise ValueError(f"lesson {lesson.lesson_number} needs a number >= 1, a title and content")
    async with pool.acquire() as conn, conn.transaction():
        if not await lock_active_run(conn, run):
            return WriteResult.FENCED
        status = await conn.execute(
            """INSERT INTO lo_lesson_drafts
                   (run_id, lesson_number, title, content, source_attribution, generation_metadata)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, lesson_number) DO NOTHING""",
            uuid.UUID(run.run_id),
            lesson.lesson_number,
            lesson.title,
            lesson.content,
            lesson.source_attribution,
            lesson.generation_metadata,
        )
    return WriteResult.APPLIED if status == "INSERT 0 1" else WriteResult.ALREADY_DONE


async def _drafts(conn: asyncpg.Connection, run_id: str, numbers: Sequence[int] | None) -> list[LessonRow]:
    rows = await conn.fetch(
        """SELECT lesson_number, title, content, source_attribution, generation_metadata
           FROM lo_lesson_drafts WHERE run_id = $1 AND ($2::int[] IS NULL OR lesson_number = ANY($2::int[]))
           ORDER BY lesson_number""",
        uuid.UUID(run_id),
        None if numbers is None else list(numbers),
    )
    return [
        LessonRow(
            lesson_number=row["lesson_number"],
            title=row["title"],
            content=row["content"],
            source_attribution=row["source_attribution"],
            generation_metadata=row["generation_metadata"],
        )
        for row in rows
    ]


async def load_lesson_drafts(
    pool: asyncpg.Pool, run_id: str, numbers: Sequence[int] | None = None
) -> list[LessonRow]:
    async with pool.acquire() as conn:
        return await _drafts(conn, run_id, numbers)


async def complete_run_from_drafts(pool: asyncpg.Pool, run: AnyRun, numbers: Sequence[int]) -> WriteResult:
    """complete_run with the run's drafts of `numbers`, read in the same transaction.

    Raises MissingLessonDrafts (nothing written) when a lesson of the plan has no draft."""
    wanted = sorted(set(numbers))
    if not wanted:
        raise ValueError("complete_run_from_drafts needs at least one lesson number")

    async def drafts(conn: asyncpg.Connection) -> list[LessonRow]:
        found = await _drafts(conn, run.run_id, wanted)
        missing = sorted(set(wanted) - {lesson.lesson_number for lesson in found})
        if missing:
            raise MissingLessonDrafts(missing)
        return found

    return await complete_run_with(pool, run, drafts)
