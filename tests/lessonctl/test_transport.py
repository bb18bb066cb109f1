"""The message `lessonctl enqueue`/`retry` send, and the Service Bus sender's refusals (no broker needed)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid

import pytest

from clients.servicebus_sender import OutgoingMessage, SendError, send_to_queue
from domain.messages import parse_generation_request
from domain.settings import ServiceBusConnection
from lessonctl.transport import BadRequest, build_message


def test_the_message_is_what_the_starter_parses() -> None:
    module_id = str(uuid.uuid4())
    message = build_message(module_id, "req-1", "Advanced", "hands-on")
    assert (message.message_id, message.content_type) == ("req-1", "application/json")
    parsed = parse_generation_request(message.body, message_id=message.message_id)
    assert (str(parsed.module_id), parsed.request_id, parsed.difficulty, parsed.learning_style) == (
        module_id, "req-1", "advanced", "hands-on")
    body = json.loads(message.body)
    assert set(body) == {"module_id", "request_id", "difficulty", "learning_style", "timestamp"}


def test_optional_fields_are_left_out_and_bad_input_is_refused() -> None:
    body = json.loads(build_message(str(uuid.uuid4()), "req-2", None, None).body)
    assert set(body) == {"module_id", "request_id", "timestamp"}
    with pytest.raises(BadRequest, match="module_id"):
        build_message("not-a-uuid", "req-3", None, None)
    with pytest.raises(BadRequest, match="difficulty"):
        build_message(str(uuid.uuid4()), "req-4", "wizard", None)
    with pytest.raises(BadRequest, match="request_id"):
        build_message(str(uuid.uuid4()), "", None, None)


@pytest.mark.skipif(importlib.util.find_spec("azure.identity") is not None,
                    reason="azure-identity is installed: the identity path would try to reach Azure")
def test_identity_based_namespace_without_azure_identity_is_a_clear_error() -> None:
    connection = ServiceBusConnection(fully_qualified_namespace="lessons.servicebus.windows.net")
    with pytest.raises(SendError, match="needs azure-identity: pip install azure-identity"):
        asyncio.run(send_to_queue(connection, "lesson-generation", OutgoingMessage(b"{}", "m-1")))
