"""AI-specific failures on top of clients.http's typed upstream errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clients.http import UpstreamError, redact


class InvalidModelOutput(UpstreamError):
    """The provider itself reports that the model produced unusable JSON (Groq `json_validate_failed`)."""


class ContentBlocked(UpstreamError):
    """The provider refused the prompt (Gemini `promptFeedback.blockReason`); retrying will not help."""


@dataclass(frozen=True)
class ProviderFailure:
    """Why one provider did not produce the result (kept in the result as the fallback record)."""

    provider: str
    model: str
    kind: str  # configuration | rate_limited | quota | server | timeout | invalid_output | rejected | budget
    message: str
    attempts: int
    tokens_in: int = 0
    tokens_out: int = 0

    def __str__(self) -> str:
        tries = "attempt" if self.attempts == 1 else "attempts"
        return f"{self.provider} ({self.model}): {self.message} [{self.kind}, {self.attempts} {tries}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AllProvidersFailed(Exception):
    """No provider could answer; the message lists every provider's reason (never a key value)."""

    def __init__(self, task: str, failures: Sequence[ProviderFailure], skipped: Sequence[str] = ()) -> None:
        self.task = task
        self.failures = list(failures)
        self.skipped = list(skipped)
        parts = [str(failure) for failure in self.failures] + list(self.skipped)
        detail = "; ".join(parts) if parts else "no provider is configured"
        super().__init__(redact(f"no AI provider could generate the {task}: {detail}"))
