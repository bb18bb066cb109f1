"""Argument parsing and dispatch; each command lives in a module of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lessonctl import cancel, doctor, enqueue, failed, migrate, research, retry, status, usage
from lessonctl.context import CommandContext

COMMANDS = (migrate, doctor, research, enqueue, status, failed, retry, cancel, usage)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lessonctl",
        description="Operate Lesson Orchestrator. Settings come from the environment, then from "
        "local.settings.json Values in --app-dir.",
    )
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=None,
        help="folder holding local.settings.json (default: current folder)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    context = CommandContext(
        env=dict(os.environ if env is None else env),
        app_dir=args.app_dir or Path.cwd(),
        out=sys.stdout,
        err=sys.stderr,
    )
    try:
        return int(args.handler(args, context))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`lessonctl usage | head`): stop quietly instead of printing a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
