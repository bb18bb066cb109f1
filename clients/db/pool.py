"""One asyncpg pool per process, per DSN and per event loop, created on first use.

asyncpg connections belong to the loop that opened them; the Functions worker runs async functions on
one loop, while tests and the CLI start loops of their own, hence the per-loop registry. Pools stay
small: a Function App instance runs few activities at once and PostgreSQL connections are scarce.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass

import asyncpg

from domain.settings import describe_dsn

APPLICATION_NAME = "lesson-orchestrator"


class DatabaseUnavailable(ConnectionError):
    """PostgreSQL could not be reached or refused the login; the message names host/database only."""


@dataclass(frozen=True)
class PoolOptions:
    min_size: int = 1
    max_size: int = 5
    connect_timeout_s: float = 10.0
    # Server-side cap per statement: a stuck query must not hold a module row lock for long.
    statement_timeout_ms: int = 30_000
    lock_timeout_ms: int = 10_000
    # Idle connections are recycled before Azure's load balancer silently drops them (~4 min).
    max_inactive_connection_lifetime_s: float = 120.0


DEFAULT_POOL_OPTIONS = PoolOptions()

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncpg.Pool]] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python objects."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def server_settings(options: PoolOptions) -> dict[str, str]:
    return {
        "application_name": APPLICATION_NAME,
        "statement_timeout": str(options.statement_timeout_ms),
        "lock_timeout": str(options.lock_timeout_ms),
    }


async def get_pool(dsn: str, options: PoolOptions = DEFAULT_POOL_OPTIONS) -> asyncpg.Pool:
    """The pool for `dsn` on the running loop, created on first call; raises DatabaseUnavailable."""
    loop = asyncio.get_running_loop()
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:  # concurrent first calls must not open two pools
        pools = _pools.setdefault(loop, {})
        pool = pools.get(dsn)
        if pool is not None and not pool.is_closing():
            return pool
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=options.min_size,
                max_size=options.max_size,
                timeout=options.connect_timeout_s,
                max_inactive_connection_lifetime=options.max_inactive_connection_lifetime_s,
                server_settings=server_settings(options),
                init=init_connection,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(connect_error_message(dsn, exc)) from None
        pools[dsn] = pool
        return pool


async def connect(dsn: str, options: PoolOptions = DEFAULT_POOL_OPTIONS) -> asyncpg.Connection:
    """A single connection (for one-off commands such as migrate); raises DatabaseUnavailable."""
    try:
        conn = await asyncpg.connect(
            dsn, timeout=options.connect_timeout_s, server_settings=server_settings(options)
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(connect_error_message(dsn, exc)) from None
    await init_connection(conn)
    return conn


def connect_error_message(dsn: str, exc: BaseException) -> str:
    detail = str(exc).strip() or type(exc).__name__
    # asyncpg never includes the password in its errors, but a DSN parse error could echo the DSN.
    if dsn in detail:
        detail = type(exc).__name__
    return f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {detail}"


async def close_pools() -> None:
    """Close every pool opened on the running loop (at shutdown, and between tests)."""
    loop = asyncio.get_running_loop()
    pools = _pools.pop(loop, {})
    await asyncio.gather(*(pool.close() for pool in pools.values()), return_exceptions=True)
