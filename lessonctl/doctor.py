"""`lessonctl doctor`: one line per check, `OK|FAIL|SKIP <name>: <detail>`.

Exit 1 when the database fails, or every AI provider fails, or every research source fails (skipped
ones do not count either way). Every line passes through secret redaction before it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from clients.http import close_session, redact
from clients.research import ALL_SOURCES
from domain.settings import SettingsError
from lessonctl import checks, checks_ai
from lessonctl.checks import CheckResult
from lessonctl.context import CommandContext

SECRET_NAME_PARTS = ("KEY", "TOKEN", "PASSWORD", "SECRET", "CONNECTIONSTRING", "DATABASE_URL")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check settings, database, research sources and AI providers",
        description="Prints one line per check: OK|FAIL|SKIP <name>: <detail>; FAIL lines say how to "
        "fix. Exit 1 if the database, every AI provider or every research source fails.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        values = ctx.values()
    except SettingsError as error:
        values = dict(ctx.env)
        for problem in error.problems:
            ctx.say(f"FAIL settings: {problem}")
    secrets = secret_values(values)
    results = asyncio.run(run_checks(values))
    for result in results:
        ctx.say(redact(result.line(), secrets))
    return exit_code(results)


def secret_values(values: Mapping[str, str]) -> list[str]:
    """Values of settings whose names mark them as secret, masked in every printed line."""
    secrets = [
        value for name, value in values.items() if any(part in name.upper() for part in SECRET_NAME_PARTS)
    ]
    # A DSN's password is a secret on its own too (it may appear without the rest of the URL).
    password = urlsplit(values.get("DATABASE_URL", "")).password
    if password:
        secrets.extend({password, unquote(password)})
    return [s for s in secrets if s and len(s) >= 4]


async def run_checks(values: Mapping[str, str]) -> list[CheckResult]:
    results, settings = checks.check_settings(values)
    database = asyncio.ensure_future(checks.check_database(settings))
    config = checks.research_config(values)
    try:
        if isinstance(config, CheckResult):
            research: list[CheckResult] = [config]
        else:
            research = list(
                await asyncio.gather(*(checks.check_research_source(s, config) for s in ALL_SOURCES))
            )
        ai = await checks_ai.check_ai_providers(values)
        results.append(await database)
    finally:
        await close_session()
    return [*results, *research, *ai]


def exit_code(results: list[CheckResult]) -> int:
    def all_failed(prefix: str) -> bool:
        group = [r for r in results if r.name == prefix.rstrip("/") or r.name.startswith(prefix)]
        counted = [r for r in group if r.status != "SKIP"]
        return bool(counted) and all(r.status == "FAIL" for r in counted)

    database_failed = any(r.name == "database" and r.status == "FAIL" for r in results)
    return 1 if database_failed or all_failed("ai/") or all_failed("research/") else 0
