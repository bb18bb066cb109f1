from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from clients.db import migrate, schema_state
from clients.db.schema import LATEST_VERSION
from tests import postgres

OWN_TABLES = {
    "lo_schema_migrations",
    "lo_generation_runs",
    "lo_current_runs",
    "lo_generation_requests",
    "lo_research_items",
    "lo_research_cache",
    "lo_lesson_cache",
    "lo_ai_usage",
    "lo_run_plans",
    "lo_lesson_drafts",
    "lo_plan_cache",
    "lo_generation_claims",
}


@pytest.fixture
def fresh_url(postgres_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    dsn = postgres.create_database(postgres_server_dsn, request.node.name)
    try:
        yield dsn
    finally:
        postgres.drop_database(postgres_server_dsn, dsn)


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
        )
        return {row["table_name"] for row in rows}
    finally:
        await conn.close()


async def columns(dsn: str, table: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema='public' AND table_name=$1 ORDER BY ordinal_position""",
            table,
        )
        return [row["column_name"] for row in rows]
    finally:
        await conn.close()


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_fresh_database_gets_own_and_web_app_tables(fresh_url: str) -> None:
    report = await migrate(fresh_url)
    assert len(report.applied) == LATEST_VERSION
    assert report.created_tables == ("lessons_module", "lessons_lessoncontent")
    assert report.existing_tables == ()
    assert report.web_tables_usable
    assert report.schema_version == LATEST_VERSION
    assert await tables(fresh_url) == OWN_TABLES | {"lessons_module", "lessons_lessoncontent"}
    assert await columns(fresh_url, "lessons_lessoncontent") == [
        "id",
        "module_id",
        "lesson_number",
        "title",
        "content",
        "source_attribution",
        "generation_metadata",
        "created_at",
    ]


async def test_rerun_is_a_no_op(fresh_url: str) -> None:
    await migrate(fresh_url)
    before = await tables(fresh_url)
    report = await migrate(fresh_url)
    assert report.applied == ()
    assert report.created_tables == ()
    assert report.existing_tables == ("lessons_module", "lessons_lessoncontent")
    assert report.missing_columns == {}
    assert await tables(fresh_url) == before
    conn = await asyncpg.connect(fresh_url)
    try:
        state = await schema_state(conn)
        assert await conn.fetchval("SELECT count(*) FROM lo_schema_migrations") == LATEST_VERSION
    finally:
        await conn.close()
    assert state.current


async def test_concurrent_migrations_serialise_on_the_advisory_lock(fresh_url: str) -> None:
    reports = await asyncio.gather(*(migrate(fresh_url) for _ in range(4)))
    assert sorted(len(r.applied) for r in reports) == [0, 0, 0, LATEST_VERSION]
    assert sum(len(r.created_tables) for r in reports) == 2


async def test_existing_web_app_tables_are_not_altered_and_their_gaps_are_reported(fresh_url: str) -> None:
    await execute(
        fresh_url,
        """
        CREATE TABLE lessons_module (id uuid PRIMARY KEY, title varchar(200) NOT NULL,
                                     generation_status varchar(20) NOT NULL);
        CREATE TABLE lessons_lessoncontent (id uuid PRIMARY KEY, module_id uuid NOT NULL,
                                            lesson_number int NOT NULL, title text NOT NULL,
                                            content text NOT NULL, estimated_minutes int NOT NULL);
        """,
    )
    module_before = await columns(fresh_url, "lessons_module")
    lesson_before = await columns(fresh_url, "lessons_lessoncontent")

    report = await migrate(fresh_url)

    assert report.created_tables == ()
    assert report.existing_tables == ("lessons_module", "lessons_lessoncontent")
    assert report.missing_columns == {
        "lessons_module": (
            "roadmap_id",
            "description",
            "difficulty",
            "generation_error",
            "generation_started_at",
            "generation_completed_at",
        ),
        "lessons_lessoncontent": ("source_attribution", "generation_metadata", "created_at"),
    }
    assert report.unfillable_columns == {"lessons_lessoncontent": ("estimated_minutes",)}
    assert not report.web_tables_usable
    assert await columns(fresh_url, "lessons_module") == module_before
    assert await columns(fresh_url, "lessons_lessoncontent") == lesson_before
    assert await tables(fresh_url) >= OWN_TABLES


async def test_schema_state_before_migrate_says_what_is_missing(fresh_url: str) -> None:
    conn = await asyncpg.connect(fresh_url)
    try:
        state = await schema_state(conn)
    finally:
        await conn.close()
    assert state.version == 0 and state.latest == LATEST_VERSION
    assert state.missing_tables == ("lessons_module", "lessons_lessoncontent")
    assert not state.current


async def test_failed_migration_leaves_nothing_behind(fresh_url: str) -> None:
    # lo_generation_runs already exists (say, a half-manual setup): v1 fails, and the whole
    # transaction with it, so no partial schema or version row remains.
    await execute(fresh_url, "CREATE TABLE lo_generation_runs (x int)")
    with pytest.raises(asyncpg.DuplicateTableError):
        await migrate(fresh_url)
    assert await tables(fresh_url) == {"lo_generation_runs"}


async def test_upgrade_from_version_1_applies_only_the_newer_migrations(fresh_url: str) -> None:
    from clients.db.migrations import migrate_connection
    from clients.db.schema import MIGRATIONS

    conn = await asyncpg.connect(fresh_url)
    try:
        first = await migrate_connection(conn, MIGRATIONS[:1])  # the code as released with version 1
        assert [name[:4] for name in first.applied] == ["0001"]
        assert "lo_lesson_drafts" not in await tables(fresh_url)

        upgrade = await migrate_connection(conn)
        assert [name[:4] for name in upgrade.applied] == [f"{m.version:04d}" for m in MIGRATIONS[1:]]
        assert upgrade.schema_version == LATEST_VERSION
        assert await tables(fresh_url) >= OWN_TABLES
    finally:
        await conn.close()
