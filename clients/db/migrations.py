"""Apply the versioned schema: all pending migrations in one transaction under an advisory lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from clients.db.pool import connect
from clients.db.schema import (
    CREATE_MIGRATIONS_TABLE,
    LATEST_VERSION,
    LESSON_TABLE,
    MIGRATION_LOCK_KEY,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    WEB_APP_TABLES,
    Migration,
)


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[str, ...] = ()  # "0001 generation runs, ..." for each migration applied now
    created_tables: tuple[str, ...] = ()  # web-app tables created because they were absent
    existing_tables: tuple[str, ...] = ()  # web-app tables left exactly as they were
    missing_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # NOT NULL columns without a default that this app does not write: inserts would fail.
    unfillable_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    schema_version: int = 0

    @property
    def web_tables_usable(self) -> bool:
        return not self.missing_columns and not self.unfillable_columns


@dataclass(frozen=True)
class SchemaState:
    version: int
    latest: int
    missing_tables: tuple[str, ...]
    missing_columns: Mapping[str, tuple[str, ...]]

    @property
    def current(self) -> bool:
        return self.version >= self.latest and not self.missing_tables and not self.missing_columns


async def migrate(dsn: str) -> MigrationReport:
    """Create/upgrade the project's tables and create absent web-app tables; idempotent."""
    conn = await connect(dsn)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()


async def migrate_connection(
    conn: asyncpg.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> MigrationReport:
    """`migrate` on an open connection; `migrations` defaults to all (tests pass an older prefix)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(CREATE_MIGRATIONS_TABLE)
        done = {row["version"] for row in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")}
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(f"{migration.version:04d} {migration.name}")

        created, existing = [], []
        missing: dict[str, tuple[str, ...]] = {}
        for table in WEB_APP_TABLES:
            columns = await table_columns(conn, table.name)
            if not columns:
                await conn.execute(table.create_sql)
                created.append(table.name)
                continue
            existing.append(table.name)
            lacking = tuple(c for c in table.required_columns if c not in columns)
            if lacking:
                missing[table.name] = lacking
        unfillable = {}
        if LESSON_TABLE.name in existing:
            blocked = await columns_without_values(conn, LESSON_TABLE.name, LESSON_TABLE.required_columns)
            if blocked:
                unfillable[LESSON_TABLE.name] = blocked
        version = max(done | {m.version for m in migrations}, default=0)
    return MigrationReport(
        applied=tuple(applied),
        created_tables=tuple(created),
        existing_tables=tuple(existing),
        missing_columns=missing,
        unfillable_columns=unfillable,
        schema_version=version,
    )


async def table_columns(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = $1""",
        table,
    )
    return {row["column_name"] for row in rows}


async def columns_without_values(
    conn: asyncpg.Connection, table: str, written: tuple[str, ...]
) -> tuple[str, ...]:
    rows = await conn.fetch(
        """SELECT column_name FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = $1
             AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'
             AND is_generated = 'NEVER'
           ORDER BY ordinal_position""",
        table,
    )
    return tuple(row["column_name"] for row in rows if row["column_name"] not in written)


async def schema_state(conn: asyncpg.Connection) -> SchemaState:
    """What `migrate` would still have to do (read-only; for `doctor`)."""
    version = 0
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE):
        version = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}")
    missing_tables = []
    missing_columns = {}
    for table in WEB_APP_TABLES:
        columns = await table_columns(conn, table.name)
        if not columns:
            missing_tables.append(table.name)
            continue
        lacking = tuple(c for c in table.required_columns if c not in columns)
        if lacking:
            missing_columns[table.name] = lacking
    return SchemaState(
        version=version,
        latest=LATEST_VERSION,
        missing_tables=tuple(missing_tables),
        missing_columns=missing_columns,
    )
