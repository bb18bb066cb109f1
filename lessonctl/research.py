"""`lessonctl research TOPIC`: ranked research items as JSON lines; no database needed."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from clients.http import close_session
from clients.research import ALL_SOURCES, ResearchConfig, ResearchConfigError, ResearchResult, gather_research
from domain.settings import SettingsError
from lessonctl.context import CommandContext


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "research",
        help="search the research sources for a topic",
        description="Prints the ranked items as JSON lines (source, title, url, summary, score, "
        "published_at, tags); per-source errors go to stderr, one line each. Exit 0 if any source "
        "answered, 1 if none did.",
    )
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument(
        "--source",
        action="append",
        choices=ALL_SOURCES,
        metavar="NAME",
        help=f"only this source (repeatable): {', '.join(ALL_SOURCES)}",
    )
    parser.add_argument("--limit", type=int, default=8, help="items per source (default 8)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        config = ResearchConfig.from_env(ctx.values())
    except SettingsError as error:
        return ctx.settings_failed(error)
    except ResearchConfigError as error:
        for line in str(error).splitlines():
            ctx.warn(f"error: {line}")
        return 1
    try:
        result = asyncio.run(_gather(args.topic, config, args.source or ALL_SOURCES, args.limit))
    except ValueError as error:  # empty or overlong topic
        ctx.warn(f"error: {error}")
        return 2
    for item in result.items:
        ctx.say(json.dumps(item.to_dict(), ensure_ascii=False))
    for source, outcome in result.outcomes.items():
        if outcome.status not in ("ok", "cached"):
            ctx.warn(f"{source}: {outcome.status}: {outcome.error or 'no detail'}")
    return 0 if result.answered else 1


async def _gather(topic: str, config: ResearchConfig, sources: Any, limit: int) -> ResearchResult:
    try:
        return await gather_research(topic, config=config, sources=sources, limit_per_source=limit)
    finally:
        await close_session()
