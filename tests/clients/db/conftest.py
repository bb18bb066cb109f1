"""Fixtures for the PostgreSQL client tests: a migrated database per test module, a pool per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from clients.db import close_pools, get_pool, migrate


@pytest.fixture(scope="module")
def migrated_url(database_url: str) -> str:
    asyncio.run(migrate(database_url))
    return database_url


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    yield await get_pool(migrated_url)
    await close_pools()


async def new_module(pool: asyncpg.Pool, status: str = "not_started", title: str = "Async Python") -> str:
    module_id = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO lessons_module (id, title, generation_status) VALUES ($1, $2, $3)",
        uuid.UUID(module_id),
        title,
        status,
    )
    return module_id


async def module_status(pool: asyncpg.Pool, module_id: str) -> asyncpg.Record:
    return await pool.fetchrow(
        """SELECT generation_status, generation_error, generation_started_at, generation_completed_at
           FROM lessons_module WHERE id = $1""",
        uuid.UUID(module_id),
    )
