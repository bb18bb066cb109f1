"""`lessonctl usage [--since DATE]`: AI tokens and estimated cost by provider/model."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from clients.db import UsageLine, usage_report
from clients.db.prices import PRICES_CHECKED, PriceSpecError, parse_prices
from domain.settings import SettingsError
from lessonctl.context import CommandContext
from lessonctl.dbcommand import with_database


def since_date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="AI tokens and estimated cost by provider/model",
        description="Totals from the AI usage table. Costs are estimates from approximate list prices "
        "(clients/db/prices.py); lesson-cache hits are counted but not billed.",
    )
    parser.add_argument("--since", type=since_date, default=None, metavar="DATE", help="ISO date (UTC)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    try:
        prices = parse_prices(ctx.values().get("AI_PRICES", ""))
    except (PriceSpecError, SettingsError) as exc:
        ctx.warn(f"error: {exc}")
        return 2
    lines = with_database(ctx, lambda pool: usage_report(pool, args.since, prices))
    if isinstance(lines, int):
        return lines
    print_table(lines, args.since, ctx)
    return 0


def _cost(value: float | None) -> str:
    return "?" if value is None else f"${value:.4f}"


def print_table(lines: list[UsageLine], since: datetime | None, ctx: CommandContext) -> None:
    window = f"since {since.isoformat()}" if since else "all time"
    ctx.say(f"AI usage, {window}")
    header = ("provider", "model", "calls", "cache hits", "tokens in", "tokens out", "est. cost")
    rows = [
        (
            line.provider,
            line.model,
            str(line.calls),
            str(line.cache_hits),
            str(line.tokens_in),
            str(line.tokens_out),
            _cost(line.estimated_cost_usd),
        )
        for line in lines
    ]
    known = [line.estimated_cost_usd for line in lines if line.estimated_cost_usd is not None]
    rows.append(
        (
            "total",
            "",
            str(sum(line.calls for line in lines)),
            str(sum(line.cache_hits for line in lines)),
            str(sum(line.tokens_in for line in lines)),
            str(sum(line.tokens_out for line in lines)),
            _cost(sum(known)),
        )
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        ctx.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if len(known) < len(lines):
        ctx.say("? = no price known for this model; the total leaves it out")
    overrides = ", with AI_PRICES overrides" if ctx.values().get("AI_PRICES") else "; AI_PRICES adds models"
    source = f"list prices checked {PRICES_CHECKED} (clients/db/prices.py)"
    ctx.say(f"costs are estimates from {source}{overrides}")
