"""Research items found for one run of a module: written per source, read back by id for prompts.

Activities pass item ids, never the items (activity inputs and outputs stay small).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from clients.db.runs import AnyRun, lock_active_run


@dataclass(frozen=True)
class StoredResearchItem:
    id: int
    source: str
    title: str
    url: str
    summary: str
    score: float
    published_at: datetime | None
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The research clients' item shape (ResearchItem.from_dict reads it)."""
        return {
            "source": self.source,
            "title": self.title,
            "url": self.url,
            "summary": self.summary,
            "score": self.score,
            "published_at": self.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.published_at
            else None,
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
    pool: asyncpg.Pool, run: AnyRun, source: str, items: Sequence[Mapping[str, Any]]
) -> list[int] | None:
    """Store `source`'s items for the run, replacing what an earlier attempt stored; returns their ids
    in input order, or None when the run is no longer the module's current, active run (nothing written)."""
    rows = [_row(item) for item in items]  # validate everything before touching the table
    async with pool.acquire() as conn, conn.transaction():
        if not await lock_active_run(conn, run):
            return None
        run_key, module_key = uuid.UUID(run.run_id), uuid.UUID(run.module_id)
        await conn.execute("DELETE FROM lo_research_items WHERE run_id = $1 AND source = $2", run_key, source)
        ids = []
        for position, row in enumerate(rows):
            ids.append(
                await conn.fetchval(
                    """INSERT INTO lo_research_items (run_id, module_id, source, position,
                           title, url, summary, score, published_at, tags)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
                    run_key,
                    module_key,
                    source,
                    position,
                    *row,
                )
            )
    return ids


_SELECT = "SELECT id, source, title, url, summary, score, published_at, tags FROM lo_research_items"


def _item(row: asyncpg.Record) -> StoredResearchItem:
    return StoredResearchItem(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        url=row["url"],
        summary=row["summary"],
        score=row["score"],
        published_at=row["published_at"],
        tags=tuple(row["tags"]),
    )


async def list_research_items(pool: asyncpg.Pool, run_id: str) -> list[StoredResearchItem]:
    """The run's items, best source score first."""
    rows = await pool.fetch(
        f"{_SELECT} WHERE run_id = $1 ORDER BY score DESC, source, position", uuid.UUID(run_id)
    )
    return [_item(row) for row in rows]


async def get_research_items(pool: asyncpg.Pool, run_id: str, ids: Sequence[int]) -> list[StoredResearchItem]:
    """Items of this run by id, in the order of `ids`; ids of other runs or deleted rows are left out."""
    rows = await pool.fetch(
        f"{_SELECT} WHERE run_id = $1 AND id = ANY($2::bigint[])", uuid.UUID(run_id), list(ids)
    )
    by_id = {row["id"]: _item(row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]
