"""The individual `doctor` checks: each returns CheckResults and never raises for a failed service."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from clients.db import DatabaseUnavailable, connect, schema_state
from clients.http import RetryPolicy
from clients.research import ResearchConfig, ResearchConfigError, search_source
from domain.settings import SERVICE_BUS_SETTING, Need, Settings, SettingsError, parse_settings

Status = Literal["OK", "FAIL", "SKIP"]
PROBE_TOPIC = "python"
DB_TIMEOUT_S = 10.0
# One attempt, short budget: a doctor run should answer in seconds, not wait out a retry policy.
PROBE_RETRY = RetryPolicy(max_attempts=1, budget_s=10.0)
PROBE_BUDGET_S = 15.0


@dataclass(frozen=True)
class CheckResult:
    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}"


def check_settings(values: Mapping[str, str]) -> tuple[list[CheckResult], Settings | None]:
    try:
        settings = parse_settings(values, needs=(Need.DATABASE,))
    except SettingsError as error:
        return [CheckResult("FAIL", "settings", problem) for problem in error.problems], None
    detail = (
        f"database from {settings.database_source} ({settings.database_display}), "
        f"research cache {settings.research_cache_ttl_hours:g} h, "
        f"module deadline {settings.generation_deadline_minutes:g} min"
    )
    results = [CheckResult("OK", "settings", detail)]
    results.append(_service_bus(values))
    return results, settings


def _service_bus(values: Mapping[str, str]) -> CheckResult:
    try:
        bus = parse_settings(values, needs=(Need.SERVICE_BUS,)).service_bus
    except SettingsError:
        bus = None
    if bus is None:
        return CheckResult(
            "SKIP",
            "service bus",
            f"{SERVICE_BUS_SETTING} not set: required by the queue trigger in Azure "
            "(the devhost's local queue does not need it)",
        )
    if bus.fully_qualified_namespace:
        return CheckResult("OK", "service bus", f"managed identity on {bus.fully_qualified_namespace}")
    return CheckResult("OK", "service bus", "connection string configured")


async def check_database(settings: Settings | None) -> CheckResult:
    if settings is None or settings.database_url is None:
        return CheckResult("FAIL", "database", "not configured: fix the settings lines above")
    try:
        conn = await asyncio.wait_for(connect(settings.database_url), DB_TIMEOUT_S)
    except DatabaseUnavailable as error:
        return CheckResult(
            "FAIL",
            "database",
            f"{error}; check DATABASE_URL (or ENVIRONMENT + *_DB_*) and that the server accepts "
            "connections from here (Azure: the PostgreSQL server's firewall/networking rules)",
        )
    except TimeoutError:
        return CheckResult(
            "FAIL", "database", f"no answer from {settings.database_display} in {DB_TIMEOUT_S:g}s"
        )
    try:
        version = await conn.fetchval("SHOW server_version")
        state = await schema_state(conn)
    finally:
        await conn.close()
    where = f"PostgreSQL {version} at {settings.database_display}"
    if state.version < state.latest or state.missing_tables:
        missing = f"; missing tables: {', '.join(state.missing_tables)}" if state.missing_tables else ""
        return CheckResult(
            "FAIL",
            "database",
            f"{where}: schema version {state.version} of {state.latest}{missing}; "
            "run `python -m lessonctl migrate`",
        )
    if state.missing_columns:
        gaps = "; ".join(f"{table} lacks {', '.join(cols)}" for table, cols in state.missing_columns.items())
        return CheckResult(
            "FAIL", "database", f"{where}: {gaps}; add these columns with a migration in the web app"
        )
    return CheckResult("OK", "database", f"{where}, schema version {state.version}")


def research_config(values: Mapping[str, str]) -> ResearchConfig | CheckResult:
    try:
        config = ResearchConfig.from_env(values)
    except ResearchConfigError as error:
        return CheckResult("FAIL", "research", "; ".join(str(error).splitlines()))
    return dataclasses.replace(config, retry=PROBE_RETRY, source_budget_s=PROBE_BUDGET_S)


async def check_research_source(source: str, config: ResearchConfig) -> CheckResult:
    name = f"research/{source}"
    items, outcome = await search_source(source, PROBE_TOPIC, config=config, limit=1)
    if outcome.status == "ok":
        count = f"{len(items)} item" + ("" if len(items) == 1 else "s")
        return CheckResult("OK", name, f"answered in {outcome.latency_ms} ms ({count})")
    if outcome.status == "skipped":
        return CheckResult("SKIP", name, outcome.error or "not configured")
    hint = {
        "rate_limited": "wait for the quota to reset, or configure an API key/token for this source",
        "error": f"check the {_url_setting(source)} setting and network access to it",
    }.get(outcome.status, "")
    return CheckResult("FAIL", name, f"{outcome.status}: {outcome.error or 'no detail'}; {hint}")


def _url_setting(source: str) -> str:
    return {
        "github": "GITHUB_API_URL/GITHUB_TOKEN",
        "stackoverflow": "STACKEXCHANGE_API_URL/STACKEXCHANGE_KEY",
        "youtube": "YOUTUBE_API_URL/YOUTUBE_API_KEY",
        "devto": "DEVTO_API_URL",
        "docs": "DOCS_SEARCH_URL",
    }.get(source, "source URL")
