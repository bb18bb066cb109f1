"""`lessonctl migrate`: create/upgrade the project's tables; web-app tables only when absent."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import asyncpg

from clients.db import DatabaseUnavailable, MigrationReport, migrate
from clients.db.schema import LATEST_VERSION
from domain.settings import SettingsError
from lessonctl.context import CommandContext


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the database tables",
        description="Creates/upgrades the project's own tables. Creates lessons_module and "
        "lessons_lessoncontent only when absent; never alters existing ones, and lists the columns "
        "they lack. Exit 1 when the migration fails or the web app's tables lack columns.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        settings = ctx.settings()
    except SettingsError as error:
        return ctx.settings_failed(error)
    assert settings.database_url is not None  # Need.DATABASE guarantees it
    try:
        report = asyncio.run(migrate(settings.database_url))
    except DatabaseUnavailable as error:
        ctx.warn(f"error: {error}")
        return 1
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        ctx.warn(f"error: migration failed and was rolled back: {type(error).__name__}: {error}")
        return 1
    print_report(report, settings.database_display, ctx)
    return 0 if report.web_tables_usable else 1


def print_report(report: MigrationReport, where: str, ctx: CommandContext) -> None:
    ctx.say(f"database {where}")
    for name in report.applied:
        ctx.say(f"applied migration {name}")
    for table in report.created_tables:
        ctx.say(f"created {table} (standalone: no web app tables were present)")
    for table in report.existing_tables:
        ctx.say(f"kept {table} as it is (owned by the web app; never altered)")
    for table, columns in report.missing_columns.items():
        ctx.say(
            f"MISSING {table} lacks columns: {', '.join(columns)} "
            "(add them with a migration in the web app; lessonctl never alters its tables)"
        )
    for table, columns in report.unfillable_columns.items():
        ctx.say(
            f"MISSING {table} has NOT NULL columns without a default that this app does not write: "
            f"{', '.join(columns)} (give them a database default or make them nullable in the web app)"
        )
    state = "up to date" if not report.applied else "upgraded"
    ctx.say(f"schema version {report.schema_version} of {LATEST_VERSION}: {state}")
