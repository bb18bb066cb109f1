"""Read-only module listings for the operator CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class ModuleSummary:
    id: str
    title: str
    generation_status: str
    generation_error: str | None
    generation_completed_at: datetime | None


async def list_modules_by_status(pool: asyncpg.Pool, status: str, *, limit: int = 100) -> list[ModuleSummary]:
    """Modules in `status`, most recently finished first."""
    rows = await pool.fetch(
        """SELECT id, title, generation_status, generation_error, generation_completed_at
           FROM lessons_module WHERE generation_status = $1
           ORDER BY generation_completed_at DESC NULLS LAST, id LIMIT $2""",
        status,
        limit,
    )
    return [
        ModuleSummary(
            id=str(row["id"]),
            title=row["title"] or "",
            generation_status=row["generation_status"],
            generation_error=row["generation_error"],
            generation_completed_at=row["generation_completed_at"],
        )
        for row in rows
    ]
