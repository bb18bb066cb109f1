"""`lessonctl enqueue MODULE_ID`: request a module's generation with a queue message."""

from __future__ import annotations

import argparse
from typing import Any

from lessonctl.context import CommandContext
from lessonctl.transport import BadRequest, add_transport_options, build_message, new_request_id, send


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="send a generation request for a module",
        description="Send a lesson-generation message through Service Bus (AzureServiceBusConnectionString, "
        "a namespace or the official emulator), or with --local onto the devhost's local queue.",
    )
    parser.add_argument("module_id", metavar="MODULE_ID")
    parser.add_argument("--difficulty", choices=("beginner", "intermediate", "advanced"))
    parser.add_argument("--learning-style", metavar="S")
    parser.add_argument("--request-id", metavar="ID",
                        help="idempotency key (default: a new one); sending the same id twice makes one run")
    add_transport_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    request_id = args.request_id or new_request_id()
    try:
        message = build_message(args.module_id, request_id, args.difficulty, args.learning_style)
    except BadRequest as error:
        ctx.warn(f"error: {error}")
        return 2
    code = send(args, ctx, message)
    if code == 0:
        ctx.say(f"request {request_id} for module {args.module_id}; follow it with: "
                f"lessonctl status {args.module_id} --watch --request {request_id}")
    return code
