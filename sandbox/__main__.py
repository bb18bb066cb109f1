"""python -m sandbox [--port N] [--latency SOURCE=MIN-MAX ...] [--fault SOURCE=KIND:RATE ...] [--seed N]
python -m sandbox env [--port N]"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from sandbox.behaviour import FAULT_KINDS, UPSTREAMS, Behaviour, BehaviourError
from sandbox.server import DEFAULT_PORT, HOST, sandbox_env, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Loopback stand-ins for the research sources and AI providers the app calls.",
        epilog=f"SOURCE: {', '.join(UPSTREAMS)}. KIND: {', '.join(FAULT_KINDS)}.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "env"),
        default="serve",
        help="serve (default) or env: print the settings that point the app at the sandbox",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on {HOST} (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--latency",
        action="append",
        default=[],
        metavar="SOURCE=MIN-MAX",
        help="added latency in ms for one upstream (repeatable)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SOURCE=KIND:RATE",
        help="inject a fault into a share (0..1) of one upstream's requests (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for latency and fault draws")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port")
    if args.command == "env":
        if args.port == 0:
            parser.error("env needs the sandbox's real port, not 0")
        for name, value in sandbox_env(f"http://{HOST}:{args.port}").items():
            print(f"{name}={value}")
        return 0
    try:
        behaviour = Behaviour.from_specs(latency=args.latency, faults=args.fault, seed=args.seed)
    except BehaviourError as exc:
        parser.error(str(exc))

    def ready(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(serve(behaviour, port=args.port, ready=ready))
    except OSError as exc:
        print(f"sandbox: cannot listen on {HOST}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
