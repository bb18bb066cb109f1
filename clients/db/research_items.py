"""Research items found for one run of a module: written per source, read back for lesson prompts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from clients.db.runs import RunRef


@dataclass(frozen=True)
class StoredResearchItem:
    source: str
    title: str
    url: str
    summary: str
    score: float
    published_at: datetime | None
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "url": self.url,
            "summary": self.summary,
            "score": self.score,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "tags": list(self.tags),
        }


def _timestamp(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"published_at {value!r} is not an ISO 8601 timestamp") from None
    else:
        raise ValueError(f"published_at must be a timestamp, got {type(value).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row(item: Mapping[str, Any]) -> tuple[Any, ...]:
    title, url = str(item.get("title") or "").strip(), str(item.get("url") or "").strip()
    if not title or not url:
        raise ValueError(f"a research item needs a title and a url, got {dict(item)!r:.200}")
    tags = item.get("tags") or ()
    return (
        title,
        url,
        str(item.get("summary") or ""),
        float(item.get("score") or 0.0),
        _timestamp(item.get("published_at")),
        [str(tag) for tag in tags],
    )


async def replace_research_items(
    pool: asyncpg.Pool, run: RunRef, source: str, items: Sequence[Mapping[str, Any]]
) -> int:
    """Store `source`'s items for the run, replacing what an earlier attempt stored; returns the count."""
    rows = [_row(item) for item in items]  # validate everything before touching the table
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM lo_research_items WHERE run_id = $1 AND source = $2", uuid.UUID(run.run_id), source
        )
        await conn.executemany(
            """INSERT INTO lo_research_items
                   (run_id, module_id, source, position, title, url, summary, score, published_at, tags)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            [
                (uuid.UUID(run.run_id), uuid.UUID(run.module_id), source, position, *row)
                for position, row in enumerate(rows)
            ],
        )
    return len(rows)


async def list_research_items(pool: asyncpg.Pool, run_id: str) -> list[StoredResearchItem]:
    """The run's items, best first."""
    rows = await pool.fetch(
        """SELECT source, title, url, summary, score, published_at, tags FROM lo_research_items
           WHERE run_id = $1 ORDER BY score DESC, source, position""",
        uuid.UUID(run_id),
    )
    return [
        StoredResearchItem(
            source=row["source"],
            title=row["title"],
            url=row["url"],
            summary=row["summary"],
            score=row["score"],
            published_at=row["published_at"],
            tags=tuple(row["tags"]),
        )
        for row in rows
    ]
