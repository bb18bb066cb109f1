"""`func.ServiceBusMessage` built from a stored message, through the worker's own converter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from devhost.queues import NewMessage, QueueStore
from devhost.triggers import build_service_bus_message


def test_message_fields_are_populated_like_the_worker_does(tmp_path: Path) -> None:
    store = QueueStore(tmp_path)
    sent = NewMessage(b'{"x": 1}', message_id="m-1", content_type="application/json",
                      correlation_id="c-9", subject="greeting", properties={"tenant": "t1", "n": 2})
    store.enqueue("q", sent)
    stored = store.receive("q", lock_seconds=60, max_delivery_count=10)
    assert stored is not None
    message = build_service_bus_message(stored)
    assert message.get_body() == b'{"x": 1}'
    assert message.message_id == "m-1"
    assert message.delivery_count == 1
    assert message.content_type == "application/json"
    assert message.correlation_id == "c-9"
    assert message.subject == "greeting" and message.label == "greeting"
    assert message.user_properties == {"tenant": "t1", "n": 2}
    assert message.application_properties == {"tenant": "t1", "n": 2}
    assert message.lock_token == stored.lock_token
    assert message.sequence_number == stored.sequence_number
    enqueued = message.enqueued_time_utc
    assert enqueued is not None and enqueued.tzinfo is not None
    assert abs(enqueued - datetime.fromtimestamp(stored.enqueued_at, tz=UTC)) < timedelta(milliseconds=1)
    assert message.locked_until is not None and message.locked_until > enqueued
    assert message.expires_at_utc is not None and message.expires_at_utc - enqueued == timedelta(days=14)
    assert message.metadata is not None and message.metadata["MessageId"] == "m-1"


def test_non_utf8_body_arrives_as_bytes(tmp_path: Path) -> None:
    store = QueueStore(tmp_path)
    store.enqueue("q", NewMessage(b"\xff\xfe\x00bin"))
    stored = store.receive("q", lock_seconds=60, max_delivery_count=10)
    assert stored is not None
    message = build_service_bus_message(stored)
    assert message.get_body() == b"\xff\xfe\x00bin"
    assert message.content_type is None
    assert message.user_properties == {}
