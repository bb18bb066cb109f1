"""`doctor` checks for the AI providers: one tiny JSON completion per configured provider.

The AI clients have no health endpoint, and a model-list call would not prove that the configured
model answers, so the probe is a real completion capped at a few output tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from clients import http
from clients.ai import AIChain
from clients.ai.base import ChatMessage, ChatProvider, OutputFormat
from clients.ai.errors import ContentBlocked, InvalidModelOutput
from clients.ai.settings import ProviderConfig, load_ai_settings, provider_order
from lessonctl.checks import CheckResult

PROBE_TIMEOUT_S = 30.0
PING_FORMAT = OutputFormat(
    name="ping",
    json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    gemini_schema={"type": "OBJECT", "properties": {"ok": {"type": "BOOLEAN"}}, "required": ["ok"]},
    max_output_tokens=16,
)
# DeepSeek's JSON mode requires the word "json" and an example in the prompt.
PING_MESSAGES = [
    ChatMessage("system", 'You are a health check. Reply with this json and nothing else: {"ok": true}'),
    ChatMessage("user", "ping"),
]


async def check_ai_providers(values: Mapping[str, str]) -> list[CheckResult]:
    try:
        settings = load_ai_settings(values)
    except http.ConfigurationError as error:
        return [CheckResult("FAIL", "ai", f"{error.message}; fix that setting")]
    skipped = [
        CheckResult("SKIP", f"ai/{skip.name}", f"{skip.reason}, so this provider is not used")
        for skip in settings.skipped
    ]
    if not settings.providers:
        return [
            *skipped,
            CheckResult(
                "FAIL",
                "ai",
                "no AI provider is configured: set DEEPSEEK_API_KEY, GROQ_API_KEY or GEMINI_API_KEY "
                "(or OPENAI_BASE_URL and OPENAI_MODEL for a local OpenAI-compatible server)",
            ),
        ]
    chain = AIChain.from_env(values)
    configs = {config.name: config for config in settings.providers}
    probes = await asyncio.gather(*(probe(p, configs[p.name]) for p in chain.providers))
    # In fallback order (AI_PROVIDERS), whether probed or skipped.
    order = [name for name in provider_order(values)]
    return sorted([*probes, *skipped], key=lambda result: order.index(result.name.removeprefix("ai/")))


async def probe(provider: ChatProvider, config: ProviderConfig) -> CheckResult:
    name = f"ai/{provider.name}"
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            completion = await provider.complete(list(PING_MESSAGES), PING_FORMAT)
    except (InvalidModelOutput, ContentBlocked) as error:
        # The provider answered (reachable, key and model accepted); only the tiny answer was unusable.
        return CheckResult(
            "OK", name, f"{provider.model} reachable, but the ping answer was unusable: {error.message}"
        )
    except TimeoutError:
        return CheckResult(
            "FAIL",
            name,
            f"no answer within {PROBE_TIMEOUT_S:g}s; check {config.base_url_setting} and the network",
        )
    except http.UpstreamError as error:
        return CheckResult("FAIL", name, f"{error.message}; {_hint(error, config)}")
    latency = int((time.perf_counter() - started) * 1000)
    return CheckResult(
        "OK",
        name,
        f"{completion.model or provider.model} answered in {latency} ms "
        f"({completion.tokens_in}+{completion.tokens_out} tokens)",
    )


def _hint(error: http.UpstreamError, config: ProviderConfig) -> str:
    if isinstance(error, http.QuotaExhausted | http.RateLimited):
        return "quota or rate limit reached: wait, or raise the provider plan's limits"
    if isinstance(error, http.UpstreamHTTPError):
        if error.status in (401, 403):
            return f"check {config.key_setting}"
        if error.status in (400, 404, 422):
            return f"check {config.model_setting} and {config.key_setting}"
        if error.status == 402:
            return "the account has no balance left: top it up"
    if isinstance(error, http.UpstreamConnectionError | http.UpstreamTimeout | http.UpstreamProtocolError):
        return f"check {config.base_url_setting} and network access to it"
    return f"check {config.base_url_setting}, {config.model_setting} and {config.key_setting}"
