"""Per-provider concurrency limits, shared by every chain in the process (one set per event loop).

asyncio primitives belong to one event loop; tests run many loops, production runs one. The counters make
the limit observable (max in flight, callers waiting) without poking at asyncio internals.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ConcurrencyLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self.in_use = 0
        self.waiting = 0
        self.max_in_use = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.in_use += 1
        self.max_in_use = max(self.max_in_use, self.in_use)
        try:
            yield
        finally:
            self.in_use -= 1
            self._semaphore.release()


_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], ConcurrencyLimit]] = (
    weakref.WeakKeyDictionary()
)


def limit_for(provider: str, limit: int) -> ConcurrencyLimit:
    """The running loop's limit for `provider` (one per distinct configured limit value)."""
    per_loop = _limits.setdefault(asyncio.get_running_loop(), {})
    key = (provider, limit)
    if key not in per_loop:
        per_loop[key] = ConcurrencyLimit(limit)
    return per_loop[key]
