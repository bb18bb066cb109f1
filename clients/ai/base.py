"""What every provider adapter takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class OutputFormat:
    """The structured output asked for: a JSON Schema (OpenAI-compatible) and its Gemini subset."""

    name: str
    json_schema: dict[str, Any]
    gemini_schema: dict[str, Any]
    max_output_tokens: int


@dataclass(frozen=True)
class Completion:
    """One provider answer. `text` is the raw model output (may be blank or broken: the chain judges it)."""

    text: str
    tokens_in: int
    tokens_out: int
    model: str
    finish_reason: str | None


class ChatProvider(Protocol):
    name: str
    model: str
    max_concurrency: int

    async def complete(self, messages: list[ChatMessage], output: OutputFormat) -> Completion:
        """One HTTP request. Raises clients.http errors (typed) or InvalidModelOutput / ContentBlocked."""
        ...


def int_field(data: Any, *path: str) -> int:
    """A non-negative int at `path` in nested dicts, 0 when absent or not a number (usage is best effort)."""
    node = data
    for key in path:
        if not isinstance(node, dict):
            return 0
        node = node.get(key)
    if isinstance(node, bool) or not isinstance(node, int | float):
        return 0
    return max(0, int(node))
