"""Shared plumbing for commands that read PostgreSQL: settings, one pool, clean errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from clients.db import DatabaseUnavailable, close_pools, get_pool
from domain.settings import SettingsError
from lessonctl.context import CommandContext

T = TypeVar("T")


def with_database(ctx: CommandContext, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T | int:
    """Run `work` with a pool; on failure print one error line and return exit code 1."""
    try:
        settings = ctx.settings()
    except SettingsError as error:
        return ctx.settings_failed(error)
    assert settings.database_url is not None
    dsn = settings.database_url

    async def run() -> T:
        try:
            return await work(await get_pool(dsn))
        finally:
            await close_pools()

    try:
        return asyncio.run(run())
    except DatabaseUnavailable as error:
        ctx.warn(f"error: {error}")
    except asyncpg.UndefinedTableError as error:
        ctx.warn(f"error: {error}; run `python -m lessonctl migrate` first")
    except (asyncpg.PostgresError, OSError) as error:
        ctx.warn(f"error: database query failed: {type(error).__name__}: {error}")
    return 1
