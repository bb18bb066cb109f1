from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from clients.db import (
    RunKey,
    fail_run,
    get_research_items,
    list_research_items,
    replace_research_items,
    request_generation,
)
from tests.clients.db.conftest import new_module


def item(title: str, score: float, **extra: object) -> dict[str, object]:
    return {"title": title, "url": f"https://example.org/{title}", "summary": "s", "score": score, **extra}


async def new_run(pool: asyncpg.Pool) -> RunKey:
    module_id = await new_module(pool)
    return (await request_generation(pool, module_id, "r", instance_id="i")).run.key


async def test_items_replaced_per_source_and_read_back_by_id(pool: asyncpg.Pool) -> None:
    run = await new_run(pool)
    first = await replace_research_items(pool, run, "github", [item("a", 0.2), item("b", 0.9, tags=["py"])])
    devto = await replace_research_items(
        pool, run, "devto", [item("c", 0.5, published_at="2026-03-01T10:00:00Z")]
    )
    # A retried activity stores github again: replaced, not duplicated.
    again = await replace_research_items(pool, run, "github", [item("a2", 0.3)])
    assert first is not None and devto is not None and again is not None
    assert len(first) == 2 and len(again) == 1 and not set(first) & set(again)

    items = await list_research_items(pool, run.run_id)
    assert [(i.source, i.title) for i in items] == [("devto", "c"), ("github", "a2")]
    assert items[0].published_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert items[0].to_dict()["published_at"] == "2026-03-01T10:00:00Z"

    by_id = await get_research_items(pool, run.run_id, [*again, *devto, *first])  # stale ids left out
    assert [i.title for i in by_id] == ["a2", "c"]
    other = await new_run(pool)
    assert await get_research_items(pool, other.run_id, again) == []


async def test_invalid_item_rejected_and_nothing_replaced(pool: asyncpg.Pool) -> None:
    run = await new_run(pool)
    await replace_research_items(pool, run, "docs", [item("keep", 0.5)])
    with pytest.raises(ValueError, match="published_at"):
        await replace_research_items(pool, run, "docs", [item("x", 1, published_at="yesterday")])
    with pytest.raises(ValueError, match="title and a url"):
        await replace_research_items(pool, run, "docs", [{"title": "no url"}])
    assert [i.title for i in await list_research_items(pool, run.run_id)] == ["keep"]


async def test_a_run_that_ended_stores_no_items(pool: asyncpg.Pool) -> None:
    run = await new_run(pool)
    await fail_run(pool, run, "deadline")
    assert await replace_research_items(pool, run, "docs", [item("late", 0.5)]) is None
    assert await list_research_items(pool, run.run_id) == []
