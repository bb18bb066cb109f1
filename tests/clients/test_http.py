"""clients.http against real loopback servers: decoding, limits, typed errors, retries, redaction."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from clients import http
from tests.clients.loopback import serve

SENTINEL_KEY = "sk-SENTINEL-http-0123456789"

PAYLOAD = {"items": [{"title": "caf\u00e9 &amp; tea", "n": i} for i in range(50)]}
GZ = gzip.compress(json.dumps(PAYLOAD).encode())


class FakeTiming:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, randoms: list[float]) -> None:
        self.now = 1000.0
        self.randoms = list(randoms)
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def random(self) -> float:
        return self.randoms.pop(0)

    def timing(self) -> http.RetryTiming:
        return http.RetryTiming(clock=self.clock, sleep=self.sleep, random=self.random)


def build_app(seen: dict[str, list[str]], hang: asyncio.Event) -> web.Application:
    async def record(request: web.Request) -> None:
        seen.setdefault(request.path, []).append(request.headers.get("User-Agent", ""))

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(PAYLOAD)

    async def gz_header(request: web.Request) -> web.Response:
        return web.Response(body=GZ, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def gz_no_header(request: web.Request) -> web.Response:
        return web.Response(body=GZ, content_type="application/json")

    async def gz_truncated(request: web.Request) -> web.Response:
        return web.Response(body=GZ[: len(GZ) // 2], headers={"Content-Encoding": "gzip"})

    async def deflate(request: web.Request) -> web.Response:
        body = zlib.compress(json.dumps(PAYLOAD).encode())
        return web.Response(body=body, headers={"Content-Encoding": "deflate"})

    async def bom(request: web.Request) -> web.Response:
        body = b"\xef\xbb\xbf" + json.dumps(PAYLOAD).encode()
        return web.Response(body=body, content_type="application/json")

    async def html(request: web.Request) -> web.Response:
        page = "<!DOCTYPE html><html><body>Bad gateway</body></html>"
        return web.Response(text=page, content_type="text/html")

    async def bad_utf8(request: web.Request) -> web.Response:
        return web.Response(body=b'{"title": "\xff\xfe broken"}', content_type="application/json")

    async def bad_json(request: web.Request) -> web.Response:
        return web.Response(text='{"items": [1, 2', content_type="application/json")

    async def huge(request: web.Request) -> web.StreamResponse:
        # Chunked, no Content-Length: the cap must trip while streaming.
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b" " * 65536)
        await resp.write_eof()
        return resp

    async def bomb(request: web.Request) -> web.Response:
        body = gzip.compress(b" " * (8 * 1024 * 1024))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def slow(request: web.Request) -> web.Response:
        await hang.wait()
        return web.json_response({})

    async def echo_auth(request: web.Request) -> web.Response:
        return web.Response(status=401, text=f"bad credentials: {request.headers.get('Authorization')}")

    async def limited(request: web.Request) -> web.Response:
        return web.Response(status=429, text="Retry later\n", headers={"Retry-After": "7"})

    app = web.Application()
    for path, handler in {
        "/ok": ok, "/gz": gz_header, "/gz-raw": gz_no_header, "/gz-truncated": gz_truncated,
        "/deflate": deflate, "/bom": bom, "/html": html, "/bad-utf8": bad_utf8, "/bad-json": bad_json,
        "/huge": huge, "/bomb": bomb, "/slow": slow, "/echo-auth": echo_auth, "/limited": limited,
    }.items():
        app.router.add_get(path, handler)
    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, list[str]]]]:
    seen: dict[str, list[str]] = {}
    hang = asyncio.Event()
    async with serve(build_app(seen, hang)) as base:
        yield base, seen
        hang.set()
    await http.close_session()


@pytest.fixture
def sentinel() -> Iterator[str]:
    http.register_secret(SENTINEL_KEY)
    yield SENTINEL_KEY


async def test_sends_project_user_agent_and_parses_json(server: tuple[str, dict[str, list[str]]]) -> None:
    base, seen = server
    resp = await http.request("GET", f"{base}/ok", source="t")
    assert resp.status == 200
    assert resp.json_object() == PAYLOAD
    (agent,) = seen["/ok"]
    assert agent == http.USER_AGENT
    assert agent.startswith("lesson-orchestrator/") and "urllib" not in agent


@pytest.mark.parametrize("path", ["/gz", "/gz-raw", "/deflate", "/bom"])
async def test_decompresses_with_and_without_content_encoding(server: tuple[str, object], path: str) -> None:
    base, _ = server
    resp = await http.request("GET", f"{base}{path}", source="t")
    assert resp.json_object() == PAYLOAD


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/gz-truncated", "truncated gzip"),
        ("/html", "HTML"),
        ("/bad-utf8", "not valid UTF-8"),
        ("/bad-json", "not valid JSON"),
        ("/huge", "exceeds the 1048576-byte limit"),
        ("/bomb", "decompressed body exceeds"),
    ],
)
async def test_bad_bodies_raise_protocol_errors(server: tuple[str, object], path: str, fragment: str) -> None:
    base, _ = server
    with pytest.raises(http.UpstreamProtocolError) as caught:
        resp = await http.request("GET", f"{base}{path}", source="t", max_body_bytes=1024 * 1024)
        resp.json()
    assert fragment in str(caught.value)
    assert caught.value.source == "t"


async def test_timeout_is_typed(server: tuple[str, object]) -> None:
    base, _ = server
    with pytest.raises(http.UpstreamTimeout) as caught:
        await http.request("GET", f"{base}/slow", source="t", timeout_s=0.2)
    assert "0.2s" in str(caught.value)


async def test_connection_refused_is_typed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The socket is closed: nothing listens on that port now.
    with pytest.raises(http.UpstreamConnectionError):
        await http.request("GET", f"http://127.0.0.1:{port}/x?key=abc", source="t", timeout_s=5)
    await http.close_session()


async def test_401_names_the_setting_never_the_key(server: tuple[str, object], sentinel: str) -> None:
    base, _ = server
    auth = {"Authorization": f"Bearer {sentinel}"}
    resp = await http.request("GET", f"{base}/echo-auth", source="t", headers=auth)
    assert sentinel in resp.text()  # the server really echoed it; the error must not
    error = http.error_for_status(resp, auth_setting="EXAMPLE_API_KEY")
    assert isinstance(error, http.ConfigurationError)
    assert error.setting == "EXAMPLE_API_KEY"
    assert "EXAMPLE_API_KEY" in str(error)
    assert sentinel not in str(error)
    generic = http.error_for_status(resp)
    assert isinstance(generic, http.UpstreamHTTPError)
    assert sentinel not in str(generic) and sentinel not in generic.body_excerpt
    assert "***" in generic.body_excerpt


async def test_429_with_retry_after(server: tuple[str, object]) -> None:
    base, _ = server
    resp = await http.request("GET", f"{base}/limited", source="t")
    error = http.error_for_status(resp)
    assert isinstance(error, http.RateLimited)
    assert error.retry_after_s == 7.0


async def test_request_log_line_has_no_query_string(server: tuple[str, object], sentinel: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    base, _ = server
    with caplog.at_level(logging.DEBUG, logger="clients.http"):
        await http.request("GET", f"{base}/ok", source="t", params={"key": sentinel})
    assert f"t GET {base}/ok -> 200" in caplog.text
    assert sentinel not in caplog.text


def test_redacting_filter_masks_log_records(sentinel: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.http.redaction")
    logger.addFilter(http.RedactingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("calling with key=%s", sentinel)
    assert caplog.records
    assert all(sentinel not in r.getMessage() for r in caplog.records)
    assert "key=***" in caplog.text


def test_retry_after_http_date() -> None:
    assert http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert http.parse_retry_after("soon") is None
    assert http.parse_retry_after("3") == 3.0


def test_full_jitter_delays() -> None:
    policy = http.RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    assert [http.backoff_delay(n, policy, 0.5) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.5, 2.5]
    assert http.backoff_delay(1, policy, 0.1, server_delay_s=3.0) == 3.0


async def test_retries_5xx_with_jittered_backoff_then_succeeds() -> None:
    fake = FakeTiming(randoms=[0.5, 0.25])
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise http.UpstreamHTTPError("t", 503, "busy")
        return "done"

    policy = http.RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=8.0, budget_s=60)
    assert await http.with_retries(flaky, policy=policy, timing=fake.timing()) == "done"
    assert len(calls) == 3
    assert fake.sleeps == [0.5, 0.5]  # 0.5*1s, then 0.25*2s


async def test_server_delay_is_honoured_and_budget_stops_retrying() -> None:
    fake = FakeTiming(randoms=[0.0, 0.0, 0.0])
    calls: list[int] = []

    async def throttled() -> str:
        calls.append(1)
        raise http.RateLimited("t", "slow down", retry_after_s=4.0)

    policy = http.RetryPolicy(max_attempts=10, base_delay_s=1.0, budget_s=10)
    with pytest.raises(http.RateLimited):
        await http.with_retries(throttled, policy=policy, timing=fake.timing())
    # 4s + 4s fit in the 10s budget, a third 4s wait would not.
    assert fake.sleeps == [4.0, 4.0]
    assert len(calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        http.UpstreamHTTPError("t", 404, "nope"),
        http.ConfigurationError("t", "X_KEY", "rejected"),
        http.QuotaExhausted("t", "daily quota"),
        http.RateLimited("t", "no hint"),
        http.UpstreamProtocolError("t", "html"),
    ],
)
async def test_permanent_errors_are_not_retried(error: http.UpstreamError) -> None:
    fake = FakeTiming(randoms=[])
    calls: list[int] = []

    async def failing() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        await http.with_retries(failing, timing=fake.timing())
    assert calls == [1] and fake.sleeps == []


async def test_retries_real_timeouts(server: tuple[str, object]) -> None:
    base, _ = server
    fake = FakeTiming(randoms=[0.1, 0.1, 0.1])
    attempts: list[int] = []

    async def call() -> http.HttpResponse:
        attempts.append(1)
        return await http.request("GET", f"{base}/slow", source="t", timeout_s=0.05)

    with pytest.raises(http.UpstreamTimeout):
        await http.with_retries(call, policy=http.RetryPolicy(max_attempts=3), timing=fake.timing())
    assert len(attempts) == 3
    assert fake.sleeps == [pytest.approx(0.05), pytest.approx(0.1)]


def test_seconds_in_text() -> None:
    message = "too many requests from this IP, more requests available in 32322 seconds"
    assert http.seconds_in_text(message) == 32322
    assert http.seconds_in_text("Please retry in 20.04s.") == 20.04
    assert http.seconds_in_text("no number") is None
