"""Provider adapters against the real captured bodies in /work/shared/fixtures, served over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from clients import http
from clients.ai.base import ChatMessage, Completion
from clients.ai.chain import PLAN_FORMAT
from clients.ai.errors import InvalidModelOutput
from clients.ai.gemini import GeminiProvider
from clients.ai.openai_compat import OpenAICompatibleProvider
from clients.ai.settings import ProviderConfig
from tests.clients.loopback import serve

FIXTURES = Path(__file__).parent / "fixtures"  # real captured bodies; provenance in fixtures/SOURCES.md

MESSAGES = [ChatMessage("system", "Answer in json."), ChatMessage("user", "TASK: lesson_plan")]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@asynccontextmanager
async def upstream(
    status: int, body: Any, headers: dict[str, str] | None = None, seen: list[web.Request] | None = None
) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        if seen is not None:
            await request.read()
            seen.append(request)
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    async with serve(app) as base_url:
        yield base_url


def openai_provider(
    name: str, base_url: str, key: str | None = "sk-test-key-1234"
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(ProviderConfig(name, base_url, key, f"{name}-model", 2), timeout_s=5)


def gemini_provider(base_url: str) -> GeminiProvider:
    return GeminiProvider(
        ProviderConfig("gemini", base_url, "gem-test-key-1234", "gemini-3.5-flash", 2), timeout_s=5
    )


@pytest.fixture(autouse=True)
async def _close_session() -> AsyncIterator[None]:
    yield
    await http.close_session()


@pytest.mark.parametrize(
    ("provider", "name", "tokens", "model", "text_check"),
    [
        ("deepseek", "deepseek_chat_completion.json", (13, 300), "deepseek-chat", lambda t: "Holiday" in t),
        (
            "deepseek",
            "deepseek_chat_completion_json_mode.json",
            (495, 144),
            "deepseek-reasoner",
            lambda t: json.loads(t)["temperature"] == 7,
        ),
        (
            "groq",
            "groq_chat_completion.json",
            (45, 607),
            "llama-3.3-70b-versatile",
            lambda t: "Luminaria" in t,
        ),
        (
            "openai",
            "ollama_chat_completion.json",
            (26, 56),
            "qwen3.8-gsq-rco:27b-iq3_s-text",
            lambda t: t == "51",
        ),
        (
            "openai",
            "vllm_chat_completion.json",
            (69, 29),
            "swiss-ai/Apertus-v1.5-70B",
            lambda t: json.loads(t)["canton"] == "VS",
        ),
    ],
)
async def test_openai_compatible_completions_parse(
    provider: str, name: str, tokens: tuple[int, int], model: str, text_check: Callable[[str], bool]
) -> None:
    async with upstream(200, fixture(name)) as base_url:
        completion = await openai_provider(provider, base_url).complete(MESSAGES, PLAN_FORMAT)
    assert (completion.tokens_in, completion.tokens_out) == tokens
    assert completion.model == model
    assert text_check(completion.text)
    # reasoning_content / reasoning never leak into the answer text
    assert "I have the result from the weather tool" not in completion.text


async def test_gemini_completion_parses_and_bills_thoughts() -> None:
    seen: list[web.Request] = []
    async with upstream(200, fixture("gemini_generate_content.json"), seen=seen) as base_url:
        completion = await gemini_provider(base_url).complete(MESSAGES, PLAN_FORMAT)
    assert isinstance(completion, Completion)
    assert completion.text.startswith("There are **3** r's")
    assert (completion.tokens_in, completion.tokens_out) == (9, 28 + 244)
    assert completion.model == "gemini-3-pro-preview" and completion.finish_reason == "STOP"
    assert seen[0].path == "/models/gemini-3.5-flash:generateContent"
    assert seen[0].headers["x-goog-api-key"] == "gem-test-key-1234"


async def test_gemini_skips_thought_parts() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "thinking...", "thought": True}, {"text": '{"a":'}, {"text": " 1}"}],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ]
    }
    async with upstream(200, body) as base_url:
        completion = await gemini_provider(base_url).complete(MESSAGES, PLAN_FORMAT)
    assert completion.text == '{"a": 1}' and completion.tokens_in == 0


@pytest.mark.parametrize(
    ("provider", "status", "name", "headers", "error_type", "check"),
    [
        (
            "deepseek",
            401,
            "deepseek_auth_error.json",
            None,
            http.ConfigurationError,
            lambda e: e.setting == "DEEPSEEK_API_KEY" and "Authentication Fails" in str(e),
        ),
        (
            "deepseek",
            402,
            "deepseek_insufficient_balance.json",
            None,
            http.UpstreamHTTPError,
            lambda e: e.status == 402 and "insufficient balance" in str(e) and not e.retryable,
        ),
        (
            "groq",
            429,
            "groq_rate_limit_error.json",
            None,
            http.RateLimited,
            lambda e: abs(e.retry_after_s - 1.984999999) < 1e-9,
        ),
        (
            "groq",
            429,
            "groq_rate_limit_error.json",
            {"retry-after": "3"},
            http.RateLimited,
            lambda e: e.retry_after_s == 3.0,
        ),
        (
            "groq",
            400,
            "groq_json_validate_failed.json",
            None,
            InvalidModelOutput,
            lambda e: "json_validate_failed" in str(e),
        ),
        (
            "openai",
            429,
            "openai_rate_limit_error.json",
            None,
            http.RateLimited,
            lambda e: e.retry_after_s == 20.0,
        ),
        (
            "openai",
            404,
            "ollama_model_not_found.json",
            None,
            http.ConfigurationError,
            lambda e: e.setting == "OPENAI_MODEL" and "try pulling it first" in str(e),
        ),
        (
            "openai",
            400,
            {"object": "error", "message": "bad", "type": "BadRequestError", "param": None, "code": 400},
            None,
            http.UpstreamHTTPError,
            lambda e: "bad" in str(e) and not e.retryable,
        ),
        (
            "deepseek",
            503,
            {"error": "overloaded"},
            {"Retry-After": "7"},
            http.UpstreamHTTPError,
            lambda e: e.retryable and e.retry_after_s == 7.0 and "overloaded" in str(e),
        ),
        (
            "groq",
            404,
            {"error": {"message": "Unknown request URL"}},
            None,
            http.ConfigurationError,
            lambda e: e.setting == "GROQ_BASE_URL",
        ),
    ],
)
async def test_openai_compatible_errors(
    provider: str,
    status: int,
    name: str | dict[str, Any],
    headers: dict[str, str] | None,
    error_type: type[Exception],
    check: Callable[[Any], bool],
) -> None:
    body = fixture(name) if isinstance(name, str) else name
    async with upstream(status, body, headers) as base_url:
        with pytest.raises(error_type) as caught:
            await openai_provider(provider, base_url).complete(MESSAGES, PLAN_FORMAT)
    assert check(caught.value), str(caught.value)


async def test_groq_reset_header_is_used_when_the_message_has_no_figure() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    headers = {"x-ratelimit-reset-requests": "2m59.56s", "x-ratelimit-reset-tokens": "7.66s"}
    async with upstream(429, body, headers) as base_url:
        with pytest.raises(http.RateLimited) as caught:
            await openai_provider("groq", base_url).complete(MESSAGES, PLAN_FORMAT)
    assert caught.value.retry_after_s == pytest.approx(179.56)


async def test_gemini_resource_exhausted_fixture_gives_retry_delay() -> None:
    async with upstream(429, fixture("gemini_resource_exhausted.json")) as base_url:
        with pytest.raises(http.RateLimited) as caught:
            await gemini_provider(base_url).complete(MESSAGES, PLAN_FORMAT)
    assert caught.value.retry_after_s == 26.0


@pytest.mark.parametrize(
    "mutate",
    [
        lambda body: body["error"]["details"][0]["violations"][0].update(
            quotaId="GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        ),
        lambda body: body["error"].update(message=body["error"]["message"] + " limit: 0, model: gemini-x"),
    ],
    ids=["per-day quota", "limit 0"],
)
async def test_gemini_quota_that_waiting_cannot_fix(mutate: Callable[[dict[str, Any]], None]) -> None:
    body = fixture("gemini_resource_exhausted.json")
    mutate(body)
    async with upstream(429, body) as base_url:
        with pytest.raises(http.QuotaExhausted):
            await gemini_provider(base_url).complete(MESSAGES, PLAN_FORMAT)


async def test_gemini_invalid_key_is_a_configuration_error() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    async with upstream(400, body) as base_url:
        with pytest.raises(http.ConfigurationError) as caught:
            await gemini_provider(base_url).complete(MESSAGES, PLAN_FORMAT)
    assert caught.value.setting == "GEMINI_API_KEY"


async def test_non_json_200_is_a_protocol_error() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text="<html>bad gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/chat/completions", handle)
    async with serve(app) as base_url:
        with pytest.raises(http.UpstreamProtocolError):
            await openai_provider("deepseek", base_url).complete(MESSAGES, PLAN_FORMAT)


async def test_openai_provider_sends_no_authorization_without_a_key() -> None:
    seen: list[web.Request] = []
    async with upstream(200, fixture("ollama_chat_completion.json"), seen=seen) as base_url:
        await openai_provider("openai", base_url, key=None).complete(MESSAGES, PLAN_FORMAT)
    assert "Authorization" not in seen[0].headers
    assert seen[0].path == "/chat/completions"
