"""Single flight for AI work: the first run to need a plan or lesson generates it, concurrent runs of
the same topic wait for its cache entry instead of paying for the same tokens again.

A claim is a row with a timestamp; a claim older than `stale_after_s` (its owner crashed) can be
taken over, and a waiter gives up after `wait_s` and generates itself, so nothing waits forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from clients.db.lesson_cache import PgLessonCache

T = TypeVar("T")


class GenerationClaims:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        stale_after_s: float = 180.0,
        wait_s: float = 120.0,
        poll_s: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._stale_after_s = stale_after_s
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._sleep = sleep
        self._clock = clock

    async def claim(self, key: str) -> bool:
        """True when this caller now owns `key` (no claim, or only a stale one, existed)."""
        owned = await self._pool.fetchval(
            """INSERT INTO lo_generation_claims (key, claimed_at) VALUES ($1, now())
               ON CONFLICT (key) DO UPDATE SET claimed_at = now()
               WHERE lo_generation_claims.claimed_at < now() - make_interval(secs => $2)
               RETURNING true""",
            key,
            self._stale_after_s,
        )
        return bool(owned)

    async def release(self, key: str) -> None:
        await self._pool.execute("DELETE FROM lo_generation_claims WHERE key = $1", key)

    async def wait_for(self, lookup: Callable[[], Awaitable[T | None]]) -> T | None:
        """Poll `lookup` until it finds the owner's result, or give up (None) after `wait_s`."""
        until = self._clock() + self._wait_s
        while self._clock() < until:
            found = await lookup()
            if found is not None:
                return found
            await self._sleep(self._poll_s)
        return None


class SingleFlightLessonCache:
    """The AI chain's LessonCache: a miss either claims the lesson (the caller generates it) or waits
    for the claimant's entry; `put` stores and releases, `abandon` releases after a failed generation."""

    def __init__(self, cache: PgLessonCache, claims: GenerationClaims) -> None:
        self._cache = cache
        self._claims = claims

    async def get(self, key: str) -> dict[str, Any] | None:
        found = await self._cache.get(key)
        if found is not None or await self._claims.claim(f"lesson:{key}"):
            return found
        return await self._claims.wait_for(lambda: self._cache.get(key))

    async def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            await self._cache.put(key, value)
        finally:
            await self._claims.release(f"lesson:{key}")

    async def abandon(self, key: str) -> None:
        await self._claims.release(f"lesson:{key}")
