"""PostgreSQL-backed lesson cache (the AI clients' `LessonCache` protocol), counting hits."""

from __future__ import annotations

from typing import Any

import asyncpg


class PgLessonCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, key: str) -> dict[str, Any] | None:
        # One statement reads and counts the hit, so concurrent readers never lose a count.
        lesson = await self._pool.fetchval(
            """UPDATE lo_lesson_cache SET hits = hits + 1, last_hit_at = now()
               WHERE key = $1 RETURNING lesson""",
            key,
        )
        return dict(lesson) if lesson is not None else None

    async def put(self, key: str, value: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Store (or replace) a lesson; `meta` is free-form provenance (provider, model, tokens), taken
        from value["meta"] when not given (the AI chain stores {"lesson": ..., "meta": ...})."""
        if meta is None and isinstance(value.get("meta"), dict):
            meta = value["meta"]
        await self._pool.execute(
            """INSERT INTO lo_lesson_cache (key, lesson, meta) VALUES ($1, $2, $3)
               ON CONFLICT (key) DO UPDATE SET lesson = EXCLUDED.lesson, meta = EXCLUDED.meta,
                   created_at = now()""",
            key,
            dict(value),
            dict(meta or {}),
        )

    async def hits(self, key: str) -> int | None:
        """How often `key` was served; None when it is not cached."""
        return await self._pool.fetchval("SELECT hits FROM lo_lesson_cache WHERE key = $1", key)
