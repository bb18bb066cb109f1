"""The AI fallback chain: providers in `AI_PROVIDERS` order, each retried when transient, then the next.

Per call:
- every HTTP request counts against one attempt budget (`AI_ATTEMPT_BUDGET`);
- a provider is retried on 429 / 5xx / timeouts up to `AI_MAX_ATTEMPTS_PER_PROVIDER` times, waiting what the
  provider asks for (Retry-After, Groq reset headers, Gemini RetryInfo) or an exponential backoff; a wait
  longer than `AI_MAX_RETRY_WAIT_SECONDS` moves on to the next provider instead of sleeping;
- bad credentials, unknown models, empty balance, exhausted daily quota: next provider at once;
- an answer that is blank or does not validate gets ONE repair request (the error is sent back), then the
  next provider;
- at most `{PROVIDER}_MAX_CONCURRENCY` requests per provider are in flight in this process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from clients import http
from clients.ai.base import ChatMessage, ChatProvider, Completion, OutputFormat
from clients.ai.cache import LessonCache
from clients.ai.errors import AllProvidersFailed, ContentBlocked, InvalidModelOutput, ProviderFailure
from clients.ai.gemini import GeminiProvider
from clients.ai.limits import limit_for
from clients.ai.openai_compat import OpenAICompatibleProvider
from clients.ai.settings import ChainSettings, SkippedProvider, load_ai_settings
from domain.lessons import (
    Lesson,
    LessonPlan,
    LessonSpec,
    ModuleBrief,
    OutputInvalid,
    lesson_gemini_schema,
    lesson_json_schema,
    parse_lesson,
    parse_plan,
    plan_gemini_schema,
    plan_json_schema,
)
from domain.prompts import (
    PROMPT_VERSION,
    Prompt,
    build_lesson_prompt,
    build_plan_prompt,
    build_repair_message,
    lesson_cache_key,
    research_block,
)
from domain.research import ResearchItem
from domain.sanitize import sanitize_markdown

log = logging.getLogger(__name__)
T = TypeVar("T")

PLAN_FORMAT = OutputFormat("lesson_plan", plan_json_schema(), plan_gemini_schema(), max_output_tokens=2048)
LESSON_FORMAT = OutputFormat("lesson", lesson_json_schema(), lesson_gemini_schema(), max_output_tokens=8192)
BACKOFF = http.RetryPolicy(base_delay_s=1.0, max_delay_s=20.0)


@dataclass(frozen=True)
class GenerationMeta:
    """How a result was produced. Tokens are those spent at the answering provider (repair included);
    `attempts` counts every HTTP request of the call across providers; `latency_ms` is the whole call,
    waits and fallbacks included; `fallbacks` says why earlier providers did not answer."""

    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    attempts: int
    cache_hit: bool = False
    fallbacks: list[str] = field(default_factory=list)
    prompt_version: str = PROMPT_VERSION
    # Part of latency_ms the answering provider's call waited for a concurrency slot (*_MAX_CONCURRENCY).
    queued_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_ms": self.latency_ms,
            "attempts": self.attempts,
            "cache_hit": self.cache_hit,
            "fallbacks": list(self.fallbacks),
            "prompt_version": self.prompt_version,
            "queued_ms": self.queued_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationMeta:
        return cls(
            provider=str(data["provider"]),
            model=str(data["model"]),
            tokens_in=int(data.get("tokens_in", 0)),
            tokens_out=int(data.get("tokens_out", 0)),
            latency_ms=int(data.get("latency_ms", 0)),
            attempts=int(data.get("attempts", 0)),
            cache_hit=bool(data.get("cache_hit", False)),
            fallbacks=[str(item) for item in data.get("fallbacks", [])],
            prompt_version=str(data.get("prompt_version", PROMPT_VERSION)),
            queued_ms=int(data.get("queued_ms", 0)),
        )


@dataclass(frozen=True)
class PlanResult:
    plan: LessonPlan
    meta: GenerationMeta
    failures: list[ProviderFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "meta": self.meta.to_dict(),
            "failures": [failure.to_dict() for failure in self.failures],
        }


@dataclass(frozen=True)
class LessonResult:
    lesson: Lesson
    meta: GenerationMeta
    cache_key: str
    failures: list[ProviderFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.lesson.to_dict(),
            "meta": self.meta.to_dict(),
            "cache_key": self.cache_key,
            "failures": [failure.to_dict() for failure in self.failures],
        }


@dataclass
class _Budget:
    total: int
    used: int = 0

    @property
    def left(self) -> int:
        return self.total - self.used


@dataclass
class _Spent:
    attempts: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    queued_s: float = 0.0  # waiting for this process's concurrency slot at the provider

    def add(self, completion: Completion) -> None:
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out


def _failure_kind(exc: http.UpstreamError) -> str:
    if isinstance(exc, http.ConfigurationError):
        return "configuration"
    if isinstance(exc, http.QuotaExhausted):
        return "quota"
    if isinstance(exc, http.RateLimited):
        return "rate_limited"
    if isinstance(exc, http.UpstreamTimeout):
        return "timeout"
    if isinstance(exc, http.UpstreamConnectionError):
        return "connection"
    if isinstance(exc, http.UpstreamProtocolError):
        return "protocol"
    if isinstance(exc, http.UpstreamHTTPError):
        if exc.status == 402:
            return "billing"
        return "server" if exc.status >= 500 else "rejected"
    return "rejected"


def _is_transient(exc: http.UpstreamError) -> bool:
    if isinstance(exc, http.ConfigurationError | http.QuotaExhausted | ContentBlocked):
        return False
    if isinstance(exc, http.RateLimited | http.UpstreamTimeout | http.UpstreamConnectionError):
        return True
    # A 200 with a broken envelope (HTML from a proxy, truncated keep-alive stream) may well pass next time.
    if isinstance(exc, http.UpstreamProtocolError):
        return True
    return isinstance(exc, http.UpstreamHTTPError) and exc.retryable


class AIChain:
    def __init__(
        self,
        providers: Sequence[ChatProvider],
        *,
        settings: ChainSettings | None = None,
        skipped: Sequence[SkippedProvider] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.providers = list(providers)
        self.settings = settings or ChainSettings()
        self.skipped = list(skipped)
        self._clock = clock
        self._sleep = sleep
        self._rand = rand

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> AIChain:
        """Build from app settings; raises ConfigurationError when no provider is usable at all."""
        settings = load_ai_settings(env)
        if not settings.providers:
            first = settings.skipped[0].setting if settings.skipped else "AI_PROVIDERS"
            reasons = "; ".join(str(skip) for skip in settings.skipped)
            raise http.ConfigurationError("ai", first, f"no AI provider is usable ({reasons})")
        timeout = settings.chain.request_timeout_s
        providers: list[ChatProvider] = [
            GeminiProvider(config, timeout_s=timeout)
            if config.name == "gemini"
            else OpenAICompatibleProvider(config, timeout_s=timeout)
            for config in settings.providers
        ]
        for skip in settings.skipped:
            log.info("AI provider %s", skip)
        return cls(
            providers, settings=settings.chain, skipped=settings.skipped, clock=clock, sleep=sleep, rand=rand
        )

    # -----------------------------------------------------------------------------------------------------
    # Public API

    async def plan_lessons(self, module: ModuleBrief, research: Sequence[ResearchItem]) -> PlanResult:
        prompt = build_plan_prompt(module, research)
        plan, meta, failures = await self._generate("lesson plan", prompt, PLAN_FORMAT, parse_plan)
        return PlanResult(plan=plan, meta=meta, failures=failures)

    async def generate_lesson(
        self,
        module: ModuleBrief,
        spec: LessonSpec,
        research: Sequence[ResearchItem],
        *,
        cache: LessonCache | None = None,
    ) -> LessonResult:
        """One lesson, from the cache when an equal request was answered before (then no AI call)."""
        started = self._clock()
        key = lesson_cache_key(module, spec, PROMPT_VERSION)
        if cache is not None:
            cached = await self._from_cache(cache, key, spec, started)
            if cached is not None:
                return cached
        prompt = build_lesson_prompt(module, spec, research)
        lesson, meta, failures = await self._generate(
            f"lesson {spec.number}", prompt, LESSON_FORMAT, lambda text: parse_lesson(text, spec)
        )
        _, research_urls = research_block(research)
        lesson = _finish_lesson(lesson, research_urls)
        if cache is not None:
            try:
                await cache.put(key, {"lesson": lesson.to_dict(), "meta": meta.to_dict()})
            except Exception as exc:  # the lesson is good; a cache write failure must not lose it
                log.warning("lesson cache write failed for %s: %s", key[:12], http.redact(str(exc)))
        return LessonResult(lesson=lesson, meta=meta, cache_key=key, failures=failures)

    # -----------------------------------------------------------------------------------------------------

    async def _from_cache(
        self, cache: LessonCache, key: str, spec: LessonSpec, started: float
    ) -> LessonResult | None:
        try:
            stored = await cache.get(key)
        except Exception as exc:  # a cache outage costs tokens, not the lesson
            log.warning("lesson cache read failed for %s: %s", key[:12], http.redact(str(exc)))
            return None
        if not stored:
            return None
        try:
            lesson = Lesson.model_validate(stored["lesson"])
            origin = GenerationMeta.from_dict(stored["meta"])
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            log.warning("ignoring unusable lesson cache entry %s: %s", key[:12], type(exc).__name__)
            return None
        if lesson.number != spec.number:
            log.warning("ignoring lesson cache entry %s: it holds lesson %s", key[:12], lesson.number)
            return None
        lesson = lesson.model_copy(update={"content_markdown": sanitize_markdown(lesson.content_markdown)})
        meta = GenerationMeta(
            provider=origin.provider,
            model=origin.model,
            tokens_in=0,
            tokens_out=0,
            latency_ms=int((self._clock() - started) * 1000),
            attempts=0,
            cache_hit=True,
            prompt_version=origin.prompt_version,
        )
        return LessonResult(lesson=lesson, meta=meta, cache_key=key)

    async def _generate(
        self, task: str, prompt: Prompt, output: OutputFormat, parse: Callable[[str], T]
    ) -> tuple[T, GenerationMeta, list[ProviderFailure]]:
        started = self._clock()
        budget = _Budget(self.settings.attempt_budget)
        failures: list[ProviderFailure] = []
        for provider in self.providers:
            if budget.left <= 0:
                failures.append(
                    ProviderFailure(
                        provider.name,
                        provider.model,
                        "budget",
                        f"not tried: the attempt budget of {budget.total} was used up",
                        0,
                    )
                )
                continue
            outcome = await self._ask(provider, prompt, output, parse, budget)
            if isinstance(outcome, ProviderFailure):
                log.warning("AI provider failed for the %s: %s", task, outcome)
                failures.append(outcome)
                continue
            value, completion, spent = outcome
            meta = GenerationMeta(
                provider=provider.name,
                model=completion.model or provider.model,
                tokens_in=spent.tokens_in,
                tokens_out=spent.tokens_out,
                latency_ms=int((self._clock() - started) * 1000),
                attempts=budget.used,
                fallbacks=[str(failure) for failure in failures],
                queued_ms=int(spent.queued_s * 1000),
            )
            log.info(
                "%s generated by %s/%s: %d+%d tokens, %d attempts, %d ms",
                task,
                meta.provider,
                meta.model,
                meta.tokens_in,
                meta.tokens_out,
                meta.attempts,
                meta.latency_ms,
            )
            return value, meta, failures
        raise AllProvidersFailed(task, failures, [str(skip) for skip in self.skipped])

    async def _ask(
        self,
        provider: ChatProvider,
        prompt: Prompt,
        output: OutputFormat,
        parse: Callable[[str], T],
        budget: _Budget,
    ) -> tuple[T, Completion, _Spent] | ProviderFailure:
        """All one provider gets: transient retries and one repair request. Never raises upstream errors."""
        limit = limit_for(provider.name, provider.max_concurrency)
        messages = [ChatMessage("system", prompt.system), ChatMessage("user", prompt.user)]
        spent = _Spent()
        transient_failures = 0
        repaired = False

        def failure(kind: str, message: str) -> ProviderFailure:
            return ProviderFailure(
                provider.name,
                provider.model,
                kind,
                http.redact(message),
                spent.attempts,
                spent.tokens_in,
                spent.tokens_out,
            )

        while True:
            if budget.left <= 0:
                return failure("budget", f"stopped: the attempt budget of {budget.total} was used up")
            budget.used += 1
            spent.attempts += 1
            answer_text = ""
            try:
                waiting_since = self._clock()
                async with limit.slot():
                    spent.queued_s += self._clock() - waiting_since
                    completion = await provider.complete(messages, output)
            except InvalidModelOutput as exc:
                reason = exc.message
            except http.UpstreamError as exc:
                kind = _failure_kind(exc)
                if not _is_transient(exc):
                    return failure(kind, exc.message)
                transient_failures += 1
                if transient_failures >= self.settings.max_attempts_per_provider:
                    return failure(
                        kind,
                        f"{exc.message} (gave up after {transient_failures} {_tries(transient_failures)})",
                    )
                hint = getattr(exc, "retry_after_s", None)
                delay = http.backoff_delay(transient_failures, BACKOFF, self._rand(), hint)
                if delay > self.settings.max_retry_wait_s:
                    return failure(
                        kind,
                        f"{exc.message} (asks to wait {delay:.1f}s, more than "
                        f"AI_MAX_RETRY_WAIT_SECONDS={self.settings.max_retry_wait_s:g})",
                    )
                log.info("%s: %s; retrying in %.2fs", provider.name, exc.message, delay)
                await self._sleep(delay)
                continue
            else:
                spent.add(completion)
                answer_text = completion.text
                try:
                    return parse(completion.text), completion, spent
                except OutputInvalid as exc:
                    reason = exc.reason
                    if completion.finish_reason in ("length", "MAX_TOKENS"):
                        reason += " (the answer was cut off at the output token limit: be more concise)"
            if repaired:
                return failure("invalid_output", f"unusable answer after one repair request: {reason}")
            repaired = True
            log.info("%s: unusable answer (%s); asking once for corrected JSON", provider.name, reason)
            previous = answer_text if answer_text.strip() else "(blank answer)"
            messages = [
                *messages,
                ChatMessage("assistant", previous[:20_000]),
                ChatMessage("user", build_repair_message(reason)),
            ]


def _tries(count: int) -> str:
    return "try" if count == 1 else "tries"


def _finish_lesson(lesson: Lesson, research_urls: list[str]) -> Lesson:
    """Sanitize the markdown; keep only sources that really were in the research (no invented URLs)."""
    sources = (
        [url for url in lesson.sources if url in research_urls] if research_urls else list(lesson.sources)
    )
    return lesson.model_copy(
        update={"content_markdown": sanitize_markdown(lesson.content_markdown), "sources": sources}
    )
