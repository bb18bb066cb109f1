import asyncpg

from clients.db import close_pools, get_pool, migrate
from clients.db.plan_cache import PgPlanCache

PLAN = {"lessons": [{"number": 1, "title": "Event loops"}]}


async def test_first_plan_wins_and_hits_are_counted(database_url: str) -> None:
    await migrate(database_url)
    cache = PgPlanCache(await get_pool(database_url))
    try:
        assert await cache.get("k") is None
        stored = await cache.put("k", PLAN, {"provider": "deepseek"})
        assert stored == {"plan": PLAN, "meta": {"provider": "deepseek"}}
        # A later (concurrent) run's plan loses and gets the winner back.
        assert (await cache.put("k", {"lessons": []}, {"provider": "groq"}))["plan"] == PLAN
        assert await cache.get("k") == {"plan": PLAN, "meta": {"provider": "deepseek"}}
        await cache.get("k")
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT hits FROM lo_plan_cache WHERE key = 'k'") == 2
        finally:
            await conn.close()
    finally:
        await close_pools()
