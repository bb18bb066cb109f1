"""The lesson cache seen by the AI chain: a key (domain.prompts.lesson_cache_key) → a stored lesson dict.

PostgreSQL implements it in clients/db (PgLessonCache); the in-memory one serves tests and local tools.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol


class LessonCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any]) -> None: ...


class InMemoryLessonCache:
    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.puts = 0

    async def get(self, key: str) -> dict[str, Any] | None:
        self.gets += 1
        value = self._entries.get(key)
        return copy.deepcopy(value) if value is not None else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self.puts += 1
        self._entries[key] = copy.deepcopy(value)

    def __len__(self) -> int:
        return len(self._entries)
