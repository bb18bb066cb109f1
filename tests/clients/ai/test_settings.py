from __future__ import annotations

import pytest

from clients import http
from clients.ai.retry_hints import (
    gemini_retry_delay,
    openai_compatible_hint,
    parse_duration,
    seconds_from_message,
)
from clients.ai.settings import DEFAULT_MODELS, load_ai_settings

KEYS = {"DEEPSEEK_API_KEY": "sk-ds-1234", "GROQ_API_KEY": "gsk-1234", "GEMINI_API_KEY": "gem-1234"}


def test_defaults_are_current_models_in_default_order() -> None:
    settings = load_ai_settings(KEYS)
    assert [p.name for p in settings.providers] == ["deepseek", "groq", "gemini"]
    by_name = {p.name: p for p in settings.providers}
    assert by_name["deepseek"].model == "deepseek-flash"
    assert by_name["deepseek"].base_url == "https://api.deepseek.com"
    assert by_name["groq"].base_url == "https://api.groq.com/openai/v1"
    assert by_name["gemini"].base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert not {"deepseek-chat", "deepseek-reasoner"} & set(DEFAULT_MODELS.values())
    assert all(not model.startswith("gemini-2") for model in DEFAULT_MODELS.values())
    assert settings.chain.attempt_budget == 8 and settings.skipped == ()


def test_order_models_and_limits_from_settings() -> None:
    env = {
        **KEYS,
        "AI_PROVIDERS": " Gemini , deepseek,gemini",
        "GEMINI_MODEL": "gemini-3.8-flash",
        "DEEPSEEK_BASE_URL": "https://proxy.example/ds/",
        "DEEPSEEK_MAX_CONCURRENCY": "3",
    }
    settings = load_ai_settings(env)
    assert [p.name for p in settings.providers] == ["gemini", "deepseek"]
    assert settings.providers[0].model == "gemini-3.8-flash"
    assert settings.providers[1].base_url == "https://proxy.example/ds"
    assert settings.providers[1].max_concurrency == 3


def test_missing_keys_are_skipped_with_the_setting_named() -> None:
    settings = load_ai_settings({"GROQ_API_KEY": "gsk-1234"})
    assert [p.name for p in settings.providers] == ["groq"]
    assert [(s.name, s.setting) for s in settings.skipped] == [
        ("deepseek", "DEEPSEEK_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
    ]


def test_openai_needs_url_and_model_but_no_key() -> None:
    skipped = load_ai_settings({"AI_PROVIDERS": "openai"}).skipped
    assert skipped[0].setting == "OPENAI_BASE_URL"
    skipped = load_ai_settings(
        {"AI_PROVIDERS": "openai", "OPENAI_BASE_URL": "http://gpu-box:8000/v1"}
    ).skipped
    assert skipped[0].setting == "OPENAI_MODEL"
    settings = load_ai_settings(
        {"AI_PROVIDERS": "openai", "OPENAI_BASE_URL": "http://gpu-box:8000/v1", "OPENAI_MODEL": "qwen3:8b"}
    )
    assert settings.providers[0].api_key is None and settings.providers[0].model == "qwen3:8b"


@pytest.mark.parametrize(
    ("env", "setting", "text"),
    [
        ({"AI_PROVIDERS": "deepseek,claude"}, "AI_PROVIDERS", "unknown provider 'claude'"),
        ({"AI_PROVIDERS": " , "}, "AI_PROVIDERS", "lists no provider"),
        ({"DEEPSEEK_MAX_CONCURRENCY": "many"}, "DEEPSEEK_MAX_CONCURRENCY", "whole number"),
        ({"AI_ATTEMPT_BUDGET": "0"}, "AI_ATTEMPT_BUDGET", "at least 1"),
        ({"GROQ_BASE_URL": "ftp://x"}, "GROQ_BASE_URL", "http(s) base URL"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], setting: str, text: str) -> None:
    with pytest.raises(http.ConfigurationError) as caught:
        load_ai_settings({**KEYS, **env})
    assert caught.value.setting == setting and text in str(caught.value)


def test_provider_repr_hides_the_key() -> None:
    provider = load_ai_settings(KEYS).providers[0]
    assert "sk-ds-1234" not in repr(provider) and "key=set" in repr(provider)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m59.56s", 179.56),
        ("7.66s", 7.66),
        ("26s", 26.0),
        ("34.4s", 34.4),
        ("500ms", 0.5),
        ("1h2m3s", 3723.0),
        ("", None),
        ("soon", None),
        ("12", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_hints_in_messages_and_headers() -> None:
    assert seconds_from_message("... Please try again in 9m38.016s. Need more") == pytest.approx(578.016)
    assert seconds_from_message("Please retry in 20.04466179s.") == pytest.approx(20.04466179)
    assert seconds_from_message("try later") is None
    assert openai_compatible_hint({"Retry-After": "4"}, "Please try again in 9s", "tokens") == 4.0
    headers = {"x-ratelimit-reset-requests": "1m", "x-ratelimit-reset-tokens": "6s"}
    assert openai_compatible_hint(headers, "no figure", "requests") == 60.0
    assert openai_compatible_hint(headers, "no figure", "tokens") == 6.0
    assert (
        gemini_retry_delay([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.5s"}])
        == 3.5
    )
    assert gemini_retry_delay("nonsense") is None
