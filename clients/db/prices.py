"""Approximate AI list prices, USD per million tokens, for `usage` cost estimates.

Source: the providers' public pricing pages (api-docs.deepseek.com/quick_start/pricing,
groq.com/pricing, ai.google.dev/gemini-api/docs/pricing) as last checked by the developers in 2025;
cache-miss input prices, standard tier. Prices change often: treat the estimate as an order of
magnitude and update this table when a provider changes its prices. Models not listed get no estimate
rather than a guessed one; self-hosted OpenAI-compatible servers (`openai`) cost nothing per token.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED = "2025"


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float


# (provider, model prefix) → price; the longest matching prefix wins.
PRICES: dict[tuple[str, str], Price] = {
    ("deepseek", "deepseek-chat"): Price(0.28, 0.42),
    ("deepseek", "deepseek-reasoner"): Price(0.28, 0.42),
    ("groq", "llama-3.3-70b"): Price(0.59, 0.79),
    ("groq", "llama-3.1-8b"): Price(0.05, 0.08),
    ("groq", "openai/gpt-oss-120b"): Price(0.15, 0.75),
    ("groq", "openai/gpt-oss-20b"): Price(0.10, 0.50),
    ("gemini", "gemini-2.0-flash-lite"): Price(0.075, 0.30),
    ("gemini", "gemini-2.0-flash"): Price(0.10, 0.40),
    ("gemini", "gemini-2.5-flash-lite"): Price(0.10, 0.40),
    ("gemini", "gemini-2.5-flash"): Price(0.30, 2.50),
    ("gemini", "gemini-2.5-pro"): Price(1.25, 10.00),
    ("openai", ""): Price(0.0, 0.0),
}


def price_for(provider: str, model: str) -> Price | None:
    model = model.removeprefix("models/")
    matches = [
        (len(prefix), price)
        for (known_provider, prefix), price in PRICES.items()
        if known_provider == provider and model.startswith(prefix)
    ]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def estimate_cost(provider: str, model: str, tokens_in: int, tokens_out: int) -> float | None:
    price = price_for(provider, model)
    if price is None:
        return None
    return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1_000_000
