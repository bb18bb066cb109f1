"""AI usage: one row per provider call (or lesson-cache hit), and the report `lessonctl usage` prints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from clients.db.prices import PriceTable, estimate_cost


@dataclass(frozen=True)
class AiUsage:
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: int | None = None
    cache_hit: bool = False
    module_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class UsageLine:
    provider: str
    model: str
    calls: int
    cache_hits: int
    tokens_in: int  # tokens billed: cache hits excluded
    tokens_out: int
    avg_latency_ms: float | None
    estimated_cost_usd: float | None  # None: no price known for this model


async def record_ai_usage(pool: asyncpg.Pool, usage: AiUsage) -> None:
    if usage.tokens_in < 0 or usage.tokens_out < 0:
        raise ValueError(f"token counts must not be negative: {usage.tokens_in}, {usage.tokens_out}")
    await pool.execute(
        """INSERT INTO lo_ai_usage
               (run_id, module_id, provider, model, tokens_in, tokens_out, latency_ms, cache_hit)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        uuid.UUID(usage.run_id) if usage.run_id else None,
        uuid.UUID(usage.module_id) if usage.module_id else None,
        usage.provider,
        usage.model,
        usage.tokens_in,
        usage.tokens_out,
        usage.latency_ms,
        usage.cache_hit,
    )


async def usage_report(
    pool: asyncpg.Pool, since: datetime | None = None, prices: PriceTable | None = None
) -> list[UsageLine]:
    """Totals per provider/model since `since` (all time when None), most expensive first."""
    rows = await pool.fetch(
        """SELECT provider, model, count(*) AS calls,
                  count(*) FILTER (WHERE cache_hit) AS cache_hits,
                  coalesce(sum(tokens_in) FILTER (WHERE NOT cache_hit), 0) AS tokens_in,
                  coalesce(sum(tokens_out) FILTER (WHERE NOT cache_hit), 0) AS tokens_out,
                  avg(latency_ms) FILTER (WHERE NOT cache_hit) AS avg_latency_ms
           FROM lo_ai_usage
           WHERE $1::timestamptz IS NULL OR created_at >= $1::timestamptz
           GROUP BY provider, model""",
        since,
    )
    lines = [
        UsageLine(
            provider=row["provider"],
            model=row["model"],
            calls=row["calls"],
            cache_hits=row["cache_hits"],
            tokens_in=int(row["tokens_in"]),
            tokens_out=int(row["tokens_out"]),
            avg_latency_ms=float(row["avg_latency_ms"]) if row["avg_latency_ms"] is not None else None,
            estimated_cost_usd=estimate_cost(
                row["provider"], row["model"], int(row["tokens_in"]), int(row["tokens_out"]), prices
            ),
        )
        for row in rows
    ]
    return sorted(lines, key=lambda line: (-(line.estimated_cost_usd or 0.0), line.provider, line.model))
