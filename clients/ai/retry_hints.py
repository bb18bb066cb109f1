"""Retry hints in the many shapes AI providers send them.

- `Retry-After: 20` (seconds) or an HTTP date — every provider may send it; Groq always does on 429.
- Groq `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens`: Go durations such as `2m59.56s`, `7.66s`.
- Error text: "Please try again in 1.984999999s" (Groq, OpenAI), "Please retry in 20.04s." (Gemini 2026).
- Gemini `google.rpc.RetryInfo.retryDelay`: protobuf duration strings such as `26s`, `34.4s`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clients.http import parse_retry_after

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|ms|us|µs|ns|m|s))+$")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_IN_TEXT = re.compile(r"(?:try again|retry)\s+in\s+((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)", re.IGNORECASE)


def parse_duration(value: str | None) -> float | None:
    """'2m59.56s' / '26s' / '500ms' → seconds; None when it is not a duration."""
    if not value:
        return None
    text = value.strip()
    if not _DURATION.match(text):
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


def seconds_from_message(message: str) -> float | None:
    match = _IN_TEXT.search(message or "")
    return parse_duration(match.group(1)) if match else None


def openai_compatible_hint(headers: Mapping[str, str], message: str, error_type: str | None) -> float | None:
    """Seconds to wait after an OpenAI-compatible 429, best source first."""
    hint = parse_retry_after(headers.get("Retry-After"))
    if hint is not None:
        return hint
    hint = seconds_from_message(message)
    if hint is not None:
        return hint
    # Groq: the reset header of the limit that was hit (error type "tokens" or "requests").
    order = ("tokens", "requests") if error_type != "requests" else ("requests", "tokens")
    for which in order:
        hint = parse_duration(headers.get(f"x-ratelimit-reset-{which}"))
        if hint is not None:
            return hint
    return None


def gemini_retry_delay(details: Any) -> float | None:
    """`retryDelay` of the google.rpc.RetryInfo entry in an error's `details`."""
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration(str(detail.get("retryDelay", "")))
    return None


def gemini_quota_ids(details: Any) -> list[str]:
    ids: list[str] = []
    if not isinstance(details, list):
        return ids
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for violation in detail.get("violations") or []:
                if isinstance(violation, dict) and violation.get("quotaId"):
                    ids.append(str(violation["quotaId"]))
    return ids
