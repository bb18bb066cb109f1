from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from domain.lessons import (
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


def plan_json(count: int = 3, numbers: list[int] | None = None) -> str:
    numbers = numbers or list(range(1, count + 1))
    return json.dumps(
        {
            "lessons": [
                {
                    "number": n,
                    "title": f"Lesson {n}",
                    "objectives": ["Do a thing"],
                    "summary": "A short summary.",
                }
                for n in numbers
            ]
        }
    )


SPEC = LessonSpec(number=1, title="Intro", objectives=["Learn"], summary="The introduction lesson.")
BODY = "## Objectives\n- learn\n\n## Explanation\n" + "text " * 60


def test_plan_parses_and_keeps_order() -> None:
    plan = parse_plan(plan_json(4))
    assert [lesson.number for lesson in plan.lessons] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "blank"),
        ("   \n ", "blank"),
        ('{"lessons": [', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (plan_json(2), "at least 3"),
        (plan_json(6), "at most 5"),
        (plan_json(numbers=[1, 3, 2]), "numbered [1, 2, 3]"),
        (json.dumps({"lessons": [{"number": 1}] * 3}), "lessons.0.title: Field required"),
    ],
)
def test_invalid_plans_get_readable_reasons(text: str, reason: str) -> None:
    with pytest.raises(OutputInvalid) as caught:
        parse_plan(text)
    assert reason in caught.value.reason


def test_fenced_json_is_accepted() -> None:
    assert len(parse_plan("```json\n" + plan_json(3) + "\n```").lessons) == 3


def test_lesson_validation() -> None:
    good = {"number": 1, "title": "Intro", "content_markdown": BODY, "sources": ["https://a.example/x"]}
    assert parse_lesson(json.dumps(good), SPEC).sources == ["https://a.example/x"]
    with pytest.raises(OutputInvalid, match="number 1"):
        parse_lesson(json.dumps({**good, "number": 2}), SPEC)
    with pytest.raises(OutputInvalid, match="http"):
        parse_lesson(json.dumps({**good, "sources": ["javascript:alert(1)"]}), SPEC)
    with pytest.raises(OutputInvalid, match="content_markdown"):
        parse_lesson(json.dumps({**good, "content_markdown": "too short"}), SPEC)


def test_module_brief_has_no_personal_fields_and_rejects_them() -> None:
    assert set(ModuleBrief.model_fields) == {
        "module_id",
        "title",
        "description",
        "difficulty",
        "learning_style",
    }
    with pytest.raises(ValidationError):
        ModuleBrief(module_id="m", title="t", user_id="u")  # type: ignore[call-arg]
    brief = ModuleBrief.from_mapping(
        {"module_id": 5, "title": "T", "user_profile": {"a": 1}, "description": None}
    )
    assert brief.module_id == "5" and brief.description == ""
    with pytest.raises(ValidationError):
        ModuleBrief.from_mapping({"module_id": "m", "title": "T", "difficulty": "expert"})


def test_json_schemas_have_no_refs_and_gemini_subset_is_clean() -> None:
    for schema in (plan_json_schema(), lesson_json_schema()):
        assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    gemini = plan_gemini_schema()
    assert gemini["type"] == "OBJECT"
    lesson_item = gemini["properties"]["lessons"]["items"]
    assert lesson_item["type"] == "OBJECT"
    assert lesson_item["propertyOrdering"] == ["number", "title", "objectives", "summary"]
    assert gemini["properties"]["lessons"]["minItems"] == 3
    text = json.dumps(lesson_gemini_schema())
    for unsupported in ('title": "Lesson', "additionalProperties", "default", "$defs", "minLength"):
        assert unsupported not in text
