"""doctor and research against a real `python -m sandbox` subprocess and a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.lessonctl.conftest import SENTINEL_SECRET, run_lessonctl, start_sandbox, stop_sandbox
from tests.lessonctl.test_doctor_offline import lines_by_name

pytestmark = pytest.mark.slow

ITEM_KEYS = {"source", "title", "url", "summary", "score", "published_at", "tags"}
SERVICE_BUS = (
    "Endpoint=sb://sandbox.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    f"SharedAccessKey={SENTINEL_SECRET}"
)


def with_password(dsn: str, password: str) -> str:
    """The same DSN carrying a password (the embedded server trusts local logins and ignores it)."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, ""))


@pytest.fixture(scope="module")
def migrated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    result = run_lessonctl("migrate", env={"DATABASE_URL": database_url}, cwd=tmp_path_factory.mktemp("m"))
    assert result.returncode == 0, result.stderr
    return with_password(database_url, SENTINEL_SECRET)


def test_doctor_all_ok_against_the_sandbox(sandbox_env: dict[str, str], migrated: str, workdir: Path) -> None:
    env = {**sandbox_env, "DATABASE_URL": migrated, "AzureServiceBusConnectionString": SERVICE_BUS}
    result = run_lessonctl("doctor", env=env, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    by_name = lines_by_name(result.stdout)
    assert list(by_name) == [
        "settings",
        "service bus",
        "database",
        "research/github",
        "research/stackoverflow",
        "research/youtube",
        "research/devto",
        "research/docs",
        "ai/deepseek",
        "ai/groq",
        "ai/gemini",
    ]
    assert all(line.startswith("OK ") for line in by_name.values()), result.stdout
    assert "deepseek-flash answered in" in by_name["ai/deepseek"]
    assert SENTINEL_SECRET not in result.stdout + result.stderr


def test_doctor_fails_when_every_ai_provider_fails(migrated: str, workdir: Path) -> None:
    process, env = start_sandbox("deepseek=error:1", "groq=error:1", "gemini=error:1")
    try:
        result = run_lessonctl("doctor", env={**env, "DATABASE_URL": migrated}, cwd=workdir)
    finally:
        stop_sandbox(process)
    assert result.returncode == 1
    by_name = lines_by_name(result.stdout)
    assert by_name["database"].startswith("OK ")
    assert by_name["research/github"].startswith("OK ")
    for provider in ("deepseek", "groq", "gemini"):
        assert by_name[f"ai/{provider}"].startswith(f"FAIL ai/{provider}: ")
        assert "check " in by_name[f"ai/{provider}"]


def test_doctor_passes_when_one_ai_provider_and_one_source_still_work(migrated: str, workdir: Path) -> None:
    faults = ("deepseek=error:1", "groq=429:1", "github=error:1", "stackoverflow=error:1", "devto=error:1")
    process, env = start_sandbox(*faults, "docs=error:1")
    try:
        result = run_lessonctl("doctor", env={**env, "DATABASE_URL": migrated}, cwd=workdir)
    finally:
        stop_sandbox(process)
    assert result.returncode == 0, result.stdout
    by_name = lines_by_name(result.stdout)
    assert by_name["ai/gemini"].startswith("OK ") and by_name["ai/groq"].startswith("FAIL ")
    assert by_name["research/youtube"].startswith("OK ")
    assert by_name["research/docs"].startswith("FAIL ")


@pytest.fixture
def broken_github() -> Iterator[dict[str, str]]:
    process, env = start_sandbox("github=error:1")
    try:
        yield env
    finally:
        stop_sandbox(process)


def test_research_prints_ranked_json_lines(sandbox_env: dict[str, str], workdir: Path) -> None:
    result = run_lessonctl("research", "python asyncio", env=sandbox_env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(items) >= 5
    assert all(set(item) == ITEM_KEYS for item in items)
    assert {item["source"] for item in items} == {"github", "stackoverflow", "youtube", "devto", "docs"}
    assert len({item["url"] for item in items}) == len(items)  # de-duplicated


def test_research_source_filter(sandbox_env: dict[str, str], workdir: Path) -> None:
    result = run_lessonctl(
        "research", "react hooks", "--source", "devto", "--source", "docs", env=sandbox_env, cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    sources = {json.loads(line)["source"] for line in result.stdout.splitlines()}
    assert sources == {"devto", "docs"}


def test_research_reports_a_failing_source_and_still_answers(
    broken_github: dict[str, str], workdir: Path
) -> None:
    result = run_lessonctl("research", "python asyncio", env=broken_github, cwd=workdir)
    assert result.returncode == 0
    [line] = result.stderr.splitlines()
    assert line.startswith("github: error: ")
    assert "github" not in {json.loads(item)["source"] for item in result.stdout.splitlines()}
    only_github = run_lessonctl(
        "research", "python asyncio", "--source", "github", env=broken_github, cwd=workdir
    )
    assert only_github.returncode == 1 and only_github.stdout == ""
