"""The queue starter: one `lesson-generation` message → the module's orchestration started or joined.

Rejection is by raising: Service Bus redelivers and, after its max delivery count, dead-letters the
message with the exception text (the Python model cannot dead-letter with a custom reason).
"""

from __future__ import annotations

import json
import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from clients.db import ModuleNotFound, reject_request
from clients.services import services
from domain.messages import InvalidMessage, parse_generation_request
from starters.generation import request_and_start

QUEUE_NAME = "lesson-generation"
CONNECTION = "AzureServiceBusConnectionString"

log = logging.getLogger("lesson_orchestrator.starter")
bp = df.Blueprint()


class MessageRejected(Exception):
    """A message that can never succeed; the text is what the dead letter keeps."""


@bp.service_bus_queue_trigger(arg_name="message", queue_name=QUEUE_NAME, connection=CONNECTION)
@bp.durable_client_input(client_name="client")
async def lesson_generation_starter(
    message: func.ServiceBusMessage, client: df.DurableOrchestrationClient
) -> None:
    body = message.get_body()
    context = {"message_id": message.message_id, "delivery_count": message.delivery_count}
    try:
        request = parse_generation_request(body, message_id=message.message_id)
    except InvalidMessage as exc:
        raise await _rejection(_module_id_hint(body), f"invalid generation message: {exc}", context) from None
    shared = await services()
    try:
        await request_and_start(client, request, shared)
    except ModuleNotFound as exc:
        raise await _rejection(None, f"unknown module: {exc}", context) from None


async def _rejection(module_id: str | None, reason: str, context: dict[str, object]) -> MessageRejected:
    if module_id is not None:
        marked = await reject_request((await services()).pool, module_id, reason)
        context = {**context, "module_id": module_id, "module_marked_failed": marked}
    log.error("rejected message %s: %s", context["message_id"], reason, extra=context)
    return MessageRejected(reason)


def _module_id_hint(body: bytes) -> str | None:
    """The module a malformed message was meant for, when that much can be read, to mark it failed."""
    try:
        data = json.loads(body)
        return str(uuid.UUID(str(data["module_id"])))
    except (ValueError, KeyError, TypeError):
        return None
