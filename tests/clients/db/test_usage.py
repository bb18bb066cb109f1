from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from clients.db import AiUsage, estimate_cost, price_for, record_ai_usage, usage_report


async def test_usage_report_by_provider_and_model_with_estimated_cost(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM lo_ai_usage")
    await record_ai_usage(pool, AiUsage("deepseek", "deepseek-chat", 1_000_000, 500_000, latency_ms=1000))
    await record_ai_usage(pool, AiUsage("deepseek", "deepseek-chat", 1_000_000, 500_000, latency_ms=3000))
    await record_ai_usage(pool, AiUsage("deepseek", "deepseek-chat", 900, 900, cache_hit=True))
    await record_ai_usage(pool, AiUsage("groq", "llama-3.3-70b-versatile", 1000, 2000, latency_ms=400))
    await record_ai_usage(pool, AiUsage("mystery", "m-1", 10, 10))
    # An old row, outside the report window.
    await pool.execute(
        """INSERT INTO lo_ai_usage (provider, model, tokens_in, tokens_out, created_at)
           VALUES ('groq', 'llama-3.3-70b-versatile', 999999, 999999, now() - interval '40 days')"""
    )

    lines = await usage_report(pool, since=datetime.now(UTC) - timedelta(days=30))

    by_key = {(line.provider, line.model): line for line in lines}
    assert set(by_key) == {
        ("deepseek", "deepseek-chat"),
        ("groq", "llama-3.3-70b-versatile"),
        ("mystery", "m-1"),
    }
    deepseek = by_key["deepseek", "deepseek-chat"]
    assert (deepseek.calls, deepseek.cache_hits) == (3, 1)
    assert (deepseek.tokens_in, deepseek.tokens_out) == (2_000_000, 1_000_000)  # cache hits not billed
    assert deepseek.avg_latency_ms == pytest.approx(2000)
    assert deepseek.estimated_cost_usd == pytest.approx(2 * 0.28 + 1 * 0.42)
    groq = by_key["groq", "llama-3.3-70b-versatile"]
    assert groq.calls == 1 and groq.tokens_in == 1000
    assert by_key["mystery", "m-1"].estimated_cost_usd is None
    assert lines[0].provider == "deepseek"  # most expensive first

    everything = await usage_report(pool)
    assert sum(line.calls for line in everything) == 6


async def test_negative_tokens_rejected(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError):
        await record_ai_usage(pool, AiUsage("groq", "x", -1, 0))


def test_longest_prefix_price_wins_and_local_servers_are_free() -> None:
    assert price_for("gemini", "gemini-2.0-flash-lite-001") == price_for("gemini", "gemini-2.0-flash-lite")
    assert price_for("gemini", "models/gemini-2.5-flash") is not None
    assert estimate_cost("openai", "qwen3:8b", 10**6, 10**6) == 0.0
    assert estimate_cost("deepseek", "deepseek-unknown", 1, 1) is None
