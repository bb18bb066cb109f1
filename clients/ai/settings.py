"""AI provider settings, read from a mapping (the app settings), never from os.environ directly.

Model ids come from settings; the defaults are ids that are current as of late 2026 (upstream-apis.md §6):
DeepSeek retired `deepseek-chat` / `deepseek-reasoner` on 2026-07-24, and Gemini ids churn quickly, so set
`GEMINI_MODEL` explicitly in production.

`openai` means any OpenAI-compatible server (Ollama, vLLM). It has no default URL or model (no localhost
defaults, ever), and its API key is optional: local servers ignore it. When `OPENAI_API_KEY` is set it is
sent as a Bearer token, so a hosted OpenAI-compatible endpoint works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from clients.http import ConfigurationError, register_secret

KNOWN_PROVIDERS: tuple[str, ...] = ("deepseek", "groq", "gemini", "openai")
DEFAULT_PROVIDER_ORDER = "deepseek,groq,gemini"

DEFAULT_BASE_URLS = {
    "deepseek": "https://api.deepseek.com",
    "groq": "https://api.groq.com/openai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}
DEFAULT_MODELS = {
    # DeepSeek V4.1 Flash (pricing page, late 2026); thinking is switched off per request for JSON mode.
    "deepseek": "deepseek-flash",
    # Groq's production Llama 3.3 70B, JSON mode capable (vercel/ai fixtures, Feb 2026).
    "groq": "llama-3.3-70b-versatile",
    # A stable Gemini 3.x Flash id (ai.google.dev models page, late 2026); 2.5 ids are deprecated.
    "gemini": "gemini-3.5-flash",
}
# Per process and event loop. DeepSeek allows 2500 concurrent requests per account; the free tiers of Groq
# and Gemini allow a few requests per minute, and a local Ollama serves one or two at a time.
DEFAULT_MAX_CONCURRENCY = {"deepseek": 8, "groq": 2, "gemini": 2, "openai": 2}

DEFAULT_MAX_ATTEMPTS_PER_PROVIDER = 3
DEFAULT_ATTEMPT_BUDGET = 8
DEFAULT_MAX_RETRY_WAIT_S = 60.0
# DeepSeek keeps a connection open (blank keep-alive lines) for minutes under load.
DEFAULT_REQUEST_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    api_key: str | None
    model: str
    max_concurrency: int

    @property
    def key_setting(self) -> str:
        return f"{self.name.upper()}_API_KEY"

    @property
    def model_setting(self) -> str:
        return f"{self.name.upper()}_MODEL"

    @property
    def base_url_setting(self) -> str:
        return f"{self.name.upper()}_BASE_URL"

    def __repr__(self) -> str:  # keep the key out of reprs, tracebacks and logs
        key = "set" if self.api_key else "unset"
        return (
            f"ProviderConfig(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r}, key={key})"
        )


@dataclass(frozen=True)
class SkippedProvider:
    name: str
    reason: str
    setting: str

    def __str__(self) -> str:
        return f"{self.name} skipped: {self.reason}"


@dataclass(frozen=True)
class ChainSettings:
    max_attempts_per_provider: int = DEFAULT_MAX_ATTEMPTS_PER_PROVIDER
    attempt_budget: int = DEFAULT_ATTEMPT_BUDGET
    max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class AISettings:
    providers: tuple[ProviderConfig, ...]
    skipped: tuple[SkippedProvider, ...]
    chain: ChainSettings


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool, minimum: float) -> float:
    raw = _value(env, name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigurationError("ai", name, f"must be {kind}, got {raw[:40]!r}") from None
    if value < minimum:
        raise ConfigurationError("ai", name, f"must be at least {minimum:g}, got {raw[:40]!r}")
    return value


def _base_url(env: Mapping[str, str], name: str) -> str | None:
    setting = f"{name.upper()}_BASE_URL"
    url = _value(env, setting) or DEFAULT_BASE_URLS.get(name)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigurationError("ai", setting, "must be an http(s) base URL without a query string")
    return url.rstrip("/")


def provider_order(env: Mapping[str, str]) -> list[str]:
    raw = _value(env, "AI_PROVIDERS") or DEFAULT_PROVIDER_ORDER
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in KNOWN_PROVIDERS:
            known = ", ".join(KNOWN_PROVIDERS)
            raise ConfigurationError("ai", "AI_PROVIDERS", f"unknown provider {name[:30]!r} (known: {known})")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigurationError("ai", "AI_PROVIDERS", "lists no provider")
    return names


def load_ai_settings(env: Mapping[str, str]) -> AISettings:
    """Provider configs in fallback order; providers missing what they need are skipped, not fatal."""
    providers: list[ProviderConfig] = []
    skipped: list[SkippedProvider] = []
    for name in provider_order(env):
        prefix = name.upper()
        key = _value(env, f"{prefix}_API_KEY")
        register_secret(key)
        base_url = _base_url(env, name)
        model = _value(env, f"{prefix}_MODEL") or DEFAULT_MODELS.get(name)
        if name != "openai" and key is None:
            skipped.append(SkippedProvider(name, f"{prefix}_API_KEY is not set", f"{prefix}_API_KEY"))
            continue
        if base_url is None:
            reason = f"{prefix}_BASE_URL is not set (no default for {name})"
            skipped.append(SkippedProvider(name, reason, f"{prefix}_BASE_URL"))
            continue
        if model is None:
            reason = f"{prefix}_MODEL is not set (no default for {name})"
            skipped.append(SkippedProvider(name, reason, f"{prefix}_MODEL"))
            continue
        concurrency = int(
            _number(env, f"{prefix}_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY[name], integer=True, minimum=1)
        )
        providers.append(ProviderConfig(name, base_url, key, model, concurrency))
    chain = ChainSettings(
        max_attempts_per_provider=int(
            _number(
                env,
                "AI_MAX_ATTEMPTS_PER_PROVIDER",
                DEFAULT_MAX_ATTEMPTS_PER_PROVIDER,
                integer=True,
                minimum=1,
            )
        ),
        attempt_budget=int(
            _number(env, "AI_ATTEMPT_BUDGET", DEFAULT_ATTEMPT_BUDGET, integer=True, minimum=1)
        ),
        max_retry_wait_s=_number(
            env, "AI_MAX_RETRY_WAIT_SECONDS", DEFAULT_MAX_RETRY_WAIT_S, integer=False, minimum=0
        ),
        request_timeout_s=_number(
            env, "AI_REQUEST_TIMEOUT_SECONDS", DEFAULT_REQUEST_TIMEOUT_S, integer=False, minimum=0.1
        ),
    )
    return AISettings(tuple(providers), tuple(skipped), chain)
