"""Google Gemini `models/{model}:generateContent` with JSON output constrained by `responseSchema`.

The JSON arrives as a string in the candidate's text parts (thought parts are skipped). Errors are
google.rpc statuses: 429 RESOURCE_EXHAUSTED carries `RetryInfo.retryDelay`; a per-day quota or a quota
`limit: 0` (no free tier for this model) will not recover by waiting, so the chain moves on at once.
A bad key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID, not a 401.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from clients import http
from clients.ai.base import ChatMessage, Completion, OutputFormat, int_field
from clients.ai.errors import ContentBlocked
from clients.ai.retry_hints import gemini_quota_ids, gemini_retry_delay, seconds_from_message
from clients.ai.settings import ProviderConfig

_NO_QUOTA = re.compile(r"\blimit:\s*0\b")


class GeminiProvider:
    def __init__(self, config: ProviderConfig, *, timeout_s: float) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model
        self.max_concurrency = config.max_concurrency
        self.timeout_s = timeout_s

    def request_body(self, messages: list[ChatMessage], output: OutputFormat) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in messages
            if m.role != "system"
        ]
        body: dict[str, Any] = {
            "contents": contents,
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": output.gemini_schema,
                "temperature": 0.4,
                "maxOutputTokens": output.max_output_tokens,
            },
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    async def complete(self, messages: list[ChatMessage], output: OutputFormat) -> Completion:
        url = f"{self.config.base_url}/models/{quote(self.model, safe='.-_')}:generateContent"
        response = await http.request(
            "POST",
            url,
            source=self.name,
            headers={"Content-Type": "application/json", "x-goog-api-key": self.config.api_key or ""},
            json_body=self.request_body(messages, output),
            timeout_s=self.timeout_s,
        )
        if response.status != 200:
            raise self._error(response)
        return self._completion(response)

    def _completion(self, response: http.HttpResponse) -> Completion:
        data = response.json_object()
        usage = data.get("usageMetadata")
        tokens_in = int_field(usage, "promptTokenCount")
        # Thinking tokens are billed as output.
        tokens_out = int_field(usage, "candidatesTokenCount") + int_field(usage, "thoughtsTokenCount")
        candidates = data.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = data.get("promptFeedback") if isinstance(data.get("promptFeedback"), dict) else {}
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if reason:
                raise ContentBlocked(self.name, f"prompt blocked ({reason})")
            raise http.UpstreamProtocolError(self.name, "HTTP 200 without candidates")
        candidate = candidates[0] if isinstance(candidates[0], dict) else {}
        content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
        parts = content.get("parts") if isinstance(content, dict) else None
        texts = [
            part["text"]
            for part in (parts if isinstance(parts, list) else [])
            if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
        ]
        return Completion(
            text="".join(texts),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            model=str(data.get("modelVersion") or self.model),
            finish_reason=candidate.get("finishReason"),
        )

    def _error(self, response: http.HttpResponse) -> http.UpstreamError:
        status = response.status
        try:
            data: Any = response.json()
        except http.UpstreamError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or response.excerpt() or "(empty body)")[:500]
        rpc_status = str(error.get("status") or "")
        details = error.get("details")
        summary = f"HTTP {status}" + (f" {rpc_status}" if rpc_status else "") + f": {message}"
        reasons = {
            str(d.get("reason"))
            for d in (details if isinstance(details, list) else [])
            if isinstance(d, dict)
        }
        config = self.config
        if status in (401, 403) or "API_KEY_INVALID" in reasons or "API key not valid" in message:
            return http.ConfigurationError(self.name, config.key_setting, f"{summary} (credentials rejected)")
        if status == 404:
            return http.ConfigurationError(
                self.name, config.model_setting, f"model {self.model!r}: {summary}"
            )
        if status == 429:
            quota_ids = gemini_quota_ids(details)
            if _NO_QUOTA.search(message) or any("PerDay" in quota_id for quota_id in quota_ids):
                what = ", ".join(quota_ids) or "limit 0"
                return http.QuotaExhausted(self.name, f"{summary} ({what}; waiting will not help today)")
            hint = gemini_retry_delay(details)
            if hint is None:
                hint = seconds_from_message(message)
            if hint is None:
                hint = response.retry_after_s()
            return http.RateLimited(self.name, summary, retry_after_s=hint)
        return http.UpstreamHTTPError(
            self.name, status, response.excerpt(), retry_after_s=response.retry_after_s(), message=summary
        )
