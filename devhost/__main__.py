"""`python -m devhost COMMAND ...`: the local Durable Functions host's command line (architecture §3)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from devhost.cli_replay import add_replay_commands
from devhost.hostcli import add_host_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="A pure-Python local host for Azure Durable Functions Python apps.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_host_commands(subparsers)
    add_replay_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly instead of printing a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
