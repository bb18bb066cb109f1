"""PostgreSQL cache of lesson plans by module topic, counting hits (see domain.prompts.plan_cache_key)."""

from __future__ import annotations

from typing import Any

import asyncpg


class PgPlanCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, key: str) -> dict[str, Any] | None:
        """The cached {"plan": ..., "meta": ...}, counting the hit in the same statement."""
        row = await self._pool.fetchrow(
            """UPDATE lo_plan_cache SET hits = hits + 1, last_hit_at = now()
               WHERE key = $1 RETURNING plan, meta""",
            key,
        )
        return None if row is None else {"plan": dict(row["plan"]), "meta": dict(row["meta"])}

    async def put(self, key: str, plan: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        """Store unless a plan is cached already; returns the cached plan and its meta.

        First plan wins, and the caller uses the winner: concurrent runs of one topic then share a plan,
        hence lesson cache keys, even when their providers answered differently.
        """
        await self._pool.execute(
            "INSERT INTO lo_plan_cache (key, plan, meta) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            key,
            dict(plan),
            dict(meta),
        )
        row = await self._pool.fetchrow("SELECT plan, meta FROM lo_plan_cache WHERE key = $1", key)
        return {"plan": dict(row["plan"]), "meta": dict(row["meta"])}
