"""Print what a run produced: each module's lessons from lessons_lessoncontent, with their sources
and the AI provider, model and tokens that wrote them."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class LessonLine:
    number: int
    title: str
    sources: list[dict[str, Any]]
    meta: dict[str, Any]
    chars: int


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def load_lessons(database_url: str, module_id: str) -> list[LessonLine]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(
                """SELECT lesson_number, title, source_attribution, generation_metadata,
                          length(content) AS chars
                   FROM lessons_lessoncontent WHERE module_id = $1 ORDER BY lesson_number""",
                uuid.UUID(module_id),
            )
        finally:
            await conn.close()

    return [
        LessonLine(
            number=row["lesson_number"],
            title=row["title"],
            sources=list(_json(row["source_attribution"]) or []),
            meta=dict(_json(row["generation_metadata"]) or {}),
            chars=row["chars"],
        )
        for row in asyncio.run(run())
    ]


def format_lessons(lessons: list[LessonLine]) -> list[str]:
    lines: list[str] = []
    for lesson in lessons:
        meta = lesson.meta
        how = (f"{meta.get('provider', '?')}/{meta.get('model', '?')}, "
               f"{meta.get('tokens_in', 0)}+{meta.get('tokens_out', 0)} tokens")
        if meta.get("cache_hit"):
            how += ", from the lesson cache"
        lines.append(f"  {lesson.number}. {lesson.title}  [{how}; {lesson.chars} chars]")
        for source in lesson.sources:
            title = _short(str(source.get("title", "")), 60)
            lines.append(f"       cites {source.get('source', '?'):<13} {title}  {source.get('url')}")
    return lines


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
