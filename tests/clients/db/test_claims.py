"""Single flight on a real PostgreSQL: concurrent misses for one key cost one generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from clients.db import PgLessonCache, close_pools, get_pool, migrate
from clients.db.claims import GenerationClaims, SingleFlightLessonCache

LESSON = {"lesson": {"number": 1, "title": "Event loops"}, "meta": {"provider": "deepseek"}}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url)
    shared = await get_pool(database_url)
    await shared.execute("DELETE FROM lo_generation_claims; DELETE FROM lo_lesson_cache")
    yield shared
    await close_pools()


async def generate_through(cache: SingleFlightLessonCache, key: str, generated: list[str]) -> dict:
    """What the AI chain does: a miss generates (here: instantly, after a little work) and stores."""
    found = await cache.get(key)
    if found is not None:
        return found
    generated.append(key)
    await asyncio.sleep(0.05)
    await cache.put(key, LESSON)
    return LESSON


async def test_concurrent_misses_generate_once_and_the_rest_wait_for_it(pool: asyncpg.Pool) -> None:
    cache = SingleFlightLessonCache(PgLessonCache(pool), GenerationClaims(pool, poll_s=0.01, wait_s=10))
    generated: list[str] = []
    results = await asyncio.gather(*(generate_through(cache, "k1", generated) for _ in range(5)))
    assert generated == ["k1"]
    assert all(result["lesson"] == LESSON["lesson"] for result in results)
    assert await pool.fetchval("SELECT count(*) FROM lo_generation_claims") == 0  # released by put


async def test_a_waiter_gives_up_after_its_wait_and_generates_itself(pool: asyncpg.Pool) -> None:
    claims = GenerationClaims(pool, poll_s=0.01, wait_s=0.05)
    assert await claims.claim("lesson:k2")  # an owner that never finishes
    cache = SingleFlightLessonCache(PgLessonCache(pool), claims)
    assert await cache.get("k2") is None  # waited 0.05 s, then: generate yourself


async def test_a_stale_claim_is_taken_over_and_an_abandoned_one_freed(pool: asyncpg.Pool) -> None:
    claims = GenerationClaims(pool, stale_after_s=3600)
    assert await claims.claim("plan:x")
    assert not await claims.claim("plan:x")
    await pool.execute("UPDATE lo_generation_claims SET claimed_at = now() - interval '2 hours'")
    assert await claims.claim("plan:x")  # the owner crashed long ago
    cache = SingleFlightLessonCache(PgLessonCache(pool), claims)
    assert await claims.claim("lesson:y")
    await cache.abandon("y")
    assert await claims.claim("lesson:y")
