"""The generation request carried by a `lesson-generation` queue message (architecture.md §3).

Parsing is strict about what the pipeline relies on and lenient about the rest: unknown fields are
ignored so the web app can add fields without breaking running workers.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_MESSAGE_BYTES = 256 * 1024

Difficulty = Literal["beginner", "intermediate", "advanced"]


class InvalidMessage(ValueError):
    """A message that can never succeed; the text is the reason logged and kept with the dead letter."""


class GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    module_id: UUID
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    roadmap_id: str | int | None = None
    user_id: str | int | None = None
    title: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    difficulty: Difficulty | None = None
    learning_style: str | None = Field(default=None, max_length=100)
    # Stored with the run for the web app; never part of an AI prompt.
    user_profile: dict[str, Any] | None = None
    timestamp: datetime | None = None

    @field_validator("difficulty", mode="before")
    @classmethod
    def _lowercase_difficulty(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def parse_generation_request(body: bytes | str, *, message_id: str | None = None) -> GenerationRequest:
    """Validate a queue message body; `request_id` defaults to the Service Bus message id."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message body is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"message body is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InvalidMessage(f"message body is not JSON: {exc.msg} at {where}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"message body must be a JSON object, got {type(data).__name__}")
    try:
        request = GenerationRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from None
    if request.request_id is None and message_id:
        request = request.model_copy(update={"request_id": message_id})
    return request


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem, e.g. `module_id: Field required; difficulty: Input should be ...`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
