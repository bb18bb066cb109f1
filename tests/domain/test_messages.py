import json
import uuid

import pytest

from domain.messages import MAX_MESSAGE_BYTES, InvalidMessage, parse_generation_request

MODULE = "1b7e9d4a-8f0c-4d2e-9a31-5c6b7d8e9f01"


def test_valid_message_parses_and_ignores_unknown_fields() -> None:
    body = json.dumps(
        {
            "module_id": MODULE,
            "request_id": "req-1",
            "difficulty": "Intermediate",
            "learning_style": "hands-on",
            "user_profile": {"name": "Ada"},
            "timestamp": "2026-12-04T10:00:00Z",
            "added_by_a_newer_web_app": True,
        }
    )
    request = parse_generation_request(body, message_id="sb-1")
    assert request.module_id == uuid.UUID(MODULE)
    assert request.request_id == "req-1"
    assert request.difficulty == "intermediate"
    assert request.user_profile == {"name": "Ada"}


def test_request_id_defaults_to_the_service_bus_message_id() -> None:
    request = parse_generation_request(json.dumps({"module_id": MODULE}), message_id="sb-42")
    assert request.request_id == "sb-42"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"difficulty": "beginner"}), "module_id: Field required"),
        (json.dumps({"module_id": "not-a-uuid"}), "module_id: Input should be a valid UUID"),
        (json.dumps({"module_id": 12}), "module_id: UUID input should be a string"),
        (json.dumps({"module_id": MODULE, "difficulty": "expert"}), "difficulty: Input should be"),
        (json.dumps({"module_id": MODULE, "user_profile": "ada"}), "user_profile: Input should be a valid"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_messages_that_can_never_succeed_say_why(body: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_generation_request(body)
    assert reason in str(caught.value)


def test_oversized_message_is_rejected_before_parsing() -> None:
    body = json.dumps({"module_id": MODULE, "description": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(InvalidMessage, match="limit is 262144 bytes"):
        parse_generation_request(body)
