"""Approximate AI list prices, USD per million tokens, for `usage` cost estimates.

Source: the providers' public pricing pages (api-docs.deepseek.com/quick_start/pricing,
groq.com/pricing, ai.google.dev/gemini-api/docs/pricing) as last checked by the developers in 2025;
cache-miss input prices, standard tier. Prices change often: treat the estimate as an order of
magnitude and update this table when a provider changes its prices, or set `AI_PRICES` (read by
`lessonctl usage`, see `parse_prices`). Models not listed get no estimate rather than a guessed one;
self-hosted OpenAI-compatible servers (`openai`) cost nothing per token.
"""

from __future__ import annotations

from collections.abc import Mapping
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


PriceTable = Mapping[tuple[str, str], Price]


class PriceSpecError(ValueError):
    """An AI_PRICES value that cannot be read; the message shows the expected form."""


def parse_prices(spec: str) -> dict[tuple[str, str], Price]:
    """`provider:model-prefix=IN/OUT` entries (USD per million tokens), comma-separated.

    Lets an operator price the models they actually use, at their contract's prices, without waiting
    for this table to be updated (e.g. `groq:llama-3.3-70b=0.59/0.79`).
    """
    prices: dict[tuple[str, str], Price] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            key, value = entry.split("=", 1)
            provider, prefix = key.split(":", 1)
            price_in, price_out = (float(number) for number in value.split("/", 1))
        except ValueError:
            raise PriceSpecError(
                f"AI_PRICES entry {entry!r} is not provider:model-prefix=IN/OUT "
                "(USD per million tokens, e.g. groq:llama-3.3-70b=0.59/0.79)"
            ) from None
        if price_in < 0 or price_out < 0:
            raise PriceSpecError(f"AI_PRICES entry {entry!r} has a negative price")
        prices[(provider.strip(), prefix.strip())] = Price(price_in, price_out)
    return prices


def price_for(provider: str, model: str, overrides: PriceTable | None = None) -> Price | None:
    """The longest matching model prefix; an operator's override beats the built-in table."""
    model = model.removeprefix("models/")
    for table in (overrides or {}, PRICES):
        matches = [
            (len(prefix), price)
            for (known_provider, prefix), price in table.items()
            if known_provider == provider and model.startswith(prefix)
        ]
        if matches:
            return max(matches, key=lambda match: match[0])[1]
    return None


def estimate_cost(
    provider: str, model: str, tokens_in: int, tokens_out: int, overrides: PriceTable | None = None
) -> float | None:
    price = price_for(provider, model, overrides)
    if price is None:
        return None
    return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1_000_000
