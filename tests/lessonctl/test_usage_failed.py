"""`lessonctl usage` and `lessonctl failed` as subprocesses against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from clients.db import migrate
from tests.lessonctl.conftest import run_lessonctl


@pytest.fixture(scope="module")
def filled_url(database_url: str) -> str:
    async def fill() -> None:
        await migrate(database_url)
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                """INSERT INTO lo_ai_usage (provider, model, tokens_in, tokens_out, cache_hit, created_at)
                   VALUES
                   ('groq', 'llama-3.3-70b-versatile', 1000000, 1000000, false, '2026-06-01T10:00Z'),
                   ('groq', 'llama-3.3-70b-versatile', 500, 500, true, '2026-06-02T10:00Z'),
                   ('deepseek', 'deepseek-brand-new', 10, 20, false, '2026-06-03T10:00Z'),
                   ('gemini', 'gemini-2.5-flash', 1, 1, false, '2025-01-01T00:00Z')"""
            )
            await conn.execute(
                """INSERT INTO lessons_module (id, title, generation_status, generation_error,
                                               generation_completed_at) VALUES
                   ($1, 'Rust ownership', 'failed', 'no AI provider could generate lesson 2', now()),
                   ($2, 'Docker networking', 'completed', NULL, now())""",
                uuid.UUID(int=1),
                uuid.UUID(int=2),
            )
        finally:
            await conn.close()

    asyncio.run(fill())
    return database_url


def test_usage_since_a_date(filled_url: str, workdir: Path) -> None:
    result = run_lessonctl("usage", "--since", "2026-01-01", env={"DATABASE_URL": filled_url}, cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "AI usage, since 2026-01-01T00:00:00+00:00"
    assert lines[1].split() == [
        "provider",
        "model",
        "calls",
        "cache",
        "hits",
        "tokens",
        "in",
        "tokens",
        "out",
        "est.",
        "cost",
    ]
    assert lines[2].split() == ["groq", "llama-3.3-70b-versatile", "2", "1", "1000000", "1000000", "$1.3800"]
    assert lines[3].split() == ["deepseek", "deepseek-brand-new", "1", "0", "10", "20", "?"]
    assert lines[4].split() == ["total", "3", "1", "1000010", "1000020", "$1.3800"]
    assert "gemini" not in result.stdout  # before --since
    assert any(line.startswith("? = no price known") for line in lines)


def test_ai_prices_price_new_models_and_override_the_table(filled_url: str, workdir: Path) -> None:
    prices = "deepseek:deepseek-brand-new=1000/2000, groq:llama-3.3-70b=1/1"
    env = {"DATABASE_URL": filled_url, "AI_PRICES": prices}
    result = run_lessonctl("usage", "--since", "2026-01-01", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["groq", "llama-3.3-70b-versatile", "2", "1", "1000000", "1000000", "$2.0000"]
    assert lines[3].split() == ["deepseek", "deepseek-brand-new", "1", "0", "10", "20", "$0.0500"]
    assert not any(line.startswith("? = no price known") for line in lines)
    assert lines[-1].endswith("with AI_PRICES overrides")


def test_a_malformed_ai_prices_setting_is_a_usage_error(filled_url: str, workdir: Path) -> None:
    env = {"DATABASE_URL": filled_url, "AI_PRICES": "deepseek=cheap"}
    result = run_lessonctl("usage", env=env, cwd=workdir)
    assert result.returncode == 2
    assert "AI_PRICES entry 'deepseek=cheap' is not provider:model-prefix=IN/OUT" in result.stderr


def test_usage_bad_date_is_a_usage_error(workdir: Path) -> None:
    result = run_lessonctl("usage", "--since", "last week", cwd=workdir)
    assert result.returncode == 2 and "'last week' is not a date" in result.stderr


def test_failed_lists_failed_modules_only(filled_url: str, workdir: Path) -> None:
    result = run_lessonctl("failed", env={"DATABASE_URL": filled_url}, cwd=workdir)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith(str(uuid.UUID(int=1)))
    assert line.endswith("'Rust ownership'  no AI provider could generate lesson 2")


def test_unmigrated_database_says_to_migrate(postgres_server_dsn: str, workdir: Path) -> None:
    from tests import postgres

    dsn = postgres.create_database(postgres_server_dsn, "unmigrated")
    try:
        result = run_lessonctl("failed", env={"DATABASE_URL": dsn}, cwd=workdir)
    finally:
        postgres.drop_database(postgres_server_dsn, dsn)
    assert result.returncode == 1
    assert "run `python -m lessonctl migrate` first" in result.stderr
