"""`lessonctl retry MODULE_ID`: request a failed module again, with a new request id and the difficulty
and learning style of its last run. It travels like `enqueue`: Service Bus by default, the devhost's
local queue with --local.

Exit codes: 0 sent, 1 not sent (the module is not failed, or settings/database/transport error),
2 unknown module.
"""

from __future__ import annotations

import argparse
from typing import Any

from clients.db import ModuleRecord, get_module
from lessonctl.context import CommandContext
from lessonctl.dbcommand import with_database
from lessonctl.transport import BadRequest, add_transport_options, build_message, new_request_id, send


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retry",
        help="request a failed module again (new request id)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("module_id", metavar="MODULE_ID")
    add_transport_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    found = with_database(ctx, lambda pool: get_module(pool, args.module_id))
    if isinstance(found, int):
        return found
    module: ModuleRecord | None = found
    if module is None:
        ctx.warn(f"error: module {args.module_id} does not exist in lessons_module")
        return 2
    if module.generation_status != "failed":
        ctx.warn(f"error: module {module.id} is {module.generation_status}, not failed: nothing to retry "
                 f"(`lessonctl enqueue {module.id}` requests it anyway)")
        return 1
    last = module.current_run
    difficulty = (last.difficulty if last else None) or _known_difficulty(module.difficulty)
    learning_style = last.learning_style if last else None
    request_id = new_request_id()
    try:
        message = build_message(module.id, request_id, difficulty, learning_style)
    except BadRequest as error:
        ctx.warn(f"error: {error}")
        return 1
    error_text = " ".join((module.generation_error or "no error recorded").split())
    ctx.say(f"module {module.id} failed: {error_text}")
    code = send(args, ctx, message)
    if code == 0:
        ctx.say(f"retry requested as {request_id}; follow it with: "
                f"lessonctl status {module.id} --watch --request {request_id}")
    return code


def _known_difficulty(value: str | None) -> str | None:
    """The web app's column may hold other spellings; only send what the message accepts."""
    value = (value or "").strip().lower()
    return value if value in ("beginner", "intermediate", "advanced") else None
