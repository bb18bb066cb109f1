"""Lesson models: what the AI is asked for (module brief, lesson spec) and what it must answer (plan, lesson).

The pydantic models double as the output schemas sent to providers (JSON mode / responseSchema) and as the
validators of their answers. `parse_plan` / `parse_lesson` turn raw model text into models or raise
`OutputInvalid` with a short, readable reason that can be sent back to the model in a repair request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Difficulty = Literal["beginner", "intermediate", "advanced"]
DIFFICULTIES: tuple[str, ...] = ("beginner", "intermediate", "advanced")

MIN_LESSONS = 3
MAX_LESSONS = 5
# A lesson shorter than this is not a lesson (blank or truncated answers end up here).
MIN_LESSON_MARKDOWN_CHARS = 200


class OutputInvalid(ValueError):
    """The model's answer is not valid JSON for the requested schema; `reason` is safe to show the model."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModuleBrief(BaseModel):
    """The only module facts that may reach an AI provider. There are deliberately no user fields here."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    module_id: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=500)
    # Same caps as the queue message: prompts truncate, the brief itself never rejects what the app accepted.
    description: str = Field(default="", max_length=20_000)
    difficulty: Difficulty = "beginner"
    learning_style: str = Field(default="", max_length=100)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ModuleBrief:
        """Build from a wider record (queue message, module row): anything personal is simply not read."""
        picked = {name: data[name] for name in cls.model_fields if data.get(name) is not None}
        if "module_id" in picked:
            picked["module_id"] = str(picked["module_id"])
        return cls.model_validate(picked)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class LessonSpec(BaseModel):
    """One planned lesson."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    number: int = Field(ge=1, le=MAX_LESSONS)
    title: str = Field(min_length=3, max_length=200)
    objectives: list[str] = Field(min_length=1, max_length=8)
    summary: str = Field(min_length=10, max_length=1500)

    @field_validator("objectives")
    @classmethod
    def _objectives_not_blank(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value]
        if any(not item for item in cleaned):
            raise ValueError("objectives must not contain blank entries")
        return cleaned

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class LessonPlan(BaseModel):
    """3–5 lessons numbered 1..n in order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    lessons: list[LessonSpec] = Field(min_length=MIN_LESSONS, max_length=MAX_LESSONS)

    @model_validator(mode="after")
    def _numbered_in_order(self) -> LessonPlan:
        numbers = [lesson.number for lesson in self.lessons]
        expected = list(range(1, len(self.lessons) + 1))
        if numbers != expected:
            raise ValueError(f"lessons must be numbered {expected} in order, got {numbers}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class Lesson(BaseModel):
    """One generated lesson: markdown body plus the URLs it cites."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    number: int = Field(ge=1, le=MAX_LESSONS)
    title: str = Field(min_length=3, max_length=200)
    content_markdown: str = Field(min_length=MIN_LESSON_MARKDOWN_CHARS, max_length=60_000)
    sources: list[str] = Field(default_factory=list, max_length=30)

    @field_validator("sources")
    @classmethod
    def _sources_are_web_urls(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for url in value:
            url = url.strip()
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"sources must be http(s) URLs, got {url[:80]!r}")
            if url not in cleaned:
                cleaned.append(url)
        return cleaned

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors()[:8]:
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(lines)
    if more > 0:
        lines.append(f"... and {more} more problem(s)")
    return "; ".join(lines)


def _load_json_object(text: str) -> dict[str, Any]:
    if not text or not text.strip():
        raise OutputInvalid("the answer was blank; reply with one JSON object")
    stripped = text.strip()
    # Some models wrap JSON in a markdown fence despite JSON mode; the content itself may still be fine.
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped[stripped.find("\n") + 1 :] if "\n" in stripped else stripped
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise OutputInvalid(f"the answer is not valid JSON ({exc.msg} at {where})") from None
    if not isinstance(value, dict):
        raise OutputInvalid(f"the answer must be a JSON object, got {type(value).__name__}")
    return value


def parse_plan(text: str) -> LessonPlan:
    """Validate a provider's plan answer; raises OutputInvalid with a readable reason."""
    data = _load_json_object(text)
    try:
        return LessonPlan.model_validate(data)
    except ValidationError as exc:
        problems = _format_validation_error(exc)
        raise OutputInvalid(f"the lesson plan does not match the schema: {problems}") from None


def parse_lesson(text: str, spec: LessonSpec) -> Lesson:
    """Validate a provider's lesson answer for `spec`; raises OutputInvalid with a readable reason."""
    data = _load_json_object(text)
    try:
        lesson = Lesson.model_validate(data)
    except ValidationError as exc:
        problems = _format_validation_error(exc)
        raise OutputInvalid(f"the lesson does not match the schema: {problems}") from None
    if lesson.number != spec.number:
        raise OutputInvalid(f"the lesson must have number {spec.number}, got {lesson.number}")
    return lesson


# ---------------------------------------------------------------------------------------------------------
# Schemas sent to providers.


def plan_json_schema() -> dict[str, Any]:
    """Standard JSON Schema of the plan (OpenAI-compatible `json_schema`, prompt examples)."""
    return _inline_refs(LessonPlan.model_json_schema())


def lesson_json_schema() -> dict[str, Any]:
    """Standard JSON Schema of one lesson."""
    return _inline_refs(Lesson.model_json_schema())


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `$ref`s by their definitions: several providers reject `$defs`."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                return resolve(definitions[name])
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


# Keys of Gemini's `Schema` object (OpenAPI 3.0 subset) that we can express; everything else is dropped.
_GEMINI_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "propertyOrdering",
    }
)


def to_gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Adapt a standard JSON Schema (refs already inlined) to Gemini's `responseSchema` subset.

    Types become upper-case enum names, `anyOf: [X, null]` becomes `nullable`, object properties keep the
    declared order through `propertyOrdering` (Gemini otherwise orders them alphabetically).
    """
    node = dict(schema)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        non_null = [option for option in any_of if option.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError("only Optional[X] unions can be expressed in a Gemini responseSchema")
        merged = {**non_null[0], **{k: v for k, v in node.items() if k in ("description",)}}
        converted = to_gemini_schema(merged)
        converted["nullable"] = True
        return converted
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _GEMINI_KEYS:
            continue
        if key == "type":
            result["type"] = str(value).upper()
        elif key == "items":
            result["items"] = to_gemini_schema(value)
        elif key == "properties":
            result["properties"] = {name: to_gemini_schema(sub) for name, sub in value.items()}
            result["propertyOrdering"] = list(value)
        else:
            result[key] = value
    return result


def plan_gemini_schema() -> dict[str, Any]:
    return to_gemini_schema(plan_json_schema())


def lesson_gemini_schema() -> dict[str, Any]:
    return to_gemini_schema(lesson_json_schema())
