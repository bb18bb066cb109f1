"""AIChain against the sandbox's AI stand-ins over real loopback HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from clients import http
from clients.ai import AIChain, AllProvidersFailed, InMemoryLessonCache
from clients.ai.limits import limit_for
from sandbox.behaviour import Behaviour
from tests.clients.ai.conftest import (
    BRIEF,
    SPEC,
    FakeTime,
    Sandbox,
    ScriptedBehaviour,
    research_items,
    start_sandbox,
)
from tests.clients.loopback import serve


def chain_for(sandbox: Sandbox, fake_time: FakeTime, rand: float = 0.5, **env: str) -> AIChain:
    return AIChain.from_env(
        sandbox.env(**env), clock=fake_time.clock, sleep=fake_time.sleep, rand=lambda: rand
    )


@asynccontextmanager
async def scripted(
    script: dict[str, list[str | None]] | None = None, default: dict[str, str | None] | None = None
) -> AsyncIterator[Sandbox]:
    async with start_sandbox(ScriptedBehaviour(script, default)) as running:
        yield running


# ---------------------------------------------------------------------------------------------------------
# Happy paths per provider


async def test_plan_from_first_provider_with_usage(sandbox: Sandbox, fake_time: FakeTime) -> None:
    research = research_items(6)
    result = await chain_for(sandbox, fake_time).plan_lessons(BRIEF, research)
    assert [spec.number for spec in result.plan.lessons] == [1, 2, 3, 4]  # 6 research items → 4 lessons
    assert result.plan.lessons[0].title == "Python asyncio: Foundations"
    meta = result.meta
    assert (meta.provider, meta.model, meta.attempts, meta.cache_hit, meta.fallbacks) == (
        "deepseek",
        "deepseek-flash",
        1,
        False,
        [],
    )
    assert meta.tokens_in > 100 and meta.tokens_out > 10
    assert sandbox.stats.requests == {"deepseek": 1}
    sent = sandbox.stats.last_body["deepseek"]
    assert sent["thinking"] == {"type": "disabled"}
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["model"] == "deepseek-flash"
    as_dict = result.to_dict()
    assert as_dict["meta"]["provider"] == "deepseek" and as_dict["failures"] == []
    assert as_dict["plan"]["lessons"][0]["number"] == 1


async def test_lesson_cites_research_and_is_sanitized(sandbox: Sandbox, fake_time: FakeTime) -> None:
    research = research_items(3)
    result = await chain_for(sandbox, fake_time).generate_lesson(BRIEF, SPEC, research)
    lesson = result.lesson
    assert lesson.number == 1 and lesson.title == SPEC.title
    assert lesson.sources == [item.url for item in research]
    for section in ("## Objectives", "## Worked examples", "## Exercises", "## Further reading"):
        assert section in lesson.content_markdown
    assert f"]({research[0].url})" in lesson.content_markdown
    assert len(result.cache_key) == 64


async def test_gemini_request_uses_response_schema_and_counts_thoughts(
    sandbox: Sandbox, fake_time: FakeTime
) -> None:
    chain = chain_for(sandbox, fake_time, AI_PROVIDERS="gemini")
    result = await chain.plan_lessons(BRIEF, research_items(2))
    assert result.meta.provider == "gemini" and result.meta.model == "gemini-3.5-flash"
    sent = sandbox.stats.last_body["gemini"]
    config = sent["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["type"] == "OBJECT"
    assert "untrusted" in sent["systemInstruction"]["parts"][0]["text"]
    assert result.meta.tokens_out > 16  # answer tokens + 16 thinking tokens reported by the stand-in


async def test_openai_compatible_server_works_without_a_key(sandbox: Sandbox, fake_time: FakeTime) -> None:
    chain = chain_for(sandbox, fake_time, AI_PROVIDERS="openai")
    result = await chain.generate_lesson(BRIEF, SPEC, research_items(2))
    assert result.meta.provider == "openai" and result.meta.model == "qwen3:8b"
    sent = sandbox.stats.last_body["openai"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "lesson"


# ---------------------------------------------------------------------------------------------------------
# Fallback order


async def test_rate_limited_first_provider_falls_back_after_its_retries(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "429"}) as sandbox:
        result = await chain_for(sandbox, fake_time).plan_lessons(BRIEF, research_items())
        assert result.meta.provider == "groq"
        assert sandbox.stats.requests["deepseek"] == 3  # AI_MAX_ATTEMPTS_PER_PROVIDER default
        # DeepSeek's concurrency 429 has no hint: exponential backoff, jitter injected as 0.5.
        assert fake_time.sleeps == [0.5, 1.0]
        assert result.meta.attempts == 4
        assert len(result.meta.fallbacks) == 1 and result.meta.fallbacks[0].startswith(
            "deepseek (deepseek-flash)"
        )
        assert "rate_limited" in result.meta.fallbacks[0]
        assert result.failures[0].kind == "rate_limited" and result.failures[0].attempts == 3


async def test_server_errors_fall_back(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "error", "groq": "error"}) as sandbox:
        result = await chain_for(sandbox, fake_time, AI_MAX_ATTEMPTS_PER_PROVIDER="2").plan_lessons(BRIEF, [])
        assert result.meta.provider == "gemini"
        assert [f.kind for f in result.failures] == ["server", "server"]
        assert sandbox.stats.requests == {"deepseek": 2, "groq": 2, "gemini": 1}
        assert "HTTP 503" in result.meta.fallbacks[0]


async def test_rejected_key_moves_on_at_once_naming_the_setting(
    sandbox: Sandbox, fake_time: FakeTime
) -> None:
    chain = chain_for(sandbox, fake_time, DEEPSEEK_API_KEY="sk-wrong-key-for-test")
    result = await chain.plan_lessons(BRIEF, [])
    assert result.meta.provider == "groq"
    assert sandbox.stats.requests["deepseek"] == 1
    assert fake_time.sleeps == []
    failure = result.failures[0]
    assert failure.kind == "configuration" and "DEEPSEEK_API_KEY" in failure.message
    assert "Authentication Fails" in failure.message


async def test_retired_model_is_a_configuration_failure(sandbox: Sandbox, fake_time: FakeTime) -> None:
    result = await chain_for(sandbox, fake_time, DEEPSEEK_MODEL="deepseek-chat").plan_lessons(BRIEF, [])
    assert result.meta.provider == "groq"
    assert "DEEPSEEK_MODEL" in result.failures[0].message and "Model Not Exist" in result.failures[0].message


async def test_unknown_local_model_names_openai_model(sandbox: Sandbox, fake_time: FakeTime) -> None:
    chain = chain_for(sandbox, fake_time, AI_PROVIDERS="openai,groq", OPENAI_MODEL="missing-model")
    result = await chain.plan_lessons(BRIEF, [])
    assert result.meta.provider == "groq"
    assert (
        "OPENAI_MODEL" in result.failures[0].message and "try pulling it first" in result.failures[0].message
    )


async def test_blank_json_gets_one_repair_then_next_provider(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "malformed"}) as sandbox:
        result = await chain_for(sandbox, fake_time).generate_lesson(BRIEF, SPEC, research_items())
        assert result.meta.provider == "groq"
        assert sandbox.stats.requests["deepseek"] == 2  # the answer + one repair request
        failure = result.failures[0]
        assert failure.kind == "invalid_output" and "blank" in failure.message
        assert failure.tokens_out > 0  # blank answers are billed too


async def test_json_repair_invalid_then_valid_stays_on_the_provider(fake_time: FakeTime) -> None:
    async with scripted(script={"deepseek": ["malformed", None]}) as sandbox:
        result = await chain_for(sandbox, fake_time).plan_lessons(BRIEF, research_items())
        assert result.meta.provider == "deepseek" and result.meta.attempts == 2
        assert result.meta.fallbacks == []
        repair = sandbox.stats.last_body["deepseek"]["messages"]
        assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
        assert "blank" in repair[-1]["content"] and "json" in repair[-1]["content"]


async def test_groq_json_validate_failed_is_repaired(fake_time: FakeTime) -> None:
    async with scripted(script={"groq": ["malformed", None]}) as sandbox:
        result = await chain_for(sandbox, fake_time, AI_PROVIDERS="groq").plan_lessons(BRIEF, [])
        assert result.meta.provider == "groq" and result.meta.attempts == 2
        assert "json_validate_failed" in sandbox.stats.last_body["groq"]["messages"][-1]["content"]


async def test_truncated_gemini_answer_is_repaired_with_a_hint(fake_time: FakeTime) -> None:
    async with scripted(script={"gemini": ["malformed", None]}) as sandbox:
        result = await chain_for(sandbox, fake_time, AI_PROVIDERS="gemini").plan_lessons(BRIEF, [])
        assert result.meta.provider == "gemini" and result.meta.attempts == 2
        contents = sandbox.stats.last_body["gemini"]["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        assert "cut off" in contents[-1]["parts"][0]["text"]


async def test_timeout_moves_on(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "timeout"}) as sandbox:
        chain = chain_for(
            sandbox, fake_time, AI_REQUEST_TIMEOUT_SECONDS="0.3", AI_MAX_ATTEMPTS_PER_PROVIDER="1"
        )
        result = await chain.plan_lessons(BRIEF, [])
        assert result.meta.provider == "groq"
        assert result.failures[0].kind == "timeout"


# ---------------------------------------------------------------------------------------------------------
# Retry hints, waiting limits and the attempt budget


async def test_groq_retry_after_is_honoured(fake_time: FakeTime) -> None:
    async with scripted(script={"groq": ["429", "429"]}) as sandbox:
        result = await chain_for(sandbox, fake_time, rand=0.0, AI_PROVIDERS="groq").plan_lessons(BRIEF, [])
        assert result.meta.provider == "groq" and result.meta.attempts == 3
        assert fake_time.sleeps == [1.0, 1.0]  # retry-after: 1, not the (zero) jittered backoff
        assert result.meta.latency_ms == 2000  # the injected clock moved only by the two waits


async def test_gemini_retry_info_is_honoured(fake_time: FakeTime) -> None:
    async with scripted(script={"gemini": ["429"]}) as sandbox:
        result = await chain_for(sandbox, fake_time, rand=0.0, AI_PROVIDERS="gemini").plan_lessons(BRIEF, [])
        assert result.meta.provider == "gemini"
        assert fake_time.sleeps == [1.0]


async def test_long_retry_hint_moves_on_instead_of_waiting(fake_time: FakeTime) -> None:
    async with scripted(default={"groq": "429"}) as sandbox:
        chain = chain_for(sandbox, fake_time, AI_PROVIDERS="groq,gemini", AI_MAX_RETRY_WAIT_SECONDS="0.5")
        result = await chain.plan_lessons(BRIEF, [])
        assert result.meta.provider == "gemini"
        assert fake_time.sleeps == []
        assert "AI_MAX_RETRY_WAIT_SECONDS" in result.failures[0].message


async def test_attempt_budget_bounds_the_whole_call(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "error"}) as sandbox:
        chain = chain_for(sandbox, fake_time, AI_ATTEMPT_BUDGET="2", AI_MAX_ATTEMPTS_PER_PROVIDER="5")
        with pytest.raises(AllProvidersFailed) as caught:
            await chain.plan_lessons(BRIEF, [])
        assert sandbox.stats.requests == {"deepseek": 2}
        kinds = [failure.kind for failure in caught.value.failures]
        assert kinds == ["budget", "budget", "budget"]
        assert "attempt budget of 2" in str(caught.value)


# ---------------------------------------------------------------------------------------------------------
# Concurrency


class GateBehaviour(ScriptedBehaviour):
    """Holds every request until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def before(self, source: str) -> str | None:
        await self.gate.wait()
        return None


async def wait_until(
    condition: Callable[[], bool], describe: Callable[[], str], deadline_s: float = 30.0
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting: {describe()}")
        await asyncio.sleep(0.01)


async def test_per_provider_concurrency_limit(fake_time: FakeTime) -> None:
    behaviour = GateBehaviour()
    async with start_sandbox(behaviour) as sandbox:
        chain = chain_for(sandbox, fake_time, DEEPSEEK_MAX_CONCURRENCY="2")
        calls = [asyncio.create_task(chain.plan_lessons(BRIEF, [])) for _ in range(6)]
        limit = limit_for("deepseek", 2)
        try:
            # Six calls accounted for (2 at the stand-in, 4 queued at the limit): no other request can come.
            await wait_until(
                lambda: sandbox.stats.in_flight["deepseek"] == 2 and limit.waiting == 4,
                lambda: (
                    f"want 2 in flight + 4 queued: {sandbox.stats.in_flight['deepseek']} + {limit.waiting}"
                ),
            )
            assert sandbox.stats.requests["deepseek"] == 2
            fake_time.now += 5.0  # the queued four wait 5 s for a slot
        finally:
            behaviour.gate.set()  # never leave requests parked at the stand-in, even when the test fails
        results = await asyncio.gather(*calls)
        assert all(result.meta.provider == "deepseek" for result in results)
        # The wait for a slot is reported apart from the upstream call, so usage latency can leave it out.
        assert sorted(result.meta.queued_ms for result in results) == [0, 0, 5000, 5000, 5000, 5000]
        assert sandbox.stats.requests["deepseek"] == 6
        assert sandbox.stats.max_in_flight["deepseek"] == 2


# ---------------------------------------------------------------------------------------------------------
# Configuration, failures and secrets


async def test_providers_without_keys_are_skipped_and_reported(sandbox: Sandbox, fake_time: FakeTime) -> None:
    chain = chain_for(sandbox, fake_time, DEEPSEEK_API_KEY="", GROQ_API_KEY="")
    assert [p.name for p in chain.providers] == ["gemini"]
    assert [str(s) for s in chain.skipped] == [
        "deepseek skipped: DEEPSEEK_API_KEY is not set",
        "groq skipped: GROQ_API_KEY is not set",
    ]
    result = await chain.plan_lessons(BRIEF, [])
    assert result.meta.provider == "gemini"
    assert "deepseek" not in sandbox.stats.requests


def test_no_usable_provider_fails_fast_naming_a_setting() -> None:
    with pytest.raises(http.ConfigurationError) as caught:
        AIChain.from_env({})
    assert caught.value.setting == "DEEPSEEK_API_KEY"
    assert "GROQ_API_KEY is not set" in str(caught.value)


async def test_all_providers_failed_is_readable(fake_time: FakeTime) -> None:
    async with scripted(default={"deepseek": "error", "groq": "429", "gemini": "malformed"}) as sandbox:
        chain = chain_for(sandbox, fake_time, AI_MAX_ATTEMPTS_PER_PROVIDER="1", AI_ATTEMPT_BUDGET="10")
        with pytest.raises(AllProvidersFailed) as caught:
            await chain.generate_lesson(BRIEF, SPEC, [])
        text = str(caught.value)
        assert text.startswith("no AI provider could generate the lesson 1: ")
        assert "deepseek (deepseek-flash): HTTP 503" in text
        assert "groq (llama-3.3-70b-versatile): rate limited: HTTP 429" in text
        assert "gemini (gemini-3.5-flash): unusable answer after one repair request" in text
        assert [f.provider for f in caught.value.failures] == ["deepseek", "groq", "gemini"]


async def test_key_values_never_leak(
    sandbox: Sandbox, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sentinels = {
        "DEEPSEEK_API_KEY": "sk-SENTINEL-deepseek-7f3a",
        "GROQ_API_KEY": "gsk_SENTINEL_groq_91b2",
        "GEMINI_API_KEY": "SENTINEL-gemini-55aa",
    }
    chain = chain_for(sandbox, fake_time, **sentinels)
    with pytest.raises(AllProvidersFailed) as caught:
        await chain.plan_lessons(BRIEF, [])
    everything = [str(caught.value), repr(caught.value.failures), repr(chain.providers), repr(chain.skipped)]
    everything += [record.getMessage() for record in caplog.records]
    for value in sentinels.values():
        assert all(value not in text for text in everything)
    for setting in sentinels:
        assert setting in str(caught.value)  # the failure names the setting instead


# ---------------------------------------------------------------------------------------------------------
# Lesson cache


async def test_lesson_cache_hit_makes_no_request(sandbox: Sandbox, fake_time: FakeTime) -> None:
    cache = InMemoryLessonCache()
    chain = chain_for(sandbox, fake_time)
    first = await chain.generate_lesson(BRIEF, SPEC, research_items(), cache=cache)
    assert sandbox.stats.requests["deepseek"] == 1 and len(cache) == 1
    other_user = BRIEF.model_copy(update={"module_id": "another-module"})
    second = await chain.generate_lesson(other_user, SPEC, research_items(), cache=cache)
    assert sandbox.stats.requests["deepseek"] == 1  # no HTTP request at all
    assert second.lesson == first.lesson
    assert second.meta.cache_hit and second.meta.attempts == 0 and second.meta.tokens_in == 0
    assert second.meta.provider == "deepseek"
    different = SPEC.model_copy(update={"number": 2, "title": "Python asyncio: Core techniques"})
    await chain.generate_lesson(BRIEF, different, research_items(), cache=cache)
    assert sandbox.stats.requests["deepseek"] == 2


async def test_unusable_cache_entry_is_ignored(sandbox: Sandbox, fake_time: FakeTime) -> None:
    cache = InMemoryLessonCache()
    chain = chain_for(sandbox, fake_time)
    first = await chain.generate_lesson(BRIEF, SPEC, [], cache=cache)
    await cache.put(first.cache_key, {"lesson": {"number": 1}, "meta": {}})
    again = await chain.generate_lesson(BRIEF, SPEC, [], cache=cache)
    assert not again.meta.cache_hit and sandbox.stats.requests["deepseek"] == 2


async def test_real_sandbox_behaviour_fault_rate(fake_time: FakeTime) -> None:
    behaviour = Behaviour(seed=3)
    behaviour.set_fault("deepseek", "error", 1.0)
    async with start_sandbox(behaviour) as sandbox:
        result = await chain_for(sandbox, fake_time, AI_MAX_ATTEMPTS_PER_PROVIDER="1").plan_lessons(BRIEF, [])
        assert result.meta.provider == "groq"
        assert behaviour.faults_served["deepseek"] == 1


async def test_key_echoed_by_an_upstream_is_redacted(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    async def echo(request: web.Request) -> web.Response:
        # A misbehaving proxy that repeats the credentials it got in its error message.
        message = f"upstream refused header {request.headers.get('Authorization')}"
        return web.json_response({"error": {"message": message, "type": "server_error"}}, status=500)

    app = web.Application()
    app.router.add_post("/chat/completions", echo)
    caplog.set_level(logging.DEBUG)
    secret = "sk-SENTINEL-echoed-4242"
    async with serve(app) as base_url:
        env = {
            "AI_PROVIDERS": "deepseek",
            "DEEPSEEK_BASE_URL": base_url,
            "DEEPSEEK_API_KEY": secret,
            "AI_MAX_ATTEMPTS_PER_PROVIDER": "2",
        }
        chain = AIChain.from_env(env, clock=fake_time.clock, sleep=fake_time.sleep, rand=lambda: 0.0)
        with pytest.raises(AllProvidersFailed) as caught:
            await chain.plan_lessons(BRIEF, [])
    texts = [str(caught.value), repr(caught.value.failures)] + [r.getMessage() for r in caplog.records]
    assert "Bearer ***" in str(caught.value)
    assert all(secret not in text for text in texts)


class BrokenCache:
    """A cache whose database is down (e.g. PostgreSQL restarting)."""

    async def get(self, key: str) -> dict | None:
        raise ConnectionRefusedError("cache database is down")

    async def put(self, key: str, value: dict) -> None:
        raise ConnectionRefusedError("cache database is down")


async def test_cache_outage_costs_tokens_not_the_lesson(
    sandbox: Sandbox, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    result = await chain_for(sandbox, fake_time).generate_lesson(BRIEF, SPEC, [], cache=BrokenCache())
    assert result.meta.provider == "deepseek" and not result.meta.cache_hit
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cache read failed" in w for w in warnings) and any(
        "cache write failed" in w for w in warnings
    )
