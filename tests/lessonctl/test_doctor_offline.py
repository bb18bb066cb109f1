"""`lessonctl doctor` when services are down or the schema is missing (no sandbox needed)."""

from __future__ import annotations

import re
from pathlib import Path

from clients.db.schema import LATEST_VERSION
from tests.lessonctl.conftest import SENTINEL_SECRET, run_lessonctl
from tests.lessonctl.test_research_offline import closed_port_url

LINE = re.compile(r"^(OK|FAIL|SKIP) [a-z/ ]+: .+$")


def unreachable_upstreams() -> dict[str, str]:
    return {
        "GITHUB_API_URL": closed_port_url(),
        "GITHUB_TOKEN": SENTINEL_SECRET,
        "STACKEXCHANGE_API_URL": closed_port_url(),
        "DEVTO_API_URL": closed_port_url(),
        "DOCS_SEARCH_URL": closed_port_url("/api/v1/search"),
        "AI_PROVIDERS": "groq,gemini",
        "GROQ_API_KEY": SENTINEL_SECRET + "-groq",
        "GROQ_BASE_URL": closed_port_url("/openai/v1"),
    }


def lines_by_name(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), stdout
    return {line.split(" ", 1)[1].split(":", 1)[0]: line for line in lines}


def test_unreachable_database_fails_with_a_fix_hint_and_no_secret(workdir: Path) -> None:
    env = {
        **unreachable_upstreams(),
        "DATABASE_URL": f"postgresql://app:{SENTINEL_SECRET}@{closed_port_url().split('//')[1]}/skillsync",
    }
    result = run_lessonctl("doctor", env=env, cwd=workdir)
    assert result.returncode == 1
    by_name = lines_by_name(result.stdout)
    assert by_name["settings"].startswith("OK settings: database from DATABASE_URL")
    assert by_name["database"].startswith("FAIL database: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "check DATABASE_URL" in by_name["database"]
    assert by_name["research/github"].startswith("FAIL research/github: ")
    assert "GITHUB_API_URL" in by_name["research/github"]
    assert by_name["research/youtube"].startswith("SKIP research/youtube: ")
    assert by_name["ai/groq"].startswith("FAIL ai/groq: ") and "GROQ_BASE_URL" in by_name["ai/groq"]
    assert by_name["ai/gemini"].startswith("SKIP ai/gemini: GEMINI_API_KEY is not set")
    assert SENTINEL_SECRET not in result.stdout + result.stderr


def test_missing_settings_each_fail_and_no_ai_provider_is_a_failure(workdir: Path) -> None:
    env = {**unreachable_upstreams(), "AI_PROVIDERS": "deepseek", "ENVIRONMENT": "production"}
    result = run_lessonctl("doctor", env=env, cwd=workdir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    settings = [line for line in lines if line.startswith("FAIL settings: ")]
    assert [line.split()[2] for line in settings] == [
        "PROD_DB_HOST",
        "PROD_DB_NAME",
        "PROD_DB_USER",
        "PROD_DB_PASSWORD",
    ]
    assert "FAIL database: not configured" in result.stdout
    assert any(line.startswith("FAIL ai: no AI provider is configured") for line in lines)


def test_unmigrated_database_says_run_migrate(database_url: str, workdir: Path) -> None:
    result = run_lessonctl(
        "doctor", env={**unreachable_upstreams(), "DATABASE_URL": database_url}, cwd=workdir
    )
    assert result.returncode == 1
    database = lines_by_name(result.stdout)["database"]
    assert database.startswith("FAIL database: PostgreSQL ")
    assert f"schema version 0 of {LATEST_VERSION}" in database and "python -m lessonctl migrate" in database
