"""The completion webhook client against a real loopback receiver."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from clients import http
from clients.http import RetryPolicy
from clients.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, post_completion, sign, verify

SECRET = "Sentinel-Webhook-Secret-51c2"
PAYLOAD = {"module_id": "m-1", "request_id": "r-1", "status": "completed", "error": None, "lessons": 4,
           "completed_at": "2026-12-04T10:00:00+00:00"}


class Receiver:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return web.Response(status=status, text="receiver says no" if status >= 300 else "")


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(answers: list[int]) -> tuple[Receiver, str]:
        receiver = Receiver(answers)
        app = web.Application()
        app.router.add_post("/hooks/lessons", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return receiver, f"http://127.0.0.1:{port}/hooks/lessons"

    yield start
    for runner in runners:
        await runner.cleanup()
    await http.close_session()


def no_wait_timing() -> http.RetryTiming:
    async def sleep(_seconds: float) -> None:
        return None

    return http.RetryTiming(sleep=sleep, random=lambda: 1.0)


async def test_the_receiver_can_verify_the_signature_of_the_exact_body(receiver_factory) -> None:
    receiver, url = await receiver_factory([204])
    delivery = await post_completion(url, SECRET, PAYLOAD)
    assert delivery.delivered and delivery.attempts == 1 and delivery.status == 204
    headers, body = receiver.requests[0]
    assert json.loads(body) == PAYLOAD
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    stamp, signature, now = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], time.time()
    assert verify(SECRET, stamp, body, signature, now=now)
    assert not verify("other-secret", stamp, body, signature, now=now)
    assert not verify(SECRET, stamp, body + b" ", signature, now=now)


def test_an_old_timestamp_is_refused_even_with_a_valid_signature() -> None:
    body = b'{"status":"completed"}'
    then = "1700000000"
    signature = sign(SECRET, then, body)
    assert verify(SECRET, then, body, signature, now=1700000000 + 299)
    assert not verify(SECRET, then, body, signature, now=1700000000 + 301)
    assert not verify(SECRET, "not-a-number", body, signature, now=1700000000)


async def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(receiver_factory) -> None:
    receiver, url = await receiver_factory([503, 503, 204])
    timing = no_wait_timing()
    delivery = await post_completion(url, SECRET, PAYLOAD, timing=timing)
    assert delivery.delivered and delivery.attempts == 3
    assert timing.sleeps == [1.0, 2.0]  # full jitter at its cap: 1 s, then 2 s
    assert len(receiver.requests) == 3


async def test_a_receiver_that_keeps_failing_is_reported_not_raised(receiver_factory, caplog) -> None:
    _, url = await receiver_factory([500])
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=10.0, budget_s=30.0)
    delivery = await post_completion(url, SECRET, PAYLOAD, timing=no_wait_timing(), policy=policy)
    assert not delivery.delivered
    assert delivery.attempts == 3 and delivery.status == 500
    assert "500" in (delivery.error or "")
    assert SECRET not in (delivery.error or "")
    assert all(SECRET not in record.getMessage() for record in caplog.records)


async def test_an_unreachable_receiver_is_reported(receiver_factory) -> None:
    _, url = await receiver_factory([204])
    dead = url.replace(url.split(":")[2].split("/")[0], "9")  # port 9 (discard) is closed here
    delivery = await post_completion(dead, SECRET, PAYLOAD, timing=no_wait_timing())
    assert not delivery.delivered
    assert "cannot reach" in (delivery.error or "")
