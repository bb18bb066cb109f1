"""Shared HTTP plumbing for every upstream client: one session, capped bodies, typed errors, retries.

All upstream I/O (research sources, AI providers) goes through `request()` so that timeouts, body
limits, decoding errors and secret redaction behave the same everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import tenacity
from multidict import CIMultiDict, CIMultiDictProxy

VERSION = "0.1.0"
USER_AGENT = f"lesson-orchestrator/{VERSION} (+https://github.com/lesson-orchestrator)"
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
EXCERPT_CHARS = 300

T = TypeVar("T")
log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Secrets: every error message and log record passes through redact() before anyone sees it.
# --------------------------------------------------------------------------------------------

_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret value (API key, token) so it is masked in every error and log line."""
    if value and len(value.strip()) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value.strip())


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Replace every known secret (and `extra_secrets`) in `text` with ***."""
    with _secrets_lock:
        values = set(_secrets)
    values.update(s for s in extra_secrets if s and len(s) >= _MIN_SECRET_LEN)
    # Longest first so a secret containing another one is masked whole.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that masks registered secrets in the fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class UpstreamError(Exception):
    """Any failure talking to an upstream API. The message is redacted of registered secrets."""

    retryable = False

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = redact(message)
        super().__init__(f"{source}: {self.message}")


class UpstreamTimeout(UpstreamError):
    retryable = True


class UpstreamConnectionError(UpstreamError):
    retryable = True


class UpstreamProtocolError(UpstreamError):
    """The upstream answered, but not with what its API promises (HTML, bad JSON, huge body...)."""


class UpstreamHTTPError(UpstreamError):
    def __init__(self, source: str, status: int, body_excerpt: str, *, retry_after_s: float | None = None,
                 message: str | None = None) -> None:
        self.status = status
        self.body_excerpt = redact(body_excerpt)
        self.retry_after_s = retry_after_s
        super().__init__(source, message or f"HTTP {status}: {self.body_excerpt or '(empty body)'}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status >= 500 or self.status == 408


class RateLimited(UpstreamError):
    """Short-term throttling: the upstream asks to wait `retry_after_s` seconds (until `until`)."""

    def __init__(self, source: str, reason: str, *, retry_after_s: float | None = None,
                 until: datetime | None = None) -> None:
        self.reason = redact(reason)
        self.retry_after_s = retry_after_s
        self.until = until
        wait = f"; retry after {retry_after_s:.0f}s" if retry_after_s is not None else ""
        super().__init__(source, f"rate limited: {self.reason}{wait}")


class QuotaExhausted(UpstreamError):
    """The quota for a window is used up; nothing will succeed before `until`."""

    def __init__(self, source: str, reason: str, *, until: datetime | None = None) -> None:
        self.reason = redact(reason)
        self.until = until
        when = f" until {until.isoformat()}" if until else ""
        super().__init__(source, f"quota exhausted{when}: {self.reason}")


class ConfigurationError(UpstreamError):
    """A setting is missing or rejected by the upstream (401/403). Names the setting, never its value."""

    def __init__(self, source: str, setting: str, detail: str) -> None:
        self.setting = setting
        super().__init__(source, f"{detail} — check the setting {setting}")


# --------------------------------------------------------------------------------------------
# Sessions: one per event loop, lazily created (tests run many loops; production runs one).
# --------------------------------------------------------------------------------------------

# A session holds its loop, so weak keys would never expire: closed loops are dropped explicitly.
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def get_session() -> aiohttp.ClientSession:
    """The shared session of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _sessions if other.is_closed()]:
        del _sessions[stale]
    session = _sessions.get(loop)
    if session is None or session.closed:
        # We decompress ourselves: aiohttp silently accepts a truncated gzip stream and would
        # inflate an unbounded one; _decode_body() detects both.
        session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            auto_decompress=False,
            raise_for_status=False,
        )
        _sessions[loop] = session
    return session


async def close_session() -> None:
    """Close the running loop's shared session (call at shutdown and in test teardown)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    source: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        """The body as UTF-8 text; invalid UTF-8 is a protocol error, not silently replaced."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UpstreamProtocolError(
                self.source, f"HTTP {self.status} body is not valid UTF-8 (byte {exc.start})"
            ) from None

    def excerpt(self) -> str:
        text = self.body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        text = " ".join(text.split())
        return text[:EXCERPT_CHARS]

    def json(self) -> Any:
        """Parse the body as JSON, with a clear error when it is HTML, empty or broken."""
        text = self.text()
        stripped = text.lstrip("\ufeff \t\r\n")  # a UTF-8 BOM is legal before JSON text (RFC 8259 §8.1)
        if not stripped:
            raise UpstreamProtocolError(
                self.source, f"HTTP {self.status} with an empty body where JSON was expected"
            )
        if stripped[0] == "<":
            raise UpstreamProtocolError(
                self.source,
                f"HTTP {self.status} returned HTML ({self.content_type or 'no content-type'}) where JSON was "
                f"expected: {self.excerpt()[:120]}",
            )
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                self.source, f"HTTP {self.status} body is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                self.source, f"HTTP {self.status}: expected a JSON object, got {type(data).__name__}"
            )
        return data

    def retry_after_s(self, now: float | None = None) -> float | None:
        """The Retry-After header in seconds (delta-seconds or HTTP date), None when absent/unparsable."""
        return parse_retry_after(self.headers.get("Retry-After"), now=now)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


_GZIP_MAGIC = b"\x1f\x8b"


def _inflate_capped(source: str, data: bytes, limit: int, wbits: int, what: str) -> bytes:
    inflater = zlib.decompressobj(wbits=wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UpstreamProtocolError(source, f"corrupt {what} body ({exc})") from None
    if len(out) > limit:
        raise UpstreamProtocolError(source, f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise UpstreamProtocolError(source, f"truncated {what} body")
    return out


def _decode_body(source: str, encoding: str, data: bytes, limit: int) -> bytes:
    """Undo Content-Encoding with a size cap and truncation check.

    A gzip body without Content-Encoding is inflated too: Stack Exchange always compresses and
    proxies may strip the header.
    """
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip") or (encoding in ("", "identity") and data[:2] == _GZIP_MAGIC):
        return _inflate_capped(source, data, limit, 31, "gzip")
    if encoding == "deflate":
        # RFC says zlib-wrapped, some servers send raw deflate.
        wbits = 15 if data[:1] == b"\x78" else -15
        return _inflate_capped(source, data, limit, wbits, "deflate")
    if encoding in ("", "identity"):
        return data
    raise UpstreamProtocolError(source, f"unsupported Content-Encoding {encoding!r}")


async def _read_capped(source: str, resp: aiohttp.ClientResponse, limit: int) -> bytes:
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise UpstreamProtocolError(
            source, f"response body of {declared} bytes exceeds the {limit}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise UpstreamProtocolError(source, f"response body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def request(
    method: str,
    url: str,
    *,
    source: str,
    params: Mapping[str, str | int | float] | None = None,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    session: aiohttp.ClientSession | None = None,
) -> HttpResponse:
    """Send one request and read the whole (capped) body. Never raises for an HTTP status.

    `data` sends these exact bytes (e.g. a signed body); `json_body` lets aiohttp encode.

    Raises UpstreamTimeout / UpstreamConnectionError / UpstreamProtocolError for transport problems.
    """
    http = session or get_session()
    started = time.perf_counter()
    merged = CIMultiDict({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"})
    if headers:
        merged.update(headers)
    try:
        async with asyncio.timeout(timeout_s):
            async with http.request(
                method,
                url,
                params=dict(params) if params else None,
                headers=merged,
                json=json_body,
                data=data,
                timeout=aiohttp.ClientTimeout(total=None),  # the asyncio.timeout above owns the budget
                allow_redirects=True,
            ) as resp:
                raw = await _read_capped(source, resp, max_body_bytes)
                body = _decode_body(source, resp.headers.get("Content-Encoding", ""), raw, max_body_bytes)
                log.debug("%s %s %s -> %d, %d bytes in %.0f ms", source, method, _host(url), resp.status,
                          len(body), (time.perf_counter() - started) * 1000)
                return HttpResponse(
                    source=source, status=resp.status, headers=resp.headers, body=body, url=str(resp.url)
                )
    except TimeoutError:
        detail = f"no complete response within {timeout_s:g}s ({method} {_host(url)})"
        raise UpstreamTimeout(source, detail) from None
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamProtocolError(source, f"broken response body ({_first_line(exc)})") from None
    except aiohttp.ClientResponseError as exc:
        detail = f"invalid HTTP response ({exc.status} {_first_line(exc)})"
        raise UpstreamProtocolError(source, detail) from None
    except aiohttp.InvalidURL:
        raise UpstreamProtocolError(source, f"invalid URL for {source}: {_host(url)}") from None
    except aiohttp.ClientConnectionError as exc:
        detail = f"cannot reach {_host(url)} ({_first_line(exc)})"
        raise UpstreamConnectionError(source, detail) from None
    except aiohttp.ClientError as exc:
        detail = f"HTTP client error for {_host(url)} ({_first_line(exc)})"
        raise UpstreamConnectionError(source, detail) from None


def _host(url: str) -> str:
    # Never echo query strings: some APIs (YouTube, Stack Exchange before 2026) carry keys there.
    return url.split("?", 1)[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def error_for_status(response: HttpResponse, *, auth_setting: str | None = None) -> UpstreamError:
    """The generic typed error for a non-2xx response (callers first handle their API's own shapes)."""
    status = response.status
    if status in (401, 403) and auth_setting:
        return ConfigurationError(response.source, auth_setting, f"HTTP {status} (credentials rejected)")
    if status == 429:
        return RateLimited(response.source, f"HTTP 429: {response.excerpt()[:120]}",
                           retry_after_s=response.retry_after_s())
    return UpstreamHTTPError(
        response.source, status, response.excerpt(), retry_after_s=response.retry_after_s()
    )


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter inside a total time budget."""

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    budget_s: float = 30.0


@dataclass
class RetryTiming:
    """Injectable time sources: tests pass a fake clock/sleep/random and assert the waits."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    random: Callable[[], float] = random.random
    sleeps: list[float] = field(default_factory=list)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after_s is not None
    return isinstance(exc, UpstreamError) and bool(exc.retryable)


def backoff_delay(
    attempt: int, policy: RetryPolicy, rand: float, server_delay_s: float | None = None
) -> float:
    """Full-jitter delay after failed attempt number `attempt` (1-based); a server delay is a floor."""
    cap = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    delay = rand * cap
    if server_delay_s is not None:
        delay = max(delay, server_delay_s)
    return delay


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy = RetryPolicy(),
    timing: RetryTiming | None = None,
    retry_if: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """Run `call`, retrying transient upstream failures until attempts or the time budget run out.

    A retry is skipped (the last error raised) when its wait would overrun the budget, so a long
    server-provided delay ends the loop instead of sleeping past the caller's deadline.
    """
    timing = timing or RetryTiming()
    started = timing.clock()

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        server = getattr(exc, "retry_after_s", None)
        return backoff_delay(state.attempt_number, policy, timing.random(), server)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        elapsed = timing.clock() - started
        return elapsed + state.upcoming_sleep > policy.budget_s

    async def sleep(seconds: float) -> None:
        timing.sleeps.append(seconds)
        await timing.sleep(seconds)

    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(retry_if),
        sleep=sleep,
        reraise=True,
    )
    return await retrying(call)


_SECONDS_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)


def seconds_in_text(text: str) -> float | None:
    """First 'N seconds' / 'Ns' figure in a message (e.g. 'more requests available in 32322 seconds')."""
    match = _SECONDS_IN_TEXT.search(text)
    return float(match.group(1)) if match else None
