"""`lessonctl failed`: modules whose generation failed, with the reason."""

from __future__ import annotations

import argparse
from typing import Any

from clients.db import list_modules_by_status
from clients.db.runs import FAILED
from lessonctl.context import CommandContext
from lessonctl.dbcommand import with_database


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "failed",
        help="list failed modules",
        description="One line per failed module: id, when it failed, title and the error.",
    )
    parser.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    modules = with_database(ctx, lambda pool: list_modules_by_status(pool, FAILED, limit=args.limit))
    if isinstance(modules, int):
        return modules
    for module in modules:
        when = (
            module.generation_completed_at.isoformat(timespec="seconds")
            if module.generation_completed_at
            else "-"
        )
        error = " ".join((module.generation_error or "no error recorded").split())
        ctx.say(f"{module.id}  {when}  {module.title!r}  {error}")
    if not modules:
        ctx.warn("no failed modules")
    return 0
