"""OpenAI-compatible chat completions: DeepSeek, Groq and any OpenAI-compatible server (Ollama, vLLM).

Provider quirks handled here (upstream-apis.md §6):
- DeepSeek V4 thinks by default: `thinking: {type: disabled}` keeps JSON mode fast; JSON mode may answer
  `content` of only spaces (the chain treats blank as invalid output and asks once more).
- Groq reports JSON-mode failures as HTTP 400 `json_validate_failed`; its 429s carry `retry-after`,
  `x-ratelimit-reset-*` and "Please try again in 1.98s".
- Error bodies differ: `error` may be an object, a string, or missing (old vLLM: a flat object); `code` may
  be a string, null or an int.
"""

from __future__ import annotations

from typing import Any

from clients import http
from clients.ai.base import ChatMessage, Completion, OutputFormat, int_field
from clients.ai.errors import InvalidModelOutput
from clients.ai.retry_hints import openai_compatible_hint
from clients.ai.settings import ProviderConfig

# Path appended to the base URL; DeepSeek's base is the host, Groq's and local servers' end in /v1.
CHAT_PATH = "/chat/completions"


class OpenAICompatibleProvider:
    def __init__(self, config: ProviderConfig, *, timeout_s: float) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model
        self.max_concurrency = config.max_concurrency
        self.timeout_s = timeout_s

    def _response_format(self, output: OutputFormat) -> dict[str, Any]:
        if self.name == "openai":
            # vLLM and Ollama both enforce a JSON Schema; strict mode is OpenAI-only, so leave it off.
            return {
                "type": "json_schema",
                "json_schema": {"name": output.name, "schema": output.json_schema, "strict": False},
            }
        # DeepSeek documents json_object only; Groq's json_schema works on a few models only.
        return {"type": "json_object"}

    def request_body(self, messages: list[ChatMessage], output: OutputFormat) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": 0.4,
            "max_tokens": output.max_output_tokens,
            "response_format": self._response_format(output),
            "stream": False,
        }
        if self.name == "deepseek":
            body["thinking"] = {"type": "disabled"}
        return body

    async def complete(self, messages: list[ChatMessage], output: OutputFormat) -> Completion:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        response = await http.request(
            "POST",
            self.config.base_url + CHAT_PATH,
            source=self.name,
            headers=headers,
            json_body=self.request_body(messages, output),
            timeout_s=self.timeout_s,
        )
        if response.status != 200:
            raise self._error(response)
        return self._completion(response)

    def _completion(self, response: http.HttpResponse) -> Completion:
        data = response.json_object()
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise http.UpstreamProtocolError(self.name, "HTTP 200 without choices in the chat completion")
        message = choices[0].get("message") if isinstance(choices[0].get("message"), dict) else {}
        content = message.get("content") if isinstance(message, dict) else None
        usage = data.get("usage")
        return Completion(
            text=content if isinstance(content, str) else "",
            tokens_in=int_field(usage, "prompt_tokens"),
            tokens_out=int_field(usage, "completion_tokens"),
            model=str(data.get("model") or self.model),
            finish_reason=choices[0].get("finish_reason"),
        )

    def _error(self, response: http.HttpResponse) -> http.UpstreamError:
        message, error_type, code = _error_fields(response)
        status = response.status
        config = self.config
        summary = f"HTTP {status}" + (f" {error_type}" if error_type else "") + f": {message}"
        lowered = message.lower()
        if status == 400 and code == "json_validate_failed":
            return InvalidModelOutput(self.name, f"HTTP 400 json_validate_failed: {message}")
        if status in (401, 403):
            return http.ConfigurationError(self.name, config.key_setting, f"{summary} (credentials rejected)")
        if (
            status in (400, 404)
            and "model" in lowered
            and any(
                marker in lowered for marker in ("not exist", "not found", "does not exist", "unknown model")
            )
        ):
            return http.ConfigurationError(
                self.name, config.model_setting, f"model {self.model!r}: {summary}"
            )
        if status == 404:
            return http.ConfigurationError(self.name, config.base_url_setting, f"{summary} (wrong endpoint?)")
        if status == 402:
            return http.UpstreamHTTPError(
                self.name, status, response.excerpt(), message=f"HTTP 402 insufficient balance: {message}"
            )
        if status == 429:
            hint = openai_compatible_hint(response.headers, message, error_type)
            return http.RateLimited(self.name, summary, retry_after_s=hint)
        return http.UpstreamHTTPError(
            self.name, status, response.excerpt(), retry_after_s=response.retry_after_s(), message=summary
        )


def _error_fields(response: http.HttpResponse) -> tuple[str, str | None, Any]:
    """(message, type, code) from any of the OpenAI-compatible error shapes."""
    try:
        data: Any = response.json()
    except http.UpstreamError:
        return response.excerpt() or "(empty body)", None, None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or "")[:500], _str_or_none(error.get("type")), error.get("code")
        if isinstance(error, str):
            return error[:500], None, None
        if "message" in data:  # old vLLM flat ErrorResponse
            return str(data["message"])[:500], _str_or_none(data.get("type")), data.get("code")
    return response.excerpt() or "(empty body)", None, None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None
