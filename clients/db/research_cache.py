"""PostgreSQL-backed research cache (the research clients' `ResearchCache` protocol)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg


def utc_now() -> datetime:
    return datetime.now(UTC)


class PgResearchCache:
    """Items per (source, normalized query), valid for `ttl_hours`; expired rows read as misses and are
    overwritten by the next put. The clock is injectable so expiry can be tested without waiting."""

    def __init__(self, pool: asyncpg.Pool, ttl_hours: float, clock: Callable[[], datetime] = utc_now) -> None:
        if ttl_hours <= 0:
            raise ValueError(f"ttl_hours must be positive, got {ttl_hours}")
        self._pool = pool
        self._ttl = timedelta(hours=ttl_hours)
        self._clock = clock

    async def get(self, source: str, query_key: str) -> list[dict[str, Any]] | None:
        items = await self._pool.fetchval(
            """SELECT items FROM lo_research_cache
               WHERE source = $1 AND query_key = $2 AND fetched_at > $3""",
            source,
            query_key,
            self._clock() - self._ttl,
        )
        return list(items) if items is not None else None

    async def put(self, source: str, query_key: str, items: list[dict[str, Any]]) -> None:
        await self._pool.execute(
            """INSERT INTO lo_research_cache (source, query_key, items, fetched_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (source, query_key)
               DO UPDATE SET items = EXCLUDED.items, fetched_at = EXCLUDED.fetched_at""",
            source,
            query_key,
            list(items),
            self._clock(),
        )

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        status = await self._pool.execute(
            "DELETE FROM lo_research_cache WHERE fetched_at <= $1", self._clock() - self._ttl
        )
        return int(status.split()[-1])
