"""Loopback stand-ins for the AI providers, with their real response, usage and error shapes.

Mounted by the sandbox app (`register(app, behaviour)`):
  /deepseek/chat/completions and /deepseek/v1/chat/completions   DeepSeek (OpenAI format)
  /groq/openai/v1/chat/completions                                Groq
  /gemini/v1beta/models/{model}:generateContent                   Gemini
  /openai/v1/chat/completions                                     an Ollama-like OpenAI-compatible server

Answers are schema-valid plan / lesson JSON built deterministically from the prompt: the task line, the
module and lesson lines, and the URLs and titles inside the delimited research block, which the lessons
cite. `behaviour.before(provider)` may inject a fault, rendered in that provider's real error shape:
"429" (DeepSeek concurrency 429, Groq/OpenAI 429 with Retry-After, Gemini RESOURCE_EXHAUSTED with
RetryInfo), "error" (5xx), "timeout" (hang until the client gives up), "malformed" (DeepSeek blank JSON-mode
content, Groq 400 json_validate_failed, broken JSON elsewhere).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from domain.prompts import RESEARCH_BEGIN, RESEARCH_END, TASK_LESSON, TASK_PLAN

PROVIDERS: tuple[str, ...] = ("deepseek", "groq", "gemini", "openai")
# Dummy keys printed by `python -m sandbox env`; the OpenAI-compatible stand-in (like Ollama) needs none.
SANDBOX_KEYS = {
    "deepseek": "sk-sandbox-deepseek-0000",
    "groq": "gsk_sandbox_groq_0000",
    "gemini": "sandbox-gemini-key-0000",
}
SANDBOX_MODELS = {
    "deepseek": "deepseek-flash",
    "groq": "llama-3.3-70b-versatile",
    "gemini": "gemini-3.5-flash",
    "openai": "qwen3:8b",
}
KNOWN_MODELS = {
    # The retired deepseek-chat / deepseek-reasoner answer "Model Not Exist", as the real API does.
    "deepseek": {"deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro"},
    "groq": {"llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b", "openai/gpt-oss-20b"},
    "openai": {"qwen3:8b", "llama3.2:3b", "gpt-oss:20b"},
}
RETRY_AFTER_S = 1
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"


class Behaviour(Protocol):
    """What the stand-ins need from sandbox.behaviour.Behaviour."""

    def before(self, source: str) -> Awaitable[str | None]: ...

    def hang(self) -> Awaitable[None]: ...


@dataclass
class AIStats:
    """What the stand-ins saw: tests assert on request counts, concurrency and request bodies."""

    requests: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    last_body: dict[str, dict[str, Any]] = field(default_factory=dict)


AI_STATS = web.AppKey("sandbox_ai_stats", AIStats)


def sandbox_ai_env(base_url: str) -> dict[str, str]:
    """The settings that point the app's AI chain at these stand-ins (`python -m sandbox env`)."""
    base = base_url.rstrip("/")
    return {
        "AI_PROVIDERS": "deepseek,groq,gemini",
        "DEEPSEEK_BASE_URL": f"{base}/deepseek",
        "DEEPSEEK_API_KEY": SANDBOX_KEYS["deepseek"],
        "DEEPSEEK_MODEL": SANDBOX_MODELS["deepseek"],
        "GROQ_BASE_URL": f"{base}/groq/openai/v1",
        "GROQ_API_KEY": SANDBOX_KEYS["groq"],
        "GROQ_MODEL": SANDBOX_MODELS["groq"],
        "GEMINI_BASE_URL": f"{base}/gemini/v1beta",
        "GEMINI_API_KEY": SANDBOX_KEYS["gemini"],
        "GEMINI_MODEL": SANDBOX_MODELS["gemini"],
        "OPENAI_BASE_URL": f"{base}/openai/v1",
        "OPENAI_MODEL": SANDBOX_MODELS["openai"],
    }


def register(app: web.Application, behaviour: Behaviour) -> None:
    stats = AIStats()
    app[AI_STATS] = stats
    for path in ("/deepseek/chat/completions", "/deepseek/v1/chat/completions"):
        app.router.add_post(path, _openai_handler("deepseek", behaviour, stats))
    app.router.add_post("/groq/openai/v1/chat/completions", _openai_handler("groq", behaviour, stats))
    app.router.add_post("/openai/v1/chat/completions", _openai_handler("openai", behaviour, stats))
    app.router.add_post("/gemini/v1beta/models/{model_action}", _gemini_handler(behaviour, stats))


# ---------------------------------------------------------------------------------------------------------
# Deterministic answers from the prompt.

_PHASES = (
    "Foundations",
    "Core techniques",
    "Working with real code",
    "Testing and debugging",
    "Advanced patterns",
)


@dataclass(frozen=True)
class _PromptFacts:
    task: str
    module_title: str
    difficulty: str
    lesson_number: int
    lesson_title: str
    objectives: list[str]
    urls: list[str]
    titles: list[str]


def _line(text: str, prefix: str) -> str:
    match = re.search(rf"^{re.escape(prefix)}\s*(.*)$", text, re.M)
    return match.group(1).strip() if match else ""


def parse_prompt(text: str) -> _PromptFacts:
    """What the stand-in needs from a prompt built by domain.prompts (first user message + system)."""
    start = text.find(RESEARCH_BEGIN)
    end = text.find(RESEARCH_END, start + 1)
    block = text[start + len(RESEARCH_BEGIN) : end] if start >= 0 and end > start else ""
    outside = text[:start] + text[end:] if block else text
    objectives_part = outside.split("Lesson objectives:", 1)[1] if "Lesson objectives:" in outside else ""
    objectives = []
    for raw in objectives_part.splitlines()[1:]:
        if not raw.startswith("- "):
            break
        objectives.append(raw[2:].strip())
    number = _line(outside, "Lesson number:")
    difficulty = _line(outside, "Difficulty:").split(".", 1)[0]
    return _PromptFacts(
        task=_line(outside, "TASK:"),
        module_title=_line(outside, "Module title:") or "the topic",
        difficulty=difficulty or "beginner",
        lesson_number=int(number) if number.isdigit() else 1,
        lesson_title=_line(outside, "Lesson title:"),
        objectives=objectives,
        urls=re.findall(r"^\s+url: (\S+)$", block, re.M),
        titles=re.findall(r"^\s+title: (.*)$", block, re.M),
    )


def plan_answer(facts: _PromptFacts) -> dict[str, Any]:
    count = 3 + (len(facts.urls) >= 6) + (len(facts.urls) >= 10)
    lessons = []
    for number in range(1, count + 1):
        phase = _PHASES[number - 1]
        reference = (
            facts.titles[(number - 1) % len(facts.titles)] if facts.titles else "the official documentation"
        )
        lessons.append(
            {
                "number": number,
                "title": f"{facts.module_title}: {phase}",
                "objectives": [
                    f"Explain the {phase.lower()} of {facts.module_title}",
                    f"Apply them in a small {facts.difficulty} exercise",
                ],
                "summary": (
                    f"{phase} of {facts.module_title} for {facts.difficulty} learners, "
                    f"drawing on {reference}."
                ),
            }
        )
    return {"lessons": lessons}


def lesson_answer(facts: _PromptFacts) -> dict[str, Any]:
    title = facts.lesson_title or f"{facts.module_title}: lesson {facts.lesson_number}"
    objectives = facts.objectives or [f"Understand {facts.module_title}"]
    cited = list(zip(facts.urls, facts.titles, strict=False))[:5]
    reading = "\n".join(f"- [{t}]({u})" for u, t in cited) or "- The official documentation of the topic."
    slug = re.sub(r"[^a-z0-9]+", "_", facts.module_title.lower()).strip("_") or "topic"
    markdown = (
        "## Objectives\n" + "\n".join(f"- {o}" for o in objectives) + "\n\n"
        f"## Explanation\n{title} is explained step by step for {facts.difficulty} learners. "
        f"We start from what you already know about {facts.module_title}, introduce one idea at a time and "
        "connect each idea to the worked example below.\n\n"
        f"## Worked examples\n```python\ndef {slug}_example(values: list[int]) -> int:\n"
        "    # Sum only the even values: one idea per line.\n"
        "    return sum(v for v in values if v % 2 == 0)\n\n"
        f"print({slug}_example([1, 2, 3, 4]))  # 6\n```\n\n"
        "## Exercises\n1. Change the example to sum the odd values. *Hint:* flip the condition.\n"
        "2. Write a test for an empty list.\n\n"
        f"## Further reading\n{reading}\n"
    )
    return {
        "number": facts.lesson_number,
        "title": title,
        "content_markdown": markdown,
        "sources": [u for u, _ in cited],
    }


def answer_for(prompt_text: str) -> str:
    facts = parse_prompt(prompt_text)
    if facts.task == TASK_PLAN:
        return json.dumps(plan_answer(facts))
    if facts.task == TASK_LESSON:
        return json.dumps(lesson_answer(facts))
    return json.dumps({"answer": "The sandbox only knows lesson plans and lessons."})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _request_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# ---------------------------------------------------------------------------------------------------------
# Shared handler plumbing.


async def _hang_until_client_leaves(request: web.Request, behaviour: Behaviour) -> web.Response:
    """Like an overloaded upstream: keep the socket open until the client gives up or the sandbox stops."""
    stopped = asyncio.ensure_future(behaviour.hang())
    try:
        while not stopped.done() and request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.05)
    finally:
        stopped.cancel()
    return web.Response(status=504)


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class _InFlight:
    def __init__(self, stats: AIStats, provider: str) -> None:
        self.stats, self.provider = stats, provider

    def __enter__(self) -> None:
        self.stats.in_flight[self.provider] += 1
        self.stats.max_in_flight[self.provider] = max(
            self.stats.max_in_flight[self.provider], self.stats.in_flight[self.provider]
        )

    def __exit__(self, *exc: object) -> None:
        self.stats.in_flight[self.provider] -= 1


# ---------------------------------------------------------------------------------------------------------
# OpenAI-compatible providers.


def _openai_error(message: str, type_: str | None, code: Any, *, param: bool = True) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_}
    if param:  # Groq omits `param`; DeepSeek, OpenAI and Ollama send null
        error["param"] = None
    error["code"] = code
    return {"error": error}


def _auth_failure(provider: str, request: web.Request) -> web.Response | None:
    expected = SANDBOX_KEYS.get(provider)
    if expected is None:  # Ollama ignores keys
        return None
    if request.headers.get("Authorization", "") == f"Bearer {expected}":
        return None
    if provider == "deepseek":
        body = _openai_error(
            "Authentication Fails (no such user)", "authentication_error", "invalid_request_error"
        )
    else:
        body = _openai_error("Invalid API Key", "invalid_request_error", "invalid_api_key", param=False)
    return web.json_response(body, status=401)


def _unknown_model(provider: str, model: str) -> web.Response | None:
    if model in KNOWN_MODELS[provider]:
        return None
    if provider == "deepseek":
        body = _openai_error("Model Not Exist", "invalid_request_error", "invalid_request_error")
        return web.json_response(body, status=400)
    if provider == "groq":
        body = _openai_error(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
            param=False,
        )
        return web.json_response(body, status=404)
    body = _openai_error(f'model "{model}" not found, try pulling it first', "api_error", None)
    return web.json_response(body, status=404)


def _openai_fault(provider: str, kind: str, model: str) -> web.Response:
    if kind == "429":
        if provider == "deepseek":
            # DeepSeek's 429 is its per-account concurrency limit: no retry hint.
            body = _openai_error("Rate Limit Reached", "rate_limit_error", "invalid_request_error")
            return web.json_response(body, status=429)
        if provider == "groq":
            body = _openai_error(
                f"Rate limit reached for model `{model}` in organization `org_sandbox` service tier "
                "`on_demand` on tokens per minute (TPM): Limit 12000, Used 11800, Requested 900. "
                f"Please try again in {RETRY_AFTER_S}s. Need more tokens? Upgrade to Dev Tier today at "
                "https://console.groq.com/settings/billing",
                "tokens",
                "rate_limit_exceeded",
                param=False,
            )
            headers = {
                "retry-after": str(RETRY_AFTER_S),
                "x-ratelimit-limit-tokens": "12000",
                "x-ratelimit-remaining-tokens": "200",
                "x-ratelimit-reset-tokens": f"{RETRY_AFTER_S}s",
                "x-ratelimit-limit-requests": "1000",
                "x-ratelimit-remaining-requests": "998",
                "x-ratelimit-reset-requests": "2m59.56s",
            }
            return web.json_response(body, status=429, headers=headers)
        body = _openai_error(
            f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. "
            f"Please try again in {RETRY_AFTER_S}s.",
            "requests",
            "rate_limit_exceeded",
        )
        return web.json_response(body, status=429, headers={"Retry-After": str(RETRY_AFTER_S)})
    if provider == "deepseek":
        body = _openai_error(
            "Service is too busy, please try again later", "server_error", "invalid_request_error"
        )
        return web.json_response(body, status=503)
    if provider == "groq":
        body = _openai_error(
            "Service Unavailable", "internal_server_error", "service_unavailable", param=False
        )
        return web.json_response(body, status=503)
    body = _openai_error("llama runner process has terminated: exit status 2", "api_error", None)
    return web.json_response(body, status=500)


def _openai_completion(provider: str, model: str, prompt_text: str, content: str) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _tokens(prompt_text), _tokens(content)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    response: dict[str, Any] = {
        "id": _request_id(prompt_text + content),
        "object": "chat.completion",
        "created": 1790000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    if provider == "deepseek":
        usage.update(
            {
                "prompt_tokens_details": {"cached_tokens": 0},
                "prompt_cache_hit_tokens": 0,
                "prompt_cache_miss_tokens": prompt_tokens,
            }
        )
        response["system_fingerprint"] = "fp_sandbox_prod0820_fp8_kvcache"
    elif provider == "groq":
        usage.update({"queue_time": 0.01, "prompt_time": 0.001, "completion_time": 0.2, "total_time": 0.211})
        response.update(
            {
                "usage_breakdown": None,
                "system_fingerprint": "fp_sandbox",
                "x_groq": {"id": "req_" + _request_id(content), "seed": 1},
                "service_tier": "on_demand",
            }
        )
    else:
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
        response["system_fingerprint"] = "fp_ollama"
        del response["choices"][0]["logprobs"]
    return response


def _openai_handler(provider: str, behaviour: Behaviour, stats: AIStats):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.Response:
        stats.requests[provider] += 1
        denied = _auth_failure(provider, request)
        if denied is not None:
            return denied
        body = await _json_body(request)
        messages = body.get("messages") if body else None
        if body is None or not isinstance(messages, list):
            error = _openai_error(
                "Failed to deserialize the JSON body", "invalid_request_error", "invalid_request_error"
            )
            return web.json_response(error, status=400)
        stats.last_body[provider] = body
        model = str(body.get("model", ""))
        unknown = _unknown_model(provider, model)
        if unknown is not None:
            return unknown
        with _InFlight(stats, provider):
            fault = await behaviour.before(provider)
            if fault == "timeout":
                return await _hang_until_client_leaves(request, behaviour)
            if fault in ("429", "error") or (fault is not None and fault != "malformed"):
                return _openai_fault(provider, fault if fault == "429" else "error", model)
            first_user = next(
                (m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"),
                "",
            )
            prompt_text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            if fault == "malformed":
                if provider == "groq":
                    error = {
                        "error": {
                            "message": "Failed to generate JSON. Please adjust your prompt. See "
                            "'failed_generation' for more details.",
                            "type": "invalid_request_error",
                            "code": "json_validate_failed",
                            "failed_generation": "",
                        }
                    }
                    return web.json_response(error, status=400)
                content = "   \n\n   " if provider == "deepseek" else answer_for(str(first_user))[:40]
            else:
                content = answer_for(str(first_user))
            return web.json_response(_openai_completion(provider, model, prompt_text, content))

    return handle


# ---------------------------------------------------------------------------------------------------------
# Gemini.


def _rpc_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _gemini_auth_failure(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if key == SANDBOX_KEYS["gemini"]:
        return None
    if not key:
        body = _rpc_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without "
            "established identity). Please use API Key or other form of API consumer identity to "
            "call this API.",
        )
        return web.json_response(body, status=403)
    # The real API answers a wrong key with 400, not 401.
    body = _rpc_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
        ],
    )
    return web.json_response(body, status=400)


def _gemini_fault(kind: str, model: str) -> web.Response:
    if kind == "429":
        body = _rpc_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and "
            "billing details. For more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": QUOTA_METRIC,
                            "quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                            "quotaDimensions": {"location": "global", "model": model},
                            "quotaValue": "250000",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{RETRY_AFTER_S}s"},
            ],
        )
        return web.json_response(body, status=429)
    body = _rpc_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    return web.json_response(body, status=503)


def _gemini_handler(behaviour: Behaviour, stats: AIStats):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.Response:
        stats.requests["gemini"] += 1
        model, _, method = request.match_info["model_action"].partition(":")
        if method != "generateContent":
            return web.json_response(_rpc_error(404, "NOT_FOUND", "Method not found."), status=404)
        denied = _gemini_auth_failure(request)
        if denied is not None:
            return denied
        body = await _json_body(request)
        contents = body.get("contents") if body else None
        if body is None or not isinstance(contents, list):
            return web.json_response(
                _rpc_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), status=400
            )
        stats.last_body["gemini"] = body
        if not model.startswith("gemini-"):
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their "
                "supported methods."
            )
            return web.json_response(_rpc_error(404, "NOT_FOUND", message), status=404)
        with _InFlight(stats, "gemini"):
            fault = await behaviour.before("gemini")
            if fault == "timeout":
                return await _hang_until_client_leaves(request, behaviour)
            if fault is not None and fault != "malformed":
                return _gemini_fault("429" if fault == "429" else "error", model)
            texts = [
                str(part.get("text", ""))
                for content in contents
                if isinstance(content, dict)
                for part in content.get("parts", [])
                if isinstance(part, dict)
            ]
            first_user = texts[0] if texts else ""
            system = body.get("systemInstruction", {}).get("parts", [{}])[0].get("text", "")
            answer = answer_for(first_user)
            finish = "STOP"
            if fault == "malformed":
                answer, finish = answer[:40], "MAX_TOKENS"
            prompt_tokens, answer_tokens = _tokens(system + "".join(texts)), _tokens(answer)
            response = {
                "candidates": [
                    {
                        "content": {"parts": [{"text": answer}], "role": "model"},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": answer_tokens,
                    "totalTokenCount": prompt_tokens + answer_tokens + 16,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
                    "thoughtsTokenCount": 16,
                },
                "modelVersion": model,
                "responseId": _request_id(answer),
            }
            return web.json_response(response)

    return handle
