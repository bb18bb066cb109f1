"""Send one message to a Service Bus queue with azure-servicebus: a real namespace (connection string or
managed identity) or the official Service Bus emulator (`UseDevelopmentEmulator=true`).

Operator tooling only (lessonctl): azure-servicebus is in requirements-dev.txt, not in the deployed
requirements, so it is imported when a message is sent and its absence is a clear error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from clients.http import redact, register_secret
from domain.settings import ServiceBusConnection

SEND_TIMEOUT_S = 60.0


class SendError(RuntimeError):
    """The message was not sent; the text says why (never a key)."""


@dataclass(frozen=True)
class OutgoingMessage:
    body: bytes
    message_id: str
    content_type: str = "application/json"


def _connection_parts(connection_string: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)


def _client(connection: ServiceBusConnection) -> Any:
    try:
        from azure.servicebus.aio import ServiceBusClient
    except ImportError:
        raise SendError("azure-servicebus is not installed: pip install -r requirements-dev.txt") from None
    # Transient failures are retried a little by the SDK; an operator waits for an answer, not forever.
    retry = {"retry_total": 2, "retry_backoff_factor": 0.5, "retry_backoff_max": 5}
    if connection.connection_string:
        register_secret(_connection_parts(connection.connection_string).get("SharedAccessKey"))
        return ServiceBusClient.from_connection_string(connection.connection_string, **retry)
    try:
        from azure.identity.aio import DefaultAzureCredential
    except ImportError:
        raise SendError(
            "AzureServiceBusConnectionString__fullyQualifiedNamespace (managed identity) needs "
            "azure-identity: pip install azure-identity and sign in (az login), "
            "or set AzureServiceBusConnectionString"
        ) from None
    assert connection.fully_qualified_namespace is not None
    return ServiceBusClient(connection.fully_qualified_namespace, DefaultAzureCredential(), **retry)


async def send_to_queue(
    connection: ServiceBusConnection,
    queue: str,
    message: OutgoingMessage,
    *,
    timeout_s: float = SEND_TIMEOUT_S,
) -> None:
    """Send `message` to `queue`; raises SendError with a readable reason."""
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.exceptions import ServiceBusError

    client = _client(connection)
    outgoing = ServiceBusMessage(
        message.body, message_id=message.message_id, content_type=message.content_type
    )
    try:
        async with client, client.get_queue_sender(queue_name=queue) as sender:
            await asyncio.wait_for(sender.send_messages(outgoing), timeout_s)
    except TimeoutError:
        raise SendError(f"sending to queue {queue!r} timed out after {timeout_s:g}s") from None
    except (ServiceBusError, OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {redact(str(exc))}"
        raise SendError(f"sending to queue {queue!r} failed: {reason}") from None
