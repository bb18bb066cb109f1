"""The signed completion call to the web app: POST JSON, `X-Lessons-Signature: sha256=<HMAC>`.

The receiver verifies HMAC-SHA256(secret, f"{timestamp}.{body}") with a constant-time compare and
rejects timestamps more than 5 minutes away from its clock (see README "Completion webhook").
A failing receiver is retried with backoff, then reported — never raised: the module's status is
already final when this runs, and a notification must not change it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from clients import http

SOURCE = "webhook"
TIMESTAMP_HEADER = "X-Lessons-Timestamp"
SIGNATURE_HEADER = "X-Lessons-Signature"
RETRY = http.RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=10.0, budget_s=30.0)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance_s: int = 300
) -> bool:
    """What a receiver does (also used by our tests): constant-time compare inside the time window."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def post_completion(
    url: str,
    secret: str,
    payload: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.time,
    timing: http.RetryTiming | None = None,
    policy: http.RetryPolicy = RETRY,
) -> Delivery:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    attempts = 0

    async def attempt() -> http.HttpResponse:
        nonlocal attempts
        attempts += 1
        # Signed per attempt: a retry after minutes must not arrive with a stale timestamp.
        timestamp = str(int(clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        response = await http.request("POST", url, source=SOURCE, headers=headers, data=body)
        if response.status >= 300:
            raise http.error_for_status(response)
        return response

    try:
        response = await http.with_retries(attempt, policy=policy, timing=timing, retry_if=_retryable)
    except http.UpstreamError as exc:
        status = getattr(exc, "status", None)
        return Delivery(False, attempts, status, http.redact(exc.message, [secret]))
    return Delivery(True, attempts, response.status)


def _retryable(exc: BaseException) -> bool:
    # Rate limits without a hint are retried too: the receiver is ours, not a public API.
    return isinstance(exc, http.RateLimited) or http.is_retryable(exc)
