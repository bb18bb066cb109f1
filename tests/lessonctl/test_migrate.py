from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.lessonctl.conftest import SENTINEL_SECRET, run_lessonctl


@pytest.fixture
def fresh_url(postgres_server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    dsn = postgres.create_database(postgres_server_dsn, request.node.name)
    try:
        yield dsn
    finally:
        postgres.drop_database(postgres_server_dsn, dsn)


def test_migrate_fresh_then_again(fresh_url: str, workdir: Path) -> None:
    first = run_lessonctl("migrate", env={"DATABASE_URL": fresh_url}, cwd=workdir)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert any(line.startswith("applied migration 0001 ") for line in lines)
    assert any(line.startswith("created lessons_module ") for line in lines)
    assert any(line.startswith("created lessons_lessoncontent ") for line in lines)
    assert lines[-1].endswith("upgraded")

    second = run_lessonctl("migrate", env={"DATABASE_URL": fresh_url}, cwd=workdir)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    assert not any(line.startswith(("applied", "created")) for line in lines)
    assert sum(line.startswith("kept ") for line in lines) == 2
    assert lines[-1].endswith("up to date")


def test_existing_tables_lacking_columns_are_listed_and_exit_1(fresh_url: str, workdir: Path) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(fresh_url)
        try:
            await conn.execute(
                "CREATE TABLE lessons_module (id uuid PRIMARY KEY, title text, generation_status text)"
            )
        finally:
            await conn.close()

    asyncio.run(create())
    result = run_lessonctl("migrate", env={"DATABASE_URL": fresh_url}, cwd=workdir)
    assert result.returncode == 1
    [missing] = [line for line in result.stdout.splitlines() if line.startswith("MISSING")]
    assert missing.startswith(
        "MISSING lessons_module lacks columns: roadmap_id, description, difficulty, generation_error, "
        "generation_started_at, generation_completed_at"
    )
    assert "created lessons_lessoncontent" in result.stdout  # absent, so created
    assert "kept lessons_module" in result.stdout


def test_settings_from_local_settings_json_assembled_from_environment_parts(
    fresh_url: str, workdir: Path
) -> None:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(fresh_url)
    query = parse_qs(parts.query)
    host = parts.hostname or query["host"][0]  # the embedded server listens on a Unix socket
    port = parts.port or int(query.get("port", ["5432"])[0])
    values = {
        "ENVIRONMENT": "development",
        "DEV_DB_HOST": host,
        "DEV_DB_PORT": str(port),
        "DEV_DB_NAME": parts.path.lstrip("/"),
        "DEV_DB_USER": parts.username,
        # The embedded server trusts local connections; a real server checks it.
        "DEV_DB_PASSWORD": parts.password or "ignored-by-trust-auth",
    }
    (workdir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    result = run_lessonctl("migrate", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"database {host}:{port}/{values['DEV_DB_NAME']}" in result.stdout
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    assert run_lessonctl("migrate", cwd=elsewhere).returncode == 1  # no settings there
    from_app_dir = run_lessonctl("--app-dir", str(workdir), "migrate", cwd=elsewhere)
    assert from_app_dir.returncode == 0, from_app_dir.stderr


def test_missing_settings_one_line_each_exit_1(workdir: Path) -> None:
    result = run_lessonctl(
        "migrate", env={"ENVIRONMENT": "production", "PROD_DB_PASSWORD": SENTINEL_SECRET}, cwd=workdir
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(" ")[1] for line in lines] == ["PROD_DB_HOST", "PROD_DB_NAME", "PROD_DB_USER"]
    assert all("local.settings.json" in line for line in lines)
    assert SENTINEL_SECRET not in result.stdout + result.stderr


def test_unreachable_database_is_one_clear_line_without_the_password(workdir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dsn = f"postgresql://app:{SENTINEL_SECRET}@127.0.0.1:{port}/skillsync"
    result = run_lessonctl("migrate", env={"DATABASE_URL": dsn}, cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot connect to PostgreSQL at 127.0.0.1:{port}/skillsync")
    assert SENTINEL_SECRET not in result.stdout + result.stderr
