"""What one source's search needs for its requests: config, retries, the gates and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from clients.http import (
    HttpResponse,
    QuotaExhausted,
    RateLimited,
    RetryTiming,
    UpstreamError,
    UpstreamProtocolError,
    request,
    with_retries,
)
from clients.research.config import ResearchConfig
from clients.research.gates import PROCESS_GATES, SourceGates

# When the upstream names no window: an hour for a quota, a minute for a throttle.
DEFAULT_QUOTA_BLOCK_S = 3600.0
DEFAULT_THROTTLE_BLOCK_S = 60.0

# Turns a response into the source's typed error, or None when the response is usable.
Classifier = Callable[[HttpResponse], UpstreamError | None]


@dataclass
class SourceCall:
    source: str
    config: ResearchConfig
    gates: SourceGates = field(default_factory=lambda: PROCESS_GATES)
    clock: Callable[[], float] = time.time  # wall clock (epoch s): quota windows are wall-clock
    timing: RetryTiming = field(default_factory=RetryTiming)
    requests: int = 0

    def now(self) -> float:
        return self.clock()

    def remember_limit(self, exc: BaseException) -> float | None:
        """Stop this source for the window an exhausted quota or a long throttle announces.

        Returns the epoch second the source is blocked until, or None for other errors.
        """
        if isinstance(exc, QuotaExhausted):
            until = exc.until.timestamp() if exc.until else self.now() + DEFAULT_QUOTA_BLOCK_S
        elif isinstance(exc, RateLimited):
            wait = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_THROTTLE_BLOCK_S
            until = self.now() + wait
        else:
            return None
        self.gates.block(self.source, until, exc.message)
        return until

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int | float],
        headers: Mapping[str, str],
        classify: Classifier,
        gate_key: str | None = None,
    ) -> HttpResponse:
        """GET with retries on transient failures; `gate_key` honours a per-method backoff first."""
        if gate_key is not None:
            await self._respect_backoff(gate_key)

        async def attempt() -> HttpResponse:
            self.requests += 1
            response = await request(
                "GET",
                url,
                source=self.source,
                params=params,
                headers=headers,
                timeout_s=self.config.request_timeout_s,
            )
            try:
                error = classify(response)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                # An error body in a shape the API does not document: report it, don't crash on it.
                error = UpstreamProtocolError(
                    self.source, f"HTTP {response.status} with an unexpected body: {response.excerpt()[:160]}"
                )
            if error is not None:
                raise error
            return response

        return await with_retries(attempt, policy=self.config.retry, timing=self.timing)

    async def _respect_backoff(self, key: str) -> None:
        block = self.gates.blocked(key, self.now())
        if block is None:
            return
        wait = block.until - self.now()
        if wait > self.config.max_backoff_wait_s:
            raise RateLimited(self.source, block.reason, retry_after_s=wait)
        await self.timing.sleep(wait)
