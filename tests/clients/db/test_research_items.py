from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from clients.db import list_research_items, replace_research_items, request_generation
from tests.clients.db.conftest import new_module


def item(title: str, score: float, **extra: object) -> dict[str, object]:
    return {"title": title, "url": f"https://example.org/{title}", "summary": "s", "score": score, **extra}


async def test_items_replaced_per_source_and_listed_best_first(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = (await request_generation(pool, module_id, "r", instance_id="i")).run
    await replace_research_items(pool, run, "github", [item("a", 0.2), item("b", 0.9, tags=["py"])])
    await replace_research_items(pool, run, "devto", [item("c", 0.5, published_at="2026-03-01T10:00:00Z")])
    # A retried activity stores github again: replaced, not duplicated.
    assert await replace_research_items(pool, run, "github", [item("a2", 0.3)]) == 1

    items = await list_research_items(pool, run.run_id)
    assert [(i.source, i.title) for i in items] == [("devto", "c"), ("github", "a2")]
    assert items[0].published_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert items[0].to_dict()["published_at"] == "2026-03-01T10:00:00+00:00"


async def test_invalid_item_rejected_and_nothing_replaced(pool: asyncpg.Pool) -> None:
    module_id = await new_module(pool)
    run = (await request_generation(pool, module_id, "r", instance_id="i")).run
    await replace_research_items(pool, run, "docs", [item("keep", 0.5)])
    with pytest.raises(ValueError, match="published_at"):
        await replace_research_items(pool, run, "docs", [item("x", 1, published_at="yesterday")])
    with pytest.raises(ValueError, match="title and a url"):
        await replace_research_items(pool, run, "docs", [{"title": "no url"}])
    assert [i.title for i in await list_research_items(pool, run.run_id)] == ["keep"]
