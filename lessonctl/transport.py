"""How `enqueue` and `retry` deliver a generation request: a Service Bus queue through azure-servicebus
(AzureServiceBusConnectionString, a real namespace or the official emulator), or with --local the
devhost's local queue in a state folder (devhost/queues.py, the queue `python -m devhost start` serves)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from clients.servicebus_sender import OutgoingMessage, SendError, send_to_queue
from domain.messages import GenerationRequest, describe_validation_error
from domain.settings import Need, SettingsError
from lessonctl.context import CommandContext

QUEUE = "lesson-generation"
STATE_DIR_NAME = ".devhost"


class BadRequest(ValueError):
    """The request would be rejected by the starter: refuse to send it."""


def add_transport_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true",
                        help="put the message on the devhost's local queue instead of Service Bus")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"with --local: the devhost's state folder (default: APP_DIR/{STATE_DIR_NAME})")


def new_request_id() -> str:
    return f"lessonctl-{uuid.uuid4()}"


def build_message(
    module_id: str, request_id: str, difficulty: str | None, learning_style: str | None
) -> OutgoingMessage:
    """The queue message of architecture.md §3, validated as the starter will validate it."""
    fields: dict[str, Any] = {"module_id": module_id, "request_id": request_id}
    if difficulty is not None:
        fields["difficulty"] = difficulty
    if learning_style is not None:
        fields["learning_style"] = learning_style
    try:
        request = GenerationRequest.model_validate(fields)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
    body = request.model_dump(mode="json", exclude_none=True)
    body["timestamp"] = datetime.now(UTC).isoformat()
    return OutgoingMessage(json.dumps(body).encode(), message_id=request_id)


def send(args: argparse.Namespace, ctx: CommandContext, message: OutgoingMessage) -> int:
    """Deliver `message`; one line saying where it went, or one error line and exit 1."""
    if args.local:
        return _send_local(args.state_dir, ctx, message)
    if args.state_dir is not None:
        ctx.warn("error: --state-dir only applies with --local")
        return 1
    try:
        connection = ctx.settings(needs=(Need.SERVICE_BUS,)).service_bus
    except SettingsError as error:
        for problem in error.problems:
            ctx.warn(f"error: {problem}")
        ctx.warn("hint: use --local to put the message on the devhost's local queue instead")
        return 1
    assert connection is not None
    try:
        asyncio.run(send_to_queue(connection, QUEUE, message))
    except SendError as error:
        ctx.warn(f"error: {error}")
        return 1
    ctx.say(f"sent message {message.message_id} to Service Bus queue {QUEUE} ({connection.kind})")
    return 0


def _send_local(given: Path | None, ctx: CommandContext, message: OutgoingMessage) -> int:
    from devhost.queues import NewMessage, QueueStore  # dev tooling: only needed for --local

    state_dir = given if given is not None else ctx.app_dir / STATE_DIR_NAME
    if given is None and not state_dir.is_dir() and not (ctx.app_dir / "host.json").is_file():
        # A message in a folder no host reads would wait forever: refuse instead.
        ctx.warn(f"error: no devhost state folder at {state_dir.resolve()}; run from the app folder, "
                 "pass --app-dir, or pass the host's --state-dir")
        return 1
    try:
        local = NewMessage(message.body, message_id=message.message_id, content_type=message.content_type)
        QueueStore(state_dir).enqueue(QUEUE, local)
    except OSError as error:
        ctx.warn(f"error: cannot write the local queue in {state_dir}: {error}")
        return 1
    ctx.say(f"sent message {message.message_id} to the devhost's local queue {QUEUE} in {state_dir}")
    return 0
