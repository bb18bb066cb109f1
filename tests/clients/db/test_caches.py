from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from clients.db import PgLessonCache, PgResearchCache

ITEMS = [
    {
        "source": "github",
        "title": "asyncio tips",
        "url": "https://github.com/a/b",
        "score": 0.9,
        "tags": ["py"],
    },
    {
        "source": "github",
        "title": "trio vs asyncio",
        "url": "https://github.com/c/d",
        "score": 0.4,
        "tags": [],
    },
]


class ManualClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_research_cache_hit_then_expiry_then_refresh(pool: asyncpg.Pool) -> None:
    clock = ManualClock()
    cache = PgResearchCache(pool, ttl_hours=24, clock=clock)
    assert await cache.get("github", "python asyncio") is None

    await cache.put("github", "python asyncio", ITEMS)
    assert await cache.get("github", "python asyncio") == ITEMS
    assert await cache.get("devto", "python asyncio") is None  # keyed by source too

    clock.now += timedelta(hours=23, minutes=59)
    assert await cache.get("github", "python asyncio") == ITEMS
    clock.now += timedelta(minutes=2)
    assert await cache.get("github", "python asyncio") is None  # expired: a miss

    await cache.put("github", "python asyncio", ITEMS[:1])  # refreshed by the next fetch
    assert await cache.get("github", "python asyncio") == ITEMS[:1]
    assert (
        await pool.fetchval("SELECT count(*) FROM lo_research_cache WHERE query_key = 'python asyncio'") == 1
    )


async def test_research_cache_purges_only_expired_rows(pool: asyncpg.Pool) -> None:
    clock = ManualClock()
    cache = PgResearchCache(pool, ttl_hours=1, clock=clock)
    await cache.put("docs", "old query", [])
    clock.now += timedelta(hours=2)
    await cache.put("docs", "new query", ITEMS)
    assert await cache.purge_expired() == 1
    assert await cache.get("docs", "new query") == ITEMS
    assert await cache.get("docs", "old query") is None


async def test_empty_result_is_cached_as_an_empty_list_not_a_miss(pool: asyncpg.Pool) -> None:
    cache = PgResearchCache(pool, ttl_hours=1)
    await cache.put("youtube", "nothing matches", [])
    assert await cache.get("youtube", "nothing matches") == []


async def test_lesson_cache_counts_hits(pool: asyncpg.Pool) -> None:
    cache = PgLessonCache(pool)
    lesson = {"title": "Event loops", "content": "# Event loops\n...", "sources": [1, 2]}
    assert await cache.get("k1") is None
    assert await cache.hits("k1") is None

    await cache.put("k1", lesson, meta={"provider": "groq", "model": "llama-3.3-70b-versatile"})
    assert await cache.hits("k1") == 0
    await asyncio.gather(*(cache.get("k1") for _ in range(5)))
    assert await cache.get("k1") == lesson
    assert await cache.hits("k1") == 6
    meta = await pool.fetchval("SELECT meta FROM lo_lesson_cache WHERE key = 'k1'")
    assert meta == {"provider": "groq", "model": "llama-3.3-70b-versatile"}


async def test_lesson_cache_put_replaces(pool: asyncpg.Pool) -> None:
    cache = PgLessonCache(pool)
    await cache.put("k2", {"title": "v1"})
    await cache.put("k2", {"title": "v2"})
    assert await cache.get("k2") == {"title": "v2"}


async def test_lesson_cache_meta_taken_from_the_chain_value(pool: asyncpg.Pool) -> None:
    cache = PgLessonCache(pool)
    value = {"lesson": {"title": "t"}, "meta": {"provider": "gemini", "tokens_out": 900}}
    await cache.put("k3", value)
    assert await cache.get("k3") == value
    assert await pool.fetchval("SELECT meta FROM lo_lesson_cache WHERE key = 'k3'") == value["meta"]
