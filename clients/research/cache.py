"""The research cache contract (PostgreSQL implementation lives in clients/db) and an in-memory one."""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

# Trailing + and # survive: they are part of names like c++ and c#.
_PUNCTUATION_EDGES = re.compile(r"^[\W_]+|[^\w+#]+$")


def normalize_query(topic: str) -> str:
    """The cache key of a topic: lower-cased, whitespace collapsed, punctuation trimmed at the edges.

    Inner punctuation stays: "c++" and "node.js" are different topics from "c" and "node js".
    """
    trimmed = (_PUNCTUATION_EDGES.sub("", word) for word in topic.lower().split())
    return " ".join(word for word in trimmed if word)


@runtime_checkable
class ResearchCache(Protocol):
    async def get(self, source: str, query_key: str) -> list[dict] | None: ...

    async def put(self, source: str, query_key: str, items: list[dict]) -> None: ...


class InMemoryResearchCache:
    """Process-local cache without expiry, for tests and the CLI."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list[dict]] = {}

    async def get(self, source: str, query_key: str) -> list[dict] | None:
        items = self.entries.get((source, query_key))
        return None if items is None else [dict(item) for item in items]

    async def put(self, source: str, query_key: str, items: list[dict]) -> None:
        self.entries[(source, query_key)] = [dict(item) for item in items]
